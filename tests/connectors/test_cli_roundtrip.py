"""Import → run → export through the CLI, for every vendor: what a person actually types.

The round trip proves the governance rule that matters most for connectors: text from an
internal note never reaches a customer-facing payload (the Zendesk draft reply), and the
customer-facing text is exactly the verified customer update.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import escalate

FIX = Path(__file__).parent / "fixtures"
ZD = FIX / "zendesk"
ZENDESK = ["zendesk", ZD / "ticket_48213.json", "--comments", ZD / "comments_48213.json",
           "--users", ZD / "users_48213.json", "--org", ZD / "organization_6001.json"]
FRESHDESK = ["freshdesk", FIX / "freshdesk" / "ticket_7315.json", "--conversations",
             FIX / "freshdesk" / "conversations_7315.json", "--agents", FIX / "freshdesk" / "agents.json"]
JIRA = ["jira", FIX / "jira" / "issue_v3_jsm.json", "--comments", FIX / "jira" / "comments_v3.json"]
EMAIL = ["email", FIX / "email" / "thread.mbox"]
BUGZILLA = ["bugzilla", FIX / "bugzilla" / "bug.json", "--comments", FIX / "bugzilla" / "comments.json",
            "--history", FIX / "bugzilla" / "history.json"]
SOURCES = {"zendesk": ZENDESK, "freshdesk": FRESHDESK, "jira": JIRA, "email": EMAIL, "bugzilla": BUGZILLA}


def _internal_sentences(case: dict) -> list[str]:
    """Distinctive sentences of the case's internal events (long enough not to match by chance)."""
    out = []
    for ev in case["ticket"]["events"]:
        if ev["visibility"] == "internal":
            out += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", ev["body"]) if len(s.strip()) > 30]
    return out


@pytest.mark.parametrize("vendor", list(SOURCES))
def test_import_writes_a_valid_case_that_runs(vendor: str, tmp_path: Path) -> None:
    out = tmp_path / "case.json"
    r = escalate("import", *SOURCES[vendor], "-o", out)
    assert r.exit_code == 0, r.output
    case = json.loads(out.read_text())
    assert case["schema"] == "escalation-case/1" and case["id"].startswith(vendor)
    r = escalate("run", out, "--format", "json", "--strict")
    assert r.exit_code == 0, r.output
    packet = json.loads(r.stdout)
    assert packet["case_id"] == case["id"] and all(c["passed"] for c in packet["checks"])


@pytest.mark.parametrize("vendor", list(SOURCES))
def test_run_from_vendor_equals_import_then_run(vendor: str, tmp_path: Path) -> None:
    case = tmp_path / "case.json"
    assert escalate("import", *SOURCES[vendor], "-o", case).exit_code == 0
    two_step = escalate("run", case, "--format", "json")
    one_step = escalate("run", "--from", *SOURCES[vendor], "--format", "json")
    assert one_step.exit_code == 0, one_step.output
    assert json.loads(one_step.stdout) == json.loads(two_step.stdout)


@pytest.mark.parametrize("vendor", list(SOURCES))
def test_internal_notes_never_reach_the_draft_reply(vendor: str, tmp_path: Path) -> None:
    case_file = tmp_path / "case.json"
    assert escalate("import", *SOURCES[vendor], "-o", case_file).exit_code == 0
    case = json.loads(case_file.read_text())
    packet = json.loads(escalate("run", case_file, "--format", "json").stdout)
    r = escalate("run", case_file, "--emit", "zendesk-note")
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    reply = payload["draft_public_reply"]
    body = reply["ticket"]["comment"]
    assert body["public"] is True and reply["draft"] is True
    text = body.get("body") or body.get("html_body")
    assert text == packet["customer_update"]
    for sentence in _internal_sentences(case):
        assert sentence not in text, f"internal note text reached the customer reply: {sentence!r}"
    assert payload["internal_note"]["ticket"]["comment"]["public"] is False


def test_zendesk_fixture_has_internal_notes_to_protect(tmp_path: Path) -> None:
    """The round trip above is only meaningful if the fixture carries internal detail."""
    r = escalate("import", *ZENDESK)
    case = json.loads(r.stdout)
    internal = _internal_sentences(case)
    assert len(internal) >= 2 and any("int.lumen.example" in s for s in internal)


