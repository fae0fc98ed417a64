"""Emitters on packets from the demo cases: payload shapes, the draft reply rules, Slack limits, valid ADF."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from escalation.case import Case, load_case
from escalation.connectors.emit import KINDS, emit, truncate
from escalation.engine import run
from escalation.errors import InputError
from escalation.pack import load_pack
from escalation.packet import Check, Packet

ROOT = Path(__file__).resolve().parents[2]
DEMO = sorted((ROOT / "src" / "escalation" / "demo").glob("*.case.json"))
LUMEN = ROOT / "src" / "escalation" / "packs" / "lumen"


@pytest.fixture(scope="module")
def built() -> list[tuple[Packet, Case]]:
    pack = load_pack(LUMEN)
    out = []
    for path in DEMO:
        case = load_case(path)
        out.append((run(case, pack, tone_check="off"), case))
    return out


def failing(packet: Packet) -> Packet:
    checks = [Check(key=c.key, passed=False, details=["summary: claim has no source"]) if c.key == "claims_grounded"
              else c for c in packet.checks]
    return packet.model_copy(update={"checks": checks, "needs_review": True})


def long_packet(packet: Packet) -> Packet:
    """A packet whose texts exceed every Slack and Jira limit, with characters Slack escapes."""
    huge = "Export <fails> & retries " * 400
    actions = [a.model_copy(update={"action": huge}) for a in packet.next_actions] * 30
    return packet.model_copy(update={"summary": huge, "next_actions": actions,
                                     "severity": packet.severity.model_copy(update={"rationale": huge})})


def test_demo_cases_present(built: list[tuple[Packet, Case]]) -> None:
    assert len(built) >= 5


def test_zendesk_note_shapes(built: list[tuple[Packet, Case]]) -> None:
    for packet, case in built:
        out = emit("zendesk-note", packet, case)
        assert out["ticket_id"] == case.ticket.id
        comment = out["internal_note"]["ticket"]["comment"]
        assert comment["public"] is False
        note = comment["html_body"]
        assert "Internal escalation packet" in note
        for text in (packet.severity.level, packet.owner.team, packet.pack.content_hash, packet.pack.version):
            assert text in note
        for a in packet.next_actions:
            assert a.due in note
        for m in packet.missing_info:
            assert m.question in note
        draft = out["draft_public_reply"]
        assert draft["draft"] is True and draft["send_only_after_approval"] is True
        assert "blocked" not in draft
        assert draft["ticket"]["comment"] == {"body": packet.customer_update, "public": True}
        json.dumps(out)  # plain JSON


def test_internal_note_text_never_reaches_the_public_reply(built: list[tuple[Packet, Case]]) -> None:
    for packet, case in built:
        out = emit("zendesk-note", packet, case)
        public = json.dumps(out["draft_public_reply"], ensure_ascii=False)
        for internal in ("Internal escalation packet", packet.pack.content_hash, packet.severity.rationale,
                         *(a.action for a in packet.next_actions), *(t.reason for t in packet.triggers)):
            assert internal not in public
        # nor is the customer update copied into the internal payloads
        for kind in ("jira-issue", "slack", "markdown"):
            assert packet.customer_update not in json.dumps(emit(kind, packet, case), ensure_ascii=False)
        assert packet.customer_update not in json.dumps(out["internal_note"], ensure_ascii=False)


def test_failing_checks_block_the_draft_reply(built: list[tuple[Packet, Case]]) -> None:
    packet, case = built[0]
    bad = failing(packet)
    out = emit("zendesk-note", bad, case)
    draft = out["draft_public_reply"]
    assert draft["blocked"] is True and draft["draft"] is True
    assert draft["failing_checks"] == [{"key": "claims_grounded", "details": ["summary: claim has no source"]}]
    assert "ticket" not in draft and "body" not in json.dumps(draft)
    assert packet.customer_update not in json.dumps(out, ensure_ascii=False)
    assert "claims_grounded" in out["internal_note"]["ticket"]["comment"]["html_body"]
    assert "needs-review" in emit("jira-issue", bad, case)["fields"]["labels"]
    assert "claims_grounded" in json.dumps(emit("slack", bad, case))
    assert "**FAIL** claims_grounded: summary: claim has no source" in emit("markdown", bad, case)["text"]


def _check_adf(node: Any, path: str = "doc") -> None:
    assert isinstance(node, dict), path
    assert isinstance(node.get("type"), str) and node["type"], f"{path}: node without type"
    if node["type"] == "text":
        assert isinstance(node.get("text"), str) and node["text"], f"{path}: text node without text"
        assert "content" not in node
        for mark in node.get("marks", []):
            assert isinstance(mark.get("type"), str)
    if node["type"] in ("bulletList", "orderedList"):
        assert node["content"] and all(c["type"] == "listItem" for c in node["content"]), path
    if node["type"] == "heading":
        assert 1 <= node["attrs"]["level"] <= 6
    for i, child in enumerate(node.get("content", [])):
        _check_adf(child, f"{path}.content[{i}]")


def test_jira_issue_shape_and_valid_adf(built: list[tuple[Packet, Case]]) -> None:
    for packet, case in built:
        fields = emit("jira-issue", packet, case)["fields"]
        assert fields["project"] == {"key": "ENG"} and fields["issuetype"] == {"name": "Bug"}
        assert fields["summary"].startswith(f"[{packet.severity.level}] ") and len(fields["summary"]) <= 255
        assert "\n" not in fields["summary"]
        assert fields["priority"]["name"] in ("Highest", "High", "Medium", "Low", "Lowest")
        assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", label) for label in fields["labels"])
        doc = fields["description"]
        assert doc["type"] == "doc" and doc["version"] == 1
        _check_adf(doc)
        text = json.dumps(doc, ensure_ascii=False)
        assert "Internal escalation packet" in text and packet.owner.team in text
        lists = [n for n in doc["content"] if n["type"] == "orderedList"]
        if packet.reproduction_steps:
            steps = [item["content"][0]["content"][0]["text"] for item in lists[0]["content"]]
            assert steps == [s.split("\n")[0] for s in packet.reproduction_steps]
        for m in packet.missing_info:
            assert m.question in text


def test_jira_priority_and_options(built: list[tuple[Packet, Case]]) -> None:
    levels = {p.severity.level: emit("jira-issue", p, c)["fields"]["priority"]["name"] for p, c in built}
    assert levels["Sev1"] == "Highest" and levels["Sev4"] == "Low"
    packet, case = built[0]
    fields = emit("jira-issue", packet, case, project_key="SUP", issue_type="Task")["fields"]
    assert fields["project"] == {"key": "SUP"} and fields["issuetype"] == {"name": "Task"}


def test_jira_limits_and_adf_with_long_text(built: list[tuple[Packet, Case]]) -> None:
    packet, case = built[0]
    fields = emit("jira-issue", long_packet(packet), case)["fields"]
    assert len(fields["summary"]) <= 255
    _check_adf(fields["description"])


def _check_slack(msg: dict[str, Any]) -> None:
    blocks = msg["blocks"]
    assert 0 < len(blocks) <= 50
    header = blocks[0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert 0 < len(header["text"]["text"]) <= 150
    for block in blocks:
        if block["type"] == "section":
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= 3000
            for field in block.get("fields", []):
                assert 0 < len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
    assert 0 < len(msg["text"]) <= 3000
    assert not re.search(r"&(?!amp;|lt;|gt;)", json.dumps(blocks[1:]))  # every & is an escape


def test_slack_message_shape(built: list[tuple[Packet, Case]]) -> None:
    for packet, case in built:
        msg = emit("slack", packet, case)
        _check_slack(msg)
        kinds = [b["type"] for b in msg["blocks"]]
        assert kinds[0] == "header" and kinds[-1] == "context" and "fields" in msg["blocks"][1]
        assert msg.get("channel") == packet.owner.alias or (packet.owner.alias is None and "channel" not in msg)
        assert "Internal" in msg["blocks"][-1]["elements"][0]["text"]
        assert packet.pack.version in msg["blocks"][-1]["elements"][0]["text"]
    packet, case = built[0]
    assert emit("slack", packet, case, channel="C0123")["channel"] == "C0123"


def test_slack_truncates_long_text_safely(built: list[tuple[Packet, Case]]) -> None:
    packet, case = built[0]
    msg = emit("slack", long_packet(packet), case)
    _check_slack(msg)
    summary = msg["blocks"][2]["text"]["text"]
    assert summary.endswith("…") and "&lt;fails&gt; &amp;" in summary


def test_truncate() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 4) == "abc…" and len(truncate("x" * 500, 150)) == 150


def test_markdown(built: list[tuple[Packet, Case]]) -> None:
    for packet, case in built:
        out = emit("markdown", packet, case)
        assert out["format"] == "markdown" and out["visibility"] == "internal"
        text = out["text"]
        assert text.startswith("# ") and "Internal escalation packet" in text
        for heading in ("## Summary", "## Severity", "## Owner", "## Next actions", "## Missing information",
                        "## Reproduction steps", "## Checks"):
            assert heading in text
        assert packet.pack.content_hash in text


def test_emit_is_deterministic(built: list[tuple[Packet, Case]]) -> None:
    for packet, case in built:
        for kind in KINDS:
            assert emit(kind, packet, case) == emit(kind, packet, case)


def test_unknown_kind_and_option_are_input_errors(built: list[tuple[Packet, Case]]) -> None:
    packet, case = built[0]
    with pytest.raises(InputError, match="zendesk-note, jira-issue, slack, markdown"):
        emit("teams", packet, case)
    with pytest.raises(InputError, match="unknown option 'channel'; it takes project_key, issue_type"):
        emit("jira-issue", packet, case, channel="x")
    with pytest.raises(InputError, match="takes no options"):
        emit("markdown", packet, case, project_key="X")
