"""E-mail importer: one RFC 5322 message (.eml) or an mbox thread as an `ImportedTicket`.

Support by e-mail has no help-desk fields, so the thread itself is the ticket: every
message is one event in Date order, the subject without Re:/Fwd: is the subject, and the
sender's domain says who is staff (the pack's `staff_email_domains`). Quoted history and
signatures are folded away so each event holds only what its author wrote — otherwise
every reply would re-quote the customer and evidence would be counted many times.
Binary attachments are never put in a case; text ones (logs) become case attachments.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from typing import Any

from ..errors import InputError
from .text import html_to_text, is_binary
from .ticket import ImportedTicket

SOURCE = "email"
MAX_EMAIL_BYTES = 64 * 1024 * 1024

_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]?", re.MULTILINE)
_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|tr|antw)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.IGNORECASE)
_ATTRIBUTION = re.compile(r"^\s*(?:on\s.{4,300}\bwrote\s*:|am\s.{4,300}\bschrieb\s*.{0,80}:|le\s.{4,300}\ba écrit\s*:)"
                          r"\s*$", re.IGNORECASE)
_ATTRIBUTION_START = re.compile(r"^\s*on\s.{4,300}$", re.IGNORECASE)
_WROTE_END = re.compile(r"^.{0,200}\bwrote\s*:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(?:original message|forwarded message|ursprüngliche nachricht)\s*-{2,}\s*$",
                       re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*\*?from:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(?:sent|date|to|subject|cc):\*?\s", re.IGNORECASE)
_RULE = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE = ("-- ", "--")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")
_LOG_LINE = re.compile(r"^\s*(?:\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\[?\d{2}:\d{2}:\d{2}[.,\d]*\]?\s|"
                       r"[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}|\[?(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\b)")
_TEXT_SUFFIXES = (".log", ".txt", ".text", ".out", ".csv")


def _clean(text: str) -> str:
    """Header text with undecodable bytes (kept by the parser as surrogates) replaced, so JSON can hold it."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").strip()


def _split_mbox(raw: bytes) -> list[bytes]:
    """The messages of an mbox, split on "From " lines as `mailbox.mbox` does, without a temporary file.

    A separator must start the file or follow a blank line, so an unescaped "From " at the
    start of a body line does not split a message.
    """
    lines = raw.splitlines(keepends=True)
    chunks: list[list[bytes]] = []
    prev_blank = True
    for line in lines:
        if line.startswith(b"From ") and prev_blank:
            chunks.append([])
        elif chunks:
            chunks[-1].append(line[1:] if line.startswith(b">From ") else line)
        prev_blank = not line.strip()
    return [b"".join(c) for c in chunks if b"".join(c).strip()]


def _is_mbox(raw: bytes) -> bool:
    return raw.lstrip(b"\r\n").startswith(b"From ")


def _looks_like_message(raw: bytes) -> bool:
    head = raw.lstrip(b"\r\n\t ")[:4096]
    return bool(_HEADER_LINE.match(head))


def _address(msg: EmailMessage) -> tuple[str, str | None]:
    """(display name or address, lower-cased address) of the sender."""
    header = msg.get("From")
    if header is None:
        return "", None
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if addresses:
        a = addresses[0]
        email = _clean(a.addr_spec).lower() or None
        name = _clean(a.display_name) or (email or "")
        return name, email
    name, addr = parseaddr(_clean(str(header)))
    return name or addr, (addr.lower() or None)


def _recipients(msg: EmailMessage) -> list[str]:
    values = [_clean(str(v)) for key in ("To", "Cc", "Bcc") for v in (msg.get_all(key) or [])]
    return [addr.lower() for _, addr in getaddresses(values) if "@" in addr]


def _domain(email: str | None) -> str:
    return email.rsplit("@", 1)[1] if email and "@" in email else ""


def _is_staff(email: str | None, staff: Sequence[str]) -> bool:
    domain = _domain(email)
    return bool(domain) and any(domain == d or domain.endswith("." + d) for d in staff)


def strip_subject(subject: str) -> str:
    """The thread subject: Re:, Fwd:, AW: ... prefixes removed."""
    return _SUBJECT_PREFIX.sub("", subject).strip()


