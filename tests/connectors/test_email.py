"""The e-mail importer: threads, folded quoted history, roles, attachments, bad input; the engine on a thread."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from escalation.case import parse_case
from escalation.connectors.email import fold_quoted, parse, strip_subject
from escalation.connectors.mapping import VendorMapping
from escalation.connectors.ticket import to_case
from escalation.engine import run
from escalation.errors import InputError
from escalation.pack import Pack

FIXTURES = Path(__file__).parent / "fixtures" / "email"
STAFF = ["lumen.example"]


def load(name: str, staff: list[str] | None = None) -> object:
    return parse((FIXTURES / name).read_bytes(), name=name, staff_domains=STAFF if staff is None else staff)


def test_quoted_history_and_signature_are_folded_away() -> None:
    t = parse((FIXTURES / "quoted_reply.eml").read_bytes(), name="quoted_reply.eml", staff_domains=STAFF)
    assert t.source == "email"
    assert t.subject == "Scheduled CSV export stuck at 0%"
    assert t.ticket_id == "CAF3x9q2-reply-7781@mail.initech.example.com"
    [ev] = t.events
    assert ev["body"].startswith("Hi Tomás,")
    assert "Workspace ID is initech-finance-01" in ev["body"]
    assert ev["body"].endswith("Hana")
    for gone in ("Finance Systems Lead", "Ledgers you can trust", "wrote:", "Could you tell us", "> "):
        assert gone not in ev["body"]
    assert ev["author"] == {"name": "Hana Ostrowski", "role": "customer"}
    assert ev["visibility"] == "public"
    assert ev["at"] == datetime(2026, 11, 3, 15, 5, tzinfo=UTC)
    assert t.requester_email == "hana.ostrowski@initech.example.com"
    assert t.org_name == "initech.example.com"
    assert t.warnings == []


def test_outlook_reply_block_is_folded_away() -> None:
    t = parse((FIXTURES / "outlook_reply.eml").read_bytes(), name="outlook_reply.eml", staff_domains=STAFF)
    assert t.subject == "Dashboard tiles blank after upgrade"
    [ev] = t.events
    assert "twelve analysts" in ev["body"]
    assert ev["body"].endswith("Deshawn")
    for gone in ("Sent:", "can you confirm", "Tiles are blank", "____"):
        assert gone not in ev["body"]


def test_mbox_thread_is_ordered_by_date_with_roles_and_an_internal_forward() -> None:
    t = parse((FIXTURES / "thread.mbox").read_bytes(), name="thread.mbox", staff_domains=STAFF)
    assert [e["id"] for e in t.events] == ["m1", "m2", "m3"]
    assert [e["at"] for e in t.events] == sorted(e["at"] for e in t.events)
    first, reply, forward = t.events
    assert first["author"] == {"name": "Hana Ostrowski", "role": "customer"}
    assert first["visibility"] == "public"
    assert reply["author"]["role"] == "agent" and reply["visibility"] == "public"
    assert reply["body"].endswith("Tomas") and "wrote:" not in reply["body"]
    assert "Lumen Support" not in reply["body"]  # signature after a bare "--" line
    assert forward["author"]["role"] == "agent" and forward["visibility"] == "internal"
    assert "EXP-2207" in forward["body"] and "Forwarded message" not in forward["body"]
    # the thread's ticket is the first message: id, subject without Fwd:/Re:, created_at, requester
    assert t.ticket_id == "CAF3x9q2-first-7780@mail.initech.example.com"
    assert t.subject == "Scheduled CSV export stuck at 0%"
    assert t.created_at == first["at"]
    assert t.requester_name == "Hana Ostrowski"
    assert t.docs["headers"]["subject"] == "Scheduled CSV export stuck at 0%"
    assert t.docs["from"]["domain"] == "initech.example.com"


def test_without_staff_domains_everyone_is_a_customer_and_public() -> None:
    t = parse((FIXTURES / "thread.mbox").read_bytes(), name="thread.mbox")
    assert {e["author"]["role"] for e in t.events} == {"customer"}
    assert {e["visibility"] for e in t.events} == {"public"}


def test_customer_writing_to_staff_only_stays_public() -> None:
    """A customer's mail always goes to staff addresses; only staff-to-staff mail is internal."""
    t = parse((FIXTURES / "quoted_reply.eml").read_bytes(), staff_domains=STAFF)
    assert t.events[0]["visibility"] == "public"


