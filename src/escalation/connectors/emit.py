"""Emitters: a packet (and its case) as what a help desk, tracker or chat accepts.

Pure functions, no I/O: `http.post` sends what these build. The one customer-facing text
is the packet's verified `customer_update`, and it appears only in the Zendesk
`draft_public_reply`, marked as a draft to send after a person approves it. When any
check failed, that draft is blocked and carries no text, so nothing unverified is ever
offered as a reply. Everything else (notes, issues, chat) is internal and says so.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from ..case import Case
from ..errors import InputError
from ..packet import Check, Packet

INTERNAL_BANNER = "Internal escalation packet: not for the customer."

SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_MAX = 10
SLACK_BLOCKS_MAX = 50
SLACK_CONTEXT_MAX = 3000
SLACK_FALLBACK_MAX = 3000
JIRA_SUMMARY_MAX = 255
ELLIPSIS = "…"

_JIRA_PRIORITY = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low"}
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def failing_checks(packet: Packet) -> list[Check]:
    return [c for c in packet.checks if not c.passed]


def _severity_line(packet: Packet) -> str:
    sev = packet.severity
    recorded = f"; recorded {sev.recorded}" if sev.recorded and sev.recorded != sev.level else ""
    rationale = sev.rationale.removeprefix(f"{sev.section}:").strip()
    return f"{sev.level} ({sev.section}{recorded}): {rationale}"


def _owner_line(packet: Packet) -> str:
    o = packet.owner
    alias = f" ({o.alias})" if o.alias else ""
    return f"{o.team}{alias}, {o.section}: {o.reason}"


def _sla_line(packet: Packet) -> str:
    s = packet.sla
    if s is None:
        return "No SLA target applies."
    state = "BREACHED" if s.breached else ("at risk" if s.at_risk else "on track")
    hours = "business hours, " if s.business_hours else ""
    return (f"{s.target.replace('_', ' ')} {s.target_text} ({hours}{s.timezone}); due {s.due_at}; {state}, "
            f"{s.remaining_fraction:.0%} of the time left")


def _trigger_lines(packet: Packet) -> list[str]:
    return [f"{t.key} ({t.section}): {t.reason}" for t in packet.triggers]


def _action_lines(packet: Packet) -> list[str]:
    return [f"{a.actor}: {a.action}; due {a.due} ({a.section})" for a in packet.next_actions]


def _missing_lines(packet: Packet) -> list[str]:
    return [f"{m.question} ({m.key}, {m.section})" for m in packet.missing_info]


def _check_lines(checks: list[Check]) -> list[str]:
    return [c.key + (f": {'; '.join(c.details)}" if c.details else "") for c in checks]


def _pack_line(packet: Packet) -> str:
    p = packet.pack
    return f"{p.name} {p.version} ({p.content_hash})"


def _title(packet: Packet, case: Case) -> str:
    return f"[{packet.severity.level}] {case.ticket.subject}"


# -- Zendesk ------------------------------------------------------------------------------


def _html_list(items: list[str], ordered: bool = False) -> str:
    tag = "ol" if ordered else "ul"
    return f"<{tag}>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + f"</{tag}>"


def _html_section(title: str, body: str) -> str:
    return f"<h3>{html.escape(title)}</h3>{body}"


def _p(text: str) -> str:
    return "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"


def _zendesk_note_html(packet: Packet, case: Case) -> str:
    parts = [f"<p><strong>{html.escape(INTERNAL_BANNER)}</strong></p>",
             _html_section("Summary", _p(packet.summary)),
             _html_section("Severity", _p(_severity_line(packet))),
             _html_section("Triggers", _html_list(_trigger_lines(packet)) if packet.triggers else _p("None.")),
             _html_section("SLA", _p(_sla_line(packet))),
             _html_section("Owner", _p(_owner_line(packet))),
             _html_section("Next actions", _html_list(_action_lines(packet)) if packet.next_actions
                           else _p("None.")),
             _html_section("Missing information", _html_list(_missing_lines(packet)) if packet.missing_info
                           else _p("Nothing missing.")),
             _html_section("Reproduction steps", _html_list(packet.reproduction_steps, ordered=True)
                           if packet.reproduction_steps else _p("None recorded."))]
    failing = failing_checks(packet)
    if failing:
        parts.append(_html_section("Failing checks (needs review; the draft reply is blocked)",
                                   _html_list(_check_lines(failing))))
    else:
        parts.append(_p("A draft customer update passed every check and awaits approval before it is sent."))
    parts.append(_p(f"Policy pack: {_pack_line(packet)}. Case {case.id}, as of {packet.as_of}."))
    return "".join(parts)


def _zendesk(packet: Packet, case: Case) -> dict[str, Any]:
    note = {"ticket": {"comment": {"html_body": _zendesk_note_html(packet, case), "public": False}}}
    failing = failing_checks(packet)
    draft: dict[str, Any] = {"draft": True, "send_only_after_approval": True}
    if failing:
        draft |= {"blocked": True,
                  "reason": "the packet failed checks; no customer text is offered until they pass",
                  "failing_checks": [{"key": c.key, "details": list(c.details)} for c in failing]}
    else:
        draft["ticket"] = {"comment": {"body": packet.customer_update, "public": True}}
    return {"ticket_id": case.ticket.id, "internal_note": note, "draft_public_reply": draft}


# -- Jira (Atlassian Document Format) -------------------------------------------------------


def _adf_text(text: str, *, strong: bool = False) -> list[dict[str, Any]]:
    """Inline ADF nodes for text: line breaks as hardBreak, never an empty text node."""
    nodes: list[dict[str, Any]] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            nodes.append({"type": "hardBreak"})
        if line:
            node: dict[str, Any] = {"type": "text", "text": line}
            if strong:
                node["marks"] = [{"type": "strong"}]
            nodes.append(node)
    return nodes


def _adf_para(text: str, *, strong: bool = False) -> dict[str, Any]:
    content = _adf_text(text, strong=strong)
    return {"type": "paragraph", "content": content} if content else {"type": "paragraph"}


def _adf_heading(text: str, level: int = 3) -> dict[str, Any]:
    return {"type": "heading", "attrs": {"level": level}, "content": _adf_text(text) or _adf_text("-")}


def _adf_list(items: list[str], *, ordered: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "orderedList" if ordered else "bulletList",
                            "content": [{"type": "listItem", "content": [_adf_para(i)]} for i in items]}
    if ordered:
        node["attrs"] = {"order": 1}
    return node


def _adf_section(title: str, items: list[str], empty: str, *, ordered: bool = False) -> list[dict[str, Any]]:
    return [_adf_heading(title), _adf_list(items, ordered=ordered) if items else _adf_para(empty)]


def _jira_priority(level: str) -> str:
    digit = next((ch for ch in level if ch.isdigit()), "")
    return _JIRA_PRIORITY.get(digit, "Lowest" if digit else "Medium")


def _label(text: str) -> str:
    return _LABEL_UNSAFE.sub("-", text).strip("-")[:255]


def _jira(packet: Packet, case: Case, *, project_key: str = "ENG", issue_type: str = "Bug") -> dict[str, Any]:
    if not project_key.strip() or not issue_type.strip():
        raise InputError("jira-issue: project_key and issue_type must not be empty")
    content: list[dict[str, Any]] = [
        _adf_para(INTERNAL_BANNER, strong=True),
        _adf_heading("Summary"), _adf_para(packet.summary),
        _adf_heading("Severity"), _adf_para(_severity_line(packet)),
        *_adf_section("Reproduction steps", packet.reproduction_steps, "Not reproduced yet.", ordered=True),
        _adf_heading("Owner"), _adf_para(_owner_line(packet)),
        *_adf_section("Missing information", _missing_lines(packet), "Nothing missing."),
        *_adf_section("Next actions", _action_lines(packet), "None."),
        *_adf_section("Triggers", _trigger_lines(packet), "None."),
        _adf_heading("SLA"), _adf_para(_sla_line(packet)),
    ]
    failing = failing_checks(packet)
    if failing:
        content += _adf_section("Failing checks (needs review)", _check_lines(failing), "")
    content.append(_adf_para(f"Support ticket {case.ticket.id} ({case.account.name}, tier {case.account.tier}); "
                             f"policy pack {_pack_line(packet)}; as of {packet.as_of}."))
    labels = [_label(x) for x in ("escalation", packet.severity.level, f"area-{packet.product_area}",
                                  *(f"trigger-{t.key}" for t in packet.triggers))]
    if packet.needs_review:
        labels.append("needs-review")
    summary = " ".join(_title(packet, case).split())
    return {"fields": {
        "project": {"key": project_key},
        "issuetype": {"name": issue_type},
        "summary": truncate(summary, JIRA_SUMMARY_MAX),
        "description": {"version": 1, "type": "doc", "content": content},
        "priority": {"name": _jira_priority(packet.severity.level)},
        "labels": list(dict.fromkeys(label for label in labels if label)),
    }}


# -- Slack Block Kit --------------------------------------------------------------------------


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int) -> str:
    """Escaped Slack mrkdwn of at most `limit` characters, never cutting an escape sequence in half."""
    escaped = _mrkdwn_escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for ch in text:
        piece = _mrkdwn_escape(ch)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out).rstrip() + ELLIPSIS


def _slack_section(title: str, lines: list[str], bullet: str = "•") -> dict[str, Any]:
    body = "\n".join(f"{bullet} {ln}" for ln in lines)
    head = f"*{_mrkdwn_escape(title)}*\n"
    return {"type": "section", "text": {"type": "mrkdwn", "text": head + _mrkdwn(body, SLACK_SECTION_MAX - len(head))}}


def _slack_field(title: str, value: str) -> dict[str, Any]:
    head = f"*{_mrkdwn_escape(title)}*\n"
    return {"type": "mrkdwn", "text": head + _mrkdwn(value, SLACK_FIELD_MAX - len(head))}


def _slack(packet: Packet, case: Case, *, channel: str | None = None) -> dict[str, Any]:
    sla_due = "no SLA target"
    if packet.sla is not None:
        state = " (BREACHED)" if packet.sla.breached else (" (at risk)" if packet.sla.at_risk else "")
        sla_due = f"{packet.sla.due_at}{state}"
    owner = packet.owner.team + (f" ({packet.owner.alias})" if packet.owner.alias else "")
    fields = [
        _slack_field("Severity", f"{packet.severity.level} ({packet.severity.section})"),
        _slack_field("Owner", owner),
        _slack_field("Triggers", ", ".join(t.key for t in packet.triggers) or "none"),
        _slack_field("SLA due", sla_due),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(" ".join(_title(packet, case).split()),
                                                                          SLACK_HEADER_MAX), "emoji": True}},
        {"type": "section", "fields": fields[:SLACK_FIELDS_MAX]},
        _slack_section("Summary", [packet.summary], bullet=""),
        _slack_section("Why " + packet.severity.level, [packet.severity.rationale], bullet=""),
    ]
    if packet.next_actions:
        blocks.append(_slack_section("Next actions", _action_lines(packet)))
    if packet.missing_info:
        blocks.append(_slack_section("Missing information", [m.question for m in packet.missing_info]))
    failing = failing_checks(packet)
    if failing:
        blocks.append(_slack_section("Failing checks: needs review", _check_lines(failing)))
    context = (f"Internal; not for the customer. Ticket {case.ticket.id} · {case.account.name} · "
               f"pack {_pack_line(packet)} · as of {packet.as_of}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(context, SLACK_CONTEXT_MAX)}]})
    headline = packet.summary.split("\n", 1)[0]
    fallback = f"{_title(packet, case)}: {headline}. Owner: {owner}. Internal; not for the customer."
    message: dict[str, Any] = {"text": _mrkdwn(fallback, SLACK_FALLBACK_MAX), "blocks": blocks[:SLACK_BLOCKS_MAX]}
    target = channel or packet.owner.alias
    if target:
        message = {"channel": target, **message}
    return message


# -- Markdown ---------------------------------------------------------------------------------


_MD_SPECIAL = re.compile(r"([\\`*<\[\]|])|(?<!\w)_|_(?!\w)")
_MD_LINE_START = re.compile(r"^(\s*)([#>+-]|\d+[.)])(?=\s|$)", re.MULTILINE)


def _md_escape(text: str) -> str:
    """Text that stays text in Markdown: no emphasis, links, HTML, headings, quotes or list items sneak in."""
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
    def line_start(m: re.Match[str]) -> str:
        marker = m.group(2)
        return m.group(1) + (marker[:-1] + "\\" + marker[-1] if marker[0].isdigit() else "\\" + marker)
    return _MD_LINE_START.sub(line_start, text)


def _md_list(items: list[str], *, ordered: bool = False, empty: str = "None.") -> list[str]:
    if not items:
        return [empty]
    return [(f"{n}. " if ordered else "- ") + _md_escape(item).replace("\n", "\n   ")
            for n, item in enumerate(items, 1)]


def _markdown(packet: Packet, case: Case) -> dict[str, Any]:
    lines = [f"# {_md_escape(' '.join(_title(packet, case).split()))}", "",
             f"> {INTERNAL_BANNER} The customer update is offered only as the Zendesk draft reply, after approval.",
             "", f"- **Case:** {_md_escape(case.id)} (ticket {_md_escape(case.ticket.id)}, "
             f"{_md_escape(case.account.name)}, tier {_md_escape(case.account.tier)})",
             f"- **As of:** {packet.as_of}", f"- **Product area:** {_md_escape(packet.product_area)}",
             f"- **Policy pack:** {_md_escape(_pack_line(packet))}",
             f"- **Needs review:** {'yes' if packet.needs_review else 'no'}", "",
             "## Summary", "", _md_escape(packet.summary).replace("\n", "  \n"), "",
             "## Severity", "", _md_escape(_severity_line(packet)), "",
             "## Owner", "", _md_escape(_owner_line(packet)), "",
             "## Triggers", "", *_md_list(_trigger_lines(packet)), "",
             "## SLA", "", _md_escape(_sla_line(packet)), "",
             "## Next actions", "", *_md_list(_action_lines(packet)), "",
             "## Missing information", "", *_md_list(_missing_lines(packet), empty="Nothing missing."), "",
             "## Reproduction steps", "", *_md_list(packet.reproduction_steps, ordered=True,
                                                    empty="Not reproduced yet."), ""]
    failing = failing_checks(packet)
    lines += ["## Checks", ""]
    lines += [f"- {'pass' if c.passed else '**FAIL**'} {_md_escape(c.key)}"
              + (f": {_md_escape('; '.join(c.details))}" if c.details else "") for c in packet.checks]
    if failing:
        lines += ["", "The draft customer reply is blocked until every check passes."]
    return {"format": "markdown", "visibility": "internal", "text": "\n".join(lines).rstrip() + "\n"}


_EMITTERS: dict[str, tuple[Callable[..., dict[str, Any]], tuple[str, ...]]] = {
    "zendesk-note": (_zendesk, ()),
    "jira-issue": (_jira, ("project_key", "issue_type")),
    "slack": (_slack, ("channel",)),
    "markdown": (_markdown, ()),
}

KINDS: tuple[str, ...] = tuple(_EMITTERS)


def emit(kind: str, packet: Packet, case: Case, **options: Any) -> dict[str, Any]:
    """The payload of `kind` for a packet; options: jira-issue project_key/issue_type, slack channel."""
    try:
        fn, allowed = _EMITTERS[kind]
    except KeyError:
        raise InputError(f"emit {kind!r}: unknown kind; choose one of {', '.join(KINDS)}") from None
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = f"it takes {', '.join(allowed)}" if allowed else "it takes no options"
        raise InputError(f"emit {kind}: unknown option {unknown[0]!r}; {takes}")
    bad = [k for k, v in options.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise InputError(f"emit {kind}: option {bad[0]!r} must be text")
    return fn(packet, case, **{k: v for k, v in options.items() if v is not None})