def fold_quoted(body: str) -> str:
    """The new text of a reply: quoted lines, attributed history, Outlook headers and the signature removed.

    Falls back to the whole body when folding would leave nothing (a bare forward).
    """
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line in _SIGNATURE or line.rstrip() == "--":
            break
        if _ATTRIBUTION.match(line) or _ORIGINAL.match(line):
            break
        if _ATTRIBUTION_START.match(line) and _WROTE_END.match(nxt) and not line.rstrip().endswith((".", "?", "!")):
            break  # "On Tue, 3 Nov 2026 at 09:12, Ann Example <ann@example.com>\nwrote:" wrapped by the client
        if _OUTLOOK_FROM.match(line) and any(_OUTLOOK_NEXT.match(n) for n in lines[i + 1:i + 5]):
            break
        if _RULE.match(line) and _OUTLOOK_FROM.match(nxt):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    text = "\n".join(kept).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text or body.strip()


def _decode(part: EmailMessage) -> str:
    """A text part's content; undecodable bytes replaced rather than failing the whole thread."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload or "")
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return _clean(str(content)) if isinstance(content, str) else ""


def _body(msg: EmailMessage) -> tuple[str, EmailMessage | None]:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", None
    assert isinstance(part, EmailMessage)
    text = _decode(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return text, part


def _leaves(msg: EmailMessage) -> Iterator[EmailMessage]:
    """Leaf parts, not descending into attached messages (message/rfc822 is reported as one part)."""
    if msg.get_content_maintype() == "message" or not msg.is_multipart():
        yield msg
        return
    for sub in msg.iter_parts():
        assert isinstance(sub, EmailMessage)
        yield from _leaves(sub)


def _looks_like_log(text: str) -> bool:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    return len(lines) >= 2 and sum(1 for ln in lines if _LOG_LINE.match(ln)) * 2 >= len(lines)


def _attachments(msg: EmailMessage, body_part: EmailMessage | None, where: str, first_id: int,
                 warnings: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in _leaves(msg):
        if part is body_part:
            continue
        filename = _clean(part.get_filename() or "")
        ctype = part.get_content_type()
        is_attachment = part.is_attachment() or bool(filename)
        if not is_attachment:
            continue  # the other half of multipart/alternative, or an unnamed inline part
        label = filename or f"unnamed {ctype} part"
        if part.get_content_maintype() == "message":
            warnings.append(f"{where}: attached e-mail {label!r} not read; forward it inline or import it as "
                            "its own .eml")
            continue
        textual = ctype.startswith("text/") or filename.lower().endswith(_TEXT_SUFFIXES)
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if not textual or is_binary(data):
            warnings.append(f"{where}: attachment {label!r} ({ctype}) skipped: binary content is never put in a "
                            "case; attach logs as text")
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            text = data.decode("utf-8", "replace")
            warnings.append(f"{where}: attachment {label!r}: not valid {charset}; undecodable bytes replaced")
        name = filename or f"attachment-{first_id + len(out)}.txt"
        kind = "log" if name.lower().endswith(".log") or _looks_like_log(text) else "text"
        out.append({"id": f"att-{first_id + len(out)}", "kind": kind, "name": name, "text": text})
    return out


def _parse_messages(raw: bytes, name: str) -> list[EmailMessage]:
    parser = BytesParser(policy=default_policy)
    chunks = _split_mbox(raw) if _is_mbox(raw) else [raw]
    if not chunks:
        raise InputError(f"{name}: an mbox with no messages; export the thread again")
    out: list[EmailMessage] = []
    for i, chunk in enumerate(chunks, 1):
        where = name if len(chunks) == 1 else f"{name}: message {i}"
        if not _looks_like_message(chunk):
            raise InputError(f"{where}: not an e-mail (no header lines such as From: and Date:); "
                             "pass the message as .eml or the thread as .mbox")
        msg = parser.parsebytes(chunk)
        assert isinstance(msg, EmailMessage)
        if not any(msg.get(h) is not None for h in ("From", "Date", "Message-ID", "Subject", "To")):
            raise InputError(f"{where}: not an e-mail (no From:, Date: or Subject: header); "
                             "pass the message as .eml or the thread as .mbox")
        out.append(msg)
    return out


def _label(msg: EmailMessage, name: str, index: int, total: int) -> str:
    subject = _clean(str(msg.get("Subject") or ""))
    mid = _clean(str(msg.get("Message-ID") or ""))
    ident = f"Message-ID {mid}" if mid else (f"subject {subject!r}" if subject else "")
    base = name if total == 1 else f"{name}: message {index}"
    return f"{base} ({ident})" if ident else base


def _date(msg: EmailMessage, where: str, warnings: list[str]) -> datetime:
    header = msg.get("Date")
    if header is None:
        raise InputError(f"{where}: no Date: header; every message needs one to order the thread "
                         "(export it again with full headers)")
    dt = getattr(header, "datetime", None)
    if not isinstance(dt, datetime):
        raise InputError(f"{where}: Date: {_clean(str(header))!r} is not an RFC 5322 date such as "
                         "'Tue, 03 Nov 2026 09:12:00 +0000'")
    if dt.tzinfo is None:
        warnings.append(f"{where}: Date: has no time zone (-0000); read as UTC")
        dt = dt.replace(tzinfo=UTC)
    return dt


def _ticket_id(first: EmailMessage, subject: str, at: datetime, sender: str | None) -> str:
    mid = _clean(str(first.get("Message-ID") or "")).strip("<> ")
    safe = _ID_UNSAFE.sub("-", mid).strip("-.")
    if safe and len(safe) <= 100:
        return safe
    seed = mid or f"{subject}\n{at.isoformat()}\n{sender or ''}"
    return "msg-" + hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()[:16]


def parse(raw: bytes, *, name: str = "message", staff_domains: Sequence[str] = ()) -> ImportedTicket:
    """Read an .eml message or an mbox thread; senders at `staff_domains` are agents, everyone else customers.

    A message from staff addressed only to staff (an internal forward) is an internal event;
    everything else is public, because it is what the customer saw.
    """
    if not isinstance(raw, bytes | bytearray):
        raise InputError(f"{name}: the e-mail importer takes the raw message bytes")
    raw = bytes(raw)
    if len(raw) > MAX_EMAIL_BYTES:
        raise InputError(f"{name}: {len(raw) / 2**20:.0f} MiB is over the {MAX_EMAIL_BYTES // 2**20} MiB limit "
                         "for one e-mail thread")
    head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        raise InputError(f"{name}: this is JSON, not an e-mail; pass an .eml or .mbox file here, or import the "
                         "JSON with its help desk's importer (zendesk, jira, freshdesk, bugzilla)")
    if not raw.strip():
        raise InputError(f"{name}: empty file; pass an .eml message or an .mbox thread")
    staff = [d.strip().lower().lstrip("@") for d in staff_domains if d.strip()]
    messages = _parse_messages(raw, name)
    warnings: list[str] = []

    dated: list[tuple[datetime, int, EmailMessage, str]] = []
    for i, msg in enumerate(messages, 1):
        where = _label(msg, name, i, len(messages))
        if msg.get("From") is None:
            raise InputError(f"{where}: no From: header; the sender decides whether a message is the customer's")
        dated.append((_date(msg, where, warnings), i, msg, where))
    dated.sort(key=lambda x: (x[0], x[1]))

    events: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    requester: tuple[str, str | None] | None = None
    for n, (at, _i, msg, where) in enumerate(dated, 1):
        sender_name, sender = _address(msg)
        staff_sender = _is_staff(sender, staff)
        recipients = _recipients(msg)
        internal = staff_sender and bool(recipients) and all(_is_staff(r, staff) for r in recipients)
        if requester is None and not staff_sender:
            requester = (sender_name, sender)
        body, body_part = _body(msg)
        events.append({
            "id": f"m{n}",
            "at": at,
            "author": {"name": sender_name or "unknown", "role": "agent" if staff_sender else "customer"},
            "visibility": "internal" if internal else "public",
            "body": fold_quoted(body) if body else "",
        })
        attachments.extend(_attachments(msg, body_part, where, len(attachments) + 1, warnings))

    first_at, _, first, _ = dated[0]
    first_name, first_sender = _address(first)
    if requester is None:
        warnings.append(f"{name}: every sender is at a staff domain ({', '.join(staff)}); the first sender is "
                        "taken as the requester")
        requester = (first_name, first_sender)
    subject = ""
    for _, _, msg, _ in dated:
        subject = strip_subject(_clean(str(msg.get("Subject") or "")))
        if subject:
            break
    headers: dict[str, str] = {}
    for key, value in first.items():
        headers.setdefault(key.lower(), _clean(str(value)))
    req_name, req_email = requester
    return ImportedTicket(
        source=SOURCE,
        ticket_id=_ticket_id(first, subject, first_at, first_sender),
        subject=subject,
        created_at=first_at,
        status="open",
        requester_name=req_name or (req_email or "unknown"),
        requester_email=req_email,
        events=events,
        docs={
            "headers": headers,
            "from": {"name": first_name, "email": first_sender, "domain": _domain(first_sender)},
            "requester": {"name": req_name, "email": req_email, "domain": _domain(req_email)},
        },
        org_name=_domain(req_email) or None,
        attachments=attachments,
        warnings=warnings,
    )