def test_staff_subdomains_count_as_staff() -> None:
    raw = (b"Message-ID: <a@x>\nDate: Mon, 02 Nov 2026 10:00:00 +0000\nFrom: Ann <ann@eu.lumen.example>\n"
           b"To: Bo <bo@lumen.example>\nSubject: note\n\nInternal only.\n")
    [ev] = parse(raw, staff_domains=STAFF).events
    assert ev["author"]["role"] == "agent" and ev["visibility"] == "internal"


def test_html_only_message_becomes_plain_text() -> None:
    t = parse((FIXTURES / "html_only.eml").read_bytes(), name="html_only.eml", staff_domains=STAFF)
    [ev] = t.events
    assert "<" not in ev["body"]
    assert "Since this morning the mobile app sends us back to the login page after SSO." in ev["body"]
    assert "App version 8.4.0" in ev["body"]
    assert "Thanks for reaching out" not in ev["body"]  # the quoted blockquote is history
    assert ev["at"] == datetime(2026, 11, 5, 7, 0, tzinfo=UTC)


def test_text_attachments_are_kept_and_binary_ones_skipped_with_a_warning() -> None:
    t = parse((FIXTURES / "attachments.eml").read_bytes(), name="attachments.eml", staff_domains=STAFF)
    assert [(a["id"], a["kind"], a["name"]) for a in t.attachments] == [
        ("att-1", "log", "export-worker.log"), ("att-2", "text", "what-we-tried.txt")]
    assert "EXP-2207 timeout waiting for snapshot lock" in t.attachments[0]["text"]
    assert len(t.warnings) == 1 and "stuck-job.png" in t.warnings[0] and "skipped" in t.warnings[0]
    assert all("PNG" not in a["text"] for a in t.attachments)
    assert t.events[0]["body"].startswith("Attached is the export worker log")
    case, _ = to_case(t, VendorMapping(staff_email_domains=STAFF), None)
    assert [a.kind for a in case.attachments] == ["log", "text"]


def test_unnamed_text_attachment_that_looks_like_a_log_is_a_log() -> None:
    raw = (b"Message-ID: <b@x>\nDate: Mon, 02 Nov 2026 10:00:00 +0000\nFrom: c@customer.example.com\n"
           b"To: support@lumen.example\nSubject: logs\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nSee attached.\n"
           b"--XX\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"output.txt\"\n\n"
           b"2026-11-02 09:00:01 ERROR sync failed\n2026-11-02 09:00:02 INFO retrying\n--XX--\n")
    t = parse(raw, staff_domains=STAFF)
    assert [(a["kind"], a["name"]) for a in t.attachments] == [("log", "output.txt")]


def test_binary_content_under_a_log_name_is_skipped() -> None:
    raw = (b"Message-ID: <c@x>\nDate: Mon, 02 Nov 2026 10:00:00 +0000\nFrom: c@customer.example.com\n"
           b"To: support@lumen.example\nSubject: logs\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nSee attached.\n"
           b"--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
           b"Content-Disposition: attachment; filename=\"core.log\"\n\nAAECAwQFBgcICQ==\n--XX--\n")
    t = parse(raw, staff_domains=STAFF)
    assert t.attachments == [] and "core.log" in t.warnings[0]


def test_json_passed_by_mistake_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not_an_email.json: this is JSON, not an e-mail"):
        load("not_an_email.json")


@pytest.mark.parametrize("raw", [b"", b"just some notes\nwith no headers at all\n", b"Note: hello\n\nbody\n"])
def test_not_an_email_is_an_input_error(raw: bytes) -> None:
    with pytest.raises(InputError, match="x.txt: "):
        parse(raw, name="x.txt")