@pytest.mark.parametrize("kind", ["jira-issue", "slack", "markdown"])
def test_internal_payloads_carry_no_customer_update(kind: str) -> None:
    packet = json.loads(escalate("run", "--from", *ZENDESK, "--format", "json").stdout)
    r = escalate("run", "--from", *ZENDESK, "--emit", kind)
    assert r.exit_code == 0, r.output
    first_line = packet["customer_update"].split("\n\n")[1]
    assert first_line not in r.stdout


def test_post_is_a_dry_run_by_default_and_needs_no_credentials() -> None:
    r = escalate("run", "--from", *ZENDESK, "--emit", "zendesk-note", "--post")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["dry_run"] is True and out["method"] == "PUT" and "48213" in out["url"]
    assert out["body"]["ticket"]["comment"]["public"] is False  # only the internal note would be sent


def test_posting_a_non_zendesk_case_as_a_zendesk_note_is_refused() -> None:
    r = escalate("run", "--from", *EMAIL, "--emit", "zendesk-note", "--post")
    assert r.exit_code == 2 and "zendesk" in r.output.lower()


def test_bad_inputs_get_one_line_errors(tmp_path: Path) -> None:
    jira_issue = FIX / "jira" / "issue_v2.json"
    r = escalate("import", "zendesk", jira_issue)
    assert r.exit_code == 2 and "jira" in r.output.lower()
    r = escalate("import", "email", FIX / "email" / "not_an_email.json")
    assert r.exit_code == 2 and "error:" in r.output
    r = escalate("import", "servicenow", jira_issue)
    assert r.exit_code == 2 and "zendesk" in r.output
    r = escalate("import", "jira", jira_issue, "--conversations", ZD / "comments_48213.json")
    assert r.exit_code == 2 and "--comments" in r.output
    garbage = tmp_path / "t.json"
    garbage.write_text("{not json")
    r = escalate("import", "zendesk", garbage)
    assert r.exit_code == 2 and "t.json:1:2" in r.output
    r = escalate("run", "--from", "zendesk", ZD / "ticket_48213.json", "--emit", "fax")
    assert r.exit_code == 2 and "zendesk-note" in r.output
    r = escalate("run", ZD / "ticket_48213.json", "--comments", ZD / "comments_48213.json")
    assert r.exit_code == 2 and "--from" in r.output


def test_mapping_warnings_go_to_stderr_and_the_case_stays_clean(tmp_path: Path) -> None:
    r = escalate("import", *JIRA)
    assert r.exit_code == 0
    json.loads(r.stdout)  # stdout is only the case


def test_as_of_makes_the_import_repeatable_and_overridable() -> None:
    a = json.loads(escalate("import", *ZENDESK).stdout)
    b = json.loads(escalate("import", *ZENDESK).stdout)
    assert a == b
    c = json.loads(escalate("import", *ZENDESK, "--as-of", "2030-01-01T00:00:00Z").stdout)
    assert c["as_of"].startswith("2030-01-01")
    r = escalate("import", *ZENDESK, "--as-of", "tomorrow")
    assert r.exit_code == 2 and "ISO 8601" in r.output


def test_a_multi_ticket_export_gives_one_case_a_line(tmp_path: Path) -> None:
    bug = json.loads((FIX / "bugzilla" / "bug.json").read_text())
    comments = json.loads((FIX / "bugzilla" / "comments.json").read_text())
    one = dict(bug["bugs"][0])
    one["comments"] = next(iter(comments["bugs"].values()))["comments"]
    two = dict(one, id=one["id"] + 1)
    two["comments"] = [dict(c, bug_id=two["id"]) for c in one["comments"]]
    export = tmp_path / "bugs.jsonl"
    export.write_text(json.dumps(one) + "\n" + json.dumps(two) + "\n")
    r = escalate("import", "bugzilla", export)
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [c["ticket"]["id"] for c in lines] == [str(one["id"]), str(two["id"])]