def test_message_without_date_is_an_input_error_naming_it() -> None:
    raw = (FIXTURES / "thread.mbox").read_bytes().replace(b"Date: Mon, 02 Nov 2026 15:10:00 +0000\n", b"")
    with pytest.raises(InputError, match=r"thread.mbox: message 3 \(Message-ID <20261102151000.4411@lumen.example>\)"
                                         r": no Date: header"):
        parse(raw, name="thread.mbox", staff_domains=STAFF)


def test_unreadable_date_and_missing_from_are_input_errors() -> None:
    base = b"Message-ID: <d@x>\nFrom: a@b.example.com\nTo: s@lumen.example\nSubject: s\n"
    with pytest.raises(InputError, match="not an RFC 5322 date"):
        parse(base + b"Date: yesterday-ish\n\nhello\n")
    with pytest.raises(InputError, match="no From: header"):
        parse(b"Message-ID: <d@x>\nDate: Mon, 02 Nov 2026 10:00:00 +0000\nSubject: s\n\nhello\n")


def test_message_without_message_id_gets_a_stable_hash_id() -> None:
    raw = b"Date: Mon, 02 Nov 2026 10:00:00 +0000\nFrom: a@b.example.com\nSubject: Re: hi\n\nhello\n"
    a, b = parse(raw), parse(raw)
    assert a.ticket_id == b.ticket_id and a.ticket_id.startswith("msg-")
    assert a.subject == "hi"


def test_fold_quoted_keeps_the_body_when_nothing_new_was_written() -> None:
    body = "---------- Forwarded message ---------\nFrom: A <a@b.example.com>\n\nThe original text."
    assert fold_quoted(body) == body


def test_fold_quoted_wrapped_gmail_attribution() -> None:
    body = "New text here.\n\nOn Tue, 3 Nov 2026 at 09:12, Tomás Quiroga <tomas.quiroga@lumen.example>\nwrote:\n> old"
    assert fold_quoted(body) == "New text here."


@pytest.mark.parametrize(("subject", "expected"), [
    ("Re: RE: Fwd: Export stuck", "Export stuck"), ("AW: WG: Export", "Export"), ("Re[2]: Export", "Export"),
    ("Regarding exports", "Regarding exports")])
def test_strip_subject(subject: str, expected: str) -> None:
    assert strip_subject(subject) == expected


def test_imported_thread_is_a_valid_case(lumen: Pack) -> None:
    t = parse((FIXTURES / "thread.mbox").read_bytes(), name="thread.mbox",
              staff_domains=lumen.connectors.for_vendor("email").staff_email_domains)
    case, warnings = to_case(t, lumen.connectors.for_vendor("email"), lumen)
    assert case.id == "email-CAF3x9q2-first-7780@mail.initech.example.com"
    assert case.as_of == t.events[-1]["at"]
    assert [e.visibility for e in case.ticket.events] == ["public", "public", "internal"]
    assert any(w.startswith("tier:") for w in warnings)  # e-mail carries no tier; the pack's mapping must give it
    parse_case(json.loads(case.model_dump_json(by_alias=True)))  # round-trips as escalation-case/1


def test_engine_on_an_email_thread_passes_every_check(lumen: Pack) -> None:
    mapping = lumen.connectors.for_vendor("email")
    t = parse((FIXTURES / "thread.mbox").read_bytes(), name="thread.mbox", staff_domains=mapping.staff_email_domains)
    case, _ = to_case(t, mapping, lumen)
    packet = run(case, lumen)
    failed = {c.key: c.details for c in packet.checks if not c.passed}
    assert failed == {}, f"failing checks: {failed}"
    assert packet.product_area == "exports"
    internal_text = case.ticket.events[2].body
    assert "EXP-2207" in internal_text and "EXP-2207" not in packet.customer_update


def test_crlf_line_endings_read_the_same() -> None:
    for name in ("quoted_reply.eml", "thread.mbox"):
        raw = (FIXTURES / name).read_bytes()
        lf = parse(raw, name=name, staff_domains=STAFF)
        crlf = parse(raw.replace(b"\n", b"\r\n"), name=name, staff_domains=STAFF)
        assert crlf.events == lf.events and crlf.ticket_id == lf.ticket_id
