"""Jira (Cloud, Server/Data Center, Service Management) importer: one issue as an `ImportedTicket`.

Reads the JSON the public REST API returns, already decoded: GET /rest/api/2/issue/{key}
or /rest/api/3/issue/{key} (with `?expand=changelog` for field changes), optionally with
GET .../issue/{key}/comment. API v2 writes rich text as wiki markup, v3 as Atlassian
Document Format; both become the same plain text, because evidence quotes must match what
a person reads whichever API version exported the issue. A comment restricted to a role or
group, or marked internal by Service Management, stays internal, so the customer update
can never quote it. Nothing here calls the network.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..errors import InputError
from .ticket import ImportedTicket, api_time

SOURCE = "jira"
_ISSUE_HINT = "pass the JSON of GET /rest/api/2/issue/{key}?expand=changelog (or /rest/api/3/...)"
_COMMENTS_HINT = "pass the JSON of GET /rest/api/2/issue/{key}/comment as --comments"

_PRIORITY = {
    "highest": "urgent", "blocker": "urgent",
    "high": "high", "critical": "high",
    "medium": "normal", "major": "normal",
    "low": "low", "lowest": "low", "minor": "low", "trivial": "low",
}
"""Jira's default scheme (Highest…Lowest) and the older one (Blocker…Trivial) on the case's four levels."""


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return kinds.get(type(value), type(value).__name__)


def _other_vendor(obj: dict[str, Any]) -> str | None:
    """The vendor a payload that is not a Jira issue seems to come from, for the error message."""
    if "ticket" in obj or "requester_id" in obj or "via" in obj:
        if isinstance(obj.get("status"), int) or "responder_id" in obj:
            return "a Freshdesk ticket; import it with the Freshdesk importer"
        return "a Zendesk ticket (it has 'ticket'/'requester_id'/'via'); import it with the Zendesk importer"
    if "bugs" in obj or ("creator" in obj and "summary" in obj and "component" in obj):
        return "a Bugzilla bug; import it with the Bugzilla importer"
    if isinstance(obj.get("status"), int) or "description_text" in obj:
        return "a Freshdesk ticket; import it with the Freshdesk importer"
    return None


# ---------------------------------------------------------------- time and people

def _time(value: Any, where: str) -> datetime:
    """An aware datetime from Jira's timestamps ("2026-03-04T10:15:30.000+0000") or ISO 8601."""
    if isinstance(value, dict):  # Service Management API: {"iso8601": ..., "epochMillis": ...}
        value = value.get("iso8601") or value.get("jira") or value.get("epochMillis")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return api_time(value, where, "Jira API", "2026-03-04T10:15:30.000+0000")


def _ids(user: Any) -> set[str]:
    """Every identifier a Jira user object carries (Cloud accountId, Server name/key, e-mail)."""
    if not isinstance(user, dict):
        return set()
    return {str(user[k]).casefold() for k in ("accountId", "name", "key", "emailAddress") if user.get(k)}


def _name(user: Any) -> str:
    if not isinstance(user, dict):
        return "unknown"
    for k in ("displayName", "name", "emailAddress", "accountId"):
        if isinstance(user.get(k), str) and user[k].strip():
            return str(user[k]).strip()
    return "unknown"


def _role(user: Any, reporter: Any) -> str:
    """Reporter and Service Management customers are customers; apps are the system; other accounts agents."""
    ids = _ids(user)
    if ids and ids & _ids(reporter):
        return "customer"
    kind = user.get("accountType") if isinstance(user, dict) else None
    if kind == "customer":
        return "customer"
    if kind == "app" or not ids:
        return "system"
    return "agent"


# ---------------------------------------------------------------- Atlassian Document Format

_BLOCK_JOIN = "\n\n"


def _inline(nodes: Any) -> str:
    """The text of inline nodes: marks dropped, links kept as "text (url)", mentions as their display text."""
    out: list[str] = []
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        attrs: dict[str, Any] = node["attrs"] if isinstance(node.get("attrs"), dict) else {}
        if kind == "text":
            text = str(node.get("text", ""))
            href = next((m.get("attrs", {}).get("href") for m in node.get("marks") or []
                         if isinstance(m, dict) and m.get("type") == "link"), None)
            out.append(f"{text} ({href})" if href and href != text else text)
        elif kind == "hardBreak":
            out.append("\n")
        elif kind == "mention":
            text = str(attrs.get("text") or f"@{attrs.get('id', 'someone')}")
            out.append(text if text.startswith("@") else "@" + text)
        elif kind == "emoji":
            out.append(str(attrs.get("text") or attrs.get("shortName") or ""))
        elif kind in ("inlineCard", "blockCard", "embedCard"):
            out.append(str(attrs.get("url") or ""))
        elif kind == "status":
            out.append(str(attrs.get("text") or ""))
        elif kind == "date" and str(attrs.get("timestamp", "")).isdigit():
            out.append(datetime.fromtimestamp(int(attrs["timestamp"]) / 1000, tz=UTC).strftime("%Y-%m-%d"))
        elif kind in ("media", "mediaInline"):
            continue
        else:  # unknown inline nodes: their text, if any
            out.append(_inline(node.get("content")))
    return "".join(out)


def _list(node: dict[str, Any], depth: int) -> str:
    ordered = node.get("type") == "orderedList"
    start = (node.get("attrs") or {}).get("order", 1) if ordered else 1
    lines: list[str] = []
    for i, item in enumerate(c for c in node.get("content") or [] if isinstance(c, dict)):
        marker = f"{start + i}. " if ordered else "- "
        if item.get("type") == "taskItem":
            done = (item.get("attrs") or {}).get("state") == "DONE"
            marker = "- [x] " if done else "- [ ] "
        pad = "  " * depth
        first = True
        children = item.get("content") or []
        if children and all(isinstance(c, dict) and c.get("type") not in _BLOCK_TYPES for c in children):
            children = [{"type": "paragraph", "content": children}]  # taskItem holds inline nodes directly
        for child in children:
            if not isinstance(child, dict):
                continue
            if child.get("type") in ("bulletList", "orderedList", "taskList"):
                lines.append(_list(child, depth + 1))
                continue
            text = _block(child, depth)
            for j, line in enumerate(text.split("\n")):
                lines.append(pad + (marker if first and j == 0 else " " * len(marker)) + line)
            first = False
        if first:
            lines.append(pad + marker.rstrip())
    return "\n".join(lines)


_BLOCK_TYPES = {"doc", "paragraph", "heading", "bulletList", "orderedList", "listItem", "codeBlock", "blockquote",
                "panel", "rule", "table", "tableRow", "tableHeader", "tableCell", "mediaSingle", "mediaGroup",
                "expand", "nestedExpand", "taskList", "taskItem", "decisionList", "decisionItem", "blockCard",
                "embedCard", "layoutSection", "layoutColumn", "bodiedExtension", "extension"}


def _blocks(nodes: Any, depth: int = 0) -> str:
    """Block nodes one after another, separated by a blank line; runs of inline nodes become a paragraph."""
    parts: list[str] = []
    run: list[Any] = []
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict) and node.get("type") in _BLOCK_TYPES:
            if run:
                parts.append(_inline(run))
                run = []
            parts.append(_block(node, depth))
        else:
            run.append(node)
    if run:
        parts.append(_inline(run))
    return _BLOCK_JOIN.join(p for p in parts if p.strip())


def _block(node: dict[str, Any], depth: int = 0) -> str:
    kind = node.get("type")
    content = node.get("content")
    if kind in ("paragraph", "heading", "decisionItem"):
        return _inline(content).strip()
    if kind == "codeBlock":
        return "".join(str(c.get("text", "")) for c in content or [] if isinstance(c, dict)).strip("\n")
    if kind in ("bulletList", "orderedList", "taskList"):
        return _list(node, depth)
    if kind == "rule":
        return "----"
    if kind == "table":
        rows = []
        for row in content or []:
            if isinstance(row, dict):
                cells = [_blocks(c.get("content")).replace("\n\n", " ").replace("\n", " ")
                         for c in row.get("content") or [] if isinstance(c, dict)]
                rows.append(" | ".join(cells))
        return "\n".join(rows)
    if kind in ("mediaSingle", "mediaGroup", "extension"):
        return ""
    if kind in ("blockCard", "embedCard"):
        return _inline([node])
    if kind in ("expand", "nestedExpand"):
        title = str((node.get("attrs") or {}).get("title") or "").strip()
        body = _blocks(content, depth)
        return _BLOCK_JOIN.join(p for p in (title, body) if p)
    # doc, blockquote, panel, listItem, layout…, and unknown blocks: their content
    return _blocks(content, depth)


def adf_to_text(doc: Any) -> str:
    """Plain text of an Atlassian Document Format tree: one block a paragraph, list items "- ", code verbatim."""
    if not isinstance(doc, dict):
        return ""
    return _tidy(_block(doc))


# ---------------------------------------------------------------- wiki markup (API v2)

_CODE = re.compile(r"(?<!\{)\{(code|noformat)(?::[^}]*)?\}(?!\})(.*?)(?:(?<!\{)\{\1\}(?!\})|\Z)", re.DOTALL)
_MACRO = re.compile(r"\{(?:quote|panel|color|section|column)(?::[^}]*)?\}")
_HEADING = re.compile(r"^h[1-6]\.\s+(.*)$")
_LIST = re.compile(r"^([*#-]+)\s+(.*)$")
_LINK = re.compile(r"\[([^\[\]|]*)\|([^\[\]]+)\]")
_BARE_LINK = re.compile(r"\[((?:https?|ftp|mailto|file):[^\[\]\s]+)\]")
_USER = re.compile(r"\[~(?:accountid:)?([^\[\]]+)\]")
_IMAGE = re.compile(r"!([^!\s|]+\.(?:png|jpe?g|gif|bmp|svg|webp))(?:\|[^!\n]*)?!", re.IGNORECASE)
_MONO = re.compile(r"\{\{(.+?)\}\}")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=[^\s_])([^_\n]+?)(?<=[^\s_])_(?![\w_])")


def _wiki_inline(text: str) -> str:
    text = _MONO.sub(r"\1", text)
    text = _USER.sub(r"@\1", text)
    text = _LINK.sub(lambda m: m.group(2) if not m.group(1).strip() or m.group(1) == m.group(2)
                     else f"{m.group(1)} ({m.group(2)})", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _IMAGE.sub("", text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    return text.replace("\\\\", "\n")


def _wiki_lines(segment: str) -> list[str]:
    """Blocks of a stretch of wiki markup with no code in it."""
    blocks: list[str] = []
    para: list[str] = []
    items: list[str] = []
    table: list[str] = []
    counters: dict[int, int] = {}

    def flush() -> None:
        nonlocal para, items, table
        for buf in (para, items, table):
            if buf:
                blocks.append("\n".join(buf))
        para, items, table = [], [], []
        counters.clear()

    for raw in _MACRO.sub("\n", segment).split("\n"):
        line = raw.strip()
        if not line:
            flush()
            continue
        heading = _HEADING.match(line)
        if heading or line.startswith("bq. ") or re.fullmatch(r"-{4,}", line):
            flush()
            blocks.append("----" if line.startswith("----") else _wiki_inline((heading.group(1) if heading
                                                                                else line[4:]).strip()))
            continue
        lst = _LIST.match(line)
        if lst:
            if para or table:
                blocks.extend("\n".join(b) for b in (para, table) if b)
                para, table = [], []
            marks = lst.group(1)
            depth = len(marks) - 1
            for d in [d for d in counters if d > depth]:
                del counters[d]
            if marks[-1] == "#":
                counters[depth] = counters.get(depth, 0) + 1
                marker = f"{counters[depth]}. "
            else:
                marker = "- "
            items.append("  " * depth + marker + _wiki_inline(lst.group(2).strip()))
            continue
        if line.startswith("|"):
            if para or items:
                blocks.extend("\n".join(b) for b in (para, items) if b)
                para, items = [], []
                counters.clear()
            cells = [c.strip() for c in re.split(r"\|\|?", line.strip("|"))]
            table.append(" | ".join(_wiki_inline(c) for c in cells))
            continue
        if items or table:
            blocks.extend("\n".join(b) for b in (items, table) if b)
            items, table = [], []
            counters.clear()
        para.append(_wiki_inline(line))
    flush()
    return blocks


def wiki_to_text(markup: str) -> str:
    """Plain text of Jira wiki markup, in the same shape `adf_to_text` gives for the same content."""
    text = markup.replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[str] = []
    pos = 0
    for m in _CODE.finditer(text):
        blocks.extend(_wiki_lines(text[pos:m.start()]))
        code = m.group(2).strip("\n")
        if code.strip():
            blocks.append(code)
        pos = m.end()
    blocks.extend(_wiki_lines(text[pos:]))
    return _tidy(_BLOCK_JOIN.join(b for b in blocks if b.strip()))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def rich_text(value: Any) -> str:
    """A Jira rich-text field as plain text, whichever API version wrote it."""
    if isinstance(value, dict):
        return adf_to_text(value)
    if isinstance(value, str):
        return wiki_to_text(value)
    return ""


# ---------------------------------------------------------------- comments and changelog

def _internal(comment: dict[str, Any]) -> bool:
    """Restricted to a role or group, or a Service Management internal note."""
    vis = comment.get("visibility")
    if isinstance(vis, dict) and (vis.get("type") or vis.get("value") or vis.get("identifier")):
        return True
    if comment.get("jsdPublic") is False or comment.get("public") is False:
        return True
    props = comment.get("properties")
    for prop in props if isinstance(props, list) else []:
        if isinstance(prop, dict) and prop.get("key") == "sd.public.comment":
            value = prop.get("value")
            if isinstance(value, dict) and value.get("internal") in (True, "true"):
                return True
    return False


def _comment_list(comments: Any, where: str) -> list[Any]:
    if isinstance(comments, list):
        return comments
    if isinstance(comments, dict):
        inner = comments.get("comments", comments.get("values"))
        if isinstance(inner, list):
            return inner
        if "fields" in comments and "key" in comments:
            raise InputError(f"{where}: this is an issue, not its comments; {_COMMENTS_HINT}")
    raise InputError(f"{where}: expected {{\"comments\": [...]}}, got {_kind(comments)}; {_COMMENTS_HINT}")


def _change_key(item: dict[str, Any]) -> str | None:
    """The case's name for a changelog field we keep, or None for the rest."""
    field = str(item.get("field") or "").casefold()
    field_id = str(item.get("fieldId") or "").casefold()
    if "severity" in field:
        return "severity"
    for key in ("priority", "status", "assignee"):
        if key in (field, field_id):
            return key
    if field in ("component", "components") or field_id == "components":
        return "components"
    return None


def _merge(old: Any, new: Any) -> Any:
    if old is None or old == new:
        return new
    if new is None:
        return old
    return f"{old}, {new}"


def _history_events(histories: list[Any], reporter: Any) -> list[dict[str, Any]]:
    events = []
    for n, hist in enumerate(histories):
        if not isinstance(hist, dict):
            continue
        changes: dict[str, list[Any]] = {}
        labels: dict[str, str] = {}
        for item in hist.get("items") or []:
            if not isinstance(item, dict):
                continue
            key = _change_key(item)
            if key is None:
                continue
            old, new = item.get("fromString"), item.get("toString")
            if key in changes:
                changes[key] = [_merge(changes[key][0], old), _merge(changes[key][1], new)]
            else:
                changes[key] = [old, new]
                labels[key] = str(item.get("field") or key)
        if not changes:
            continue
        author = hist.get("author")
        role = "system" if _role(author, reporter) == "system" else "agent"
        body = "; ".join(f"{labels[k]} changed from {old if old is not None else '(none)'} to "
                         f"{new if new is not None else '(none)'}" for k, (old, new) in changes.items())
        events.append({
            "id": f"h{hist.get('id', n)}",
            "at": _time(hist.get("created"), f"changelog.histories[{n}].created"),
            "author": {"name": _name(author) if role != "system" or author else "Jira automation", "role": role},
            "visibility": "internal",
            "body": body,
            "changes": {k: (v[0], v[1]) for k, v in changes.items()},
        })
    return events


# ---------------------------------------------------------------- the issue

def _field_name(value: Any) -> str | None:
    if isinstance(value, dict):
        v = value.get("name") or value.get("value")
        return str(v) if v else None
    return str(value) if isinstance(value, str) and value else None


def parse(issue: Any, *, comments: Any | None = None) -> ImportedTicket:
    """Read one Jira issue (and optionally its comment list, which wins over the embedded one)."""
    if isinstance(issue, dict) and isinstance(issue.get("issues"), list) and len(issue["issues"]) == 1:
        issue = issue["issues"][0]  # a search result holding one issue
    if not isinstance(issue, dict):
        raise InputError(f"jira: expected an issue object, got {_kind(issue)}; {_ISSUE_HINT}")
    if not isinstance(issue.get("fields"), dict) or not issue.get("key"):
        other = _other_vendor(issue)
        if other:
            raise InputError(f"jira: this looks like {other}")
        missing = "fields" if not isinstance(issue.get("fields"), dict) else "key"
        raise InputError(f"jira: not a Jira issue (no {missing!r}); {_ISSUE_HINT}")
    key = str(issue["key"])
    fields: dict[str, Any] = issue["fields"]
    where = f"jira issue {key}"
    warnings: list[str] = []

    summary = fields.get("summary")
    if not isinstance(summary, str):
        raise InputError(f"{where}: fields.summary is missing; {_ISSUE_HINT} without a `fields=` filter")
    created = _time(fields.get("created"), f"{where}: fields.created")
    reporter = fields.get("reporter") or fields.get("creator")

    events: list[dict[str, Any]] = [{
        "id": "description",
        "at": created,
        "author": {"name": _name(reporter), "role": "customer"},
        "visibility": "public",
        "body": rich_text(fields.get("description")),
    }]

    if comments is not None:
        raw_comments = _comment_list(comments, f"{where}: comments")
    else:
        embedded = fields.get("comment")
        raw_comments = _comment_list(embedded, f"{where}: fields.comment") if embedded is not None else []
        if isinstance(embedded, dict) and isinstance(embedded.get("total"), int) \
                and embedded["total"] > len(raw_comments):
            warnings.append(f"comments: the issue embeds {len(raw_comments)} of {embedded['total']} comments; "
                            "pass GET /rest/api/2/issue/{key}/comment?maxResults=1000 as --comments for all")
    for n, c in enumerate(raw_comments):
        if not isinstance(c, dict):
            raise InputError(f"{where}: comments[{n}]: expected a comment object, got {_kind(c)}")
        author = c.get("author")
        events.append({
            "id": f"c{c.get('id', n)}",
            "at": _time(c.get("created"), f"{where}: comments[{n}].created"),
            "author": {"name": _name(author), "role": _role(author, reporter)},
            "visibility": "internal" if _internal(c) else "public",
            "body": rich_text(c.get("body")),
        })

    changelog = issue.get("changelog")
    histories = changelog.get("histories") if isinstance(changelog, dict) else None
    events.extend(_history_events(histories if isinstance(histories, list) else [], reporter))

    prio_name = _field_name(fields.get("priority"))
    priority = _PRIORITY.get(prio_name.casefold()) if prio_name else None
    if prio_name and priority is None:
        warnings.append(f"priority: Jira priority {prio_name!r} is not one the importer knows; left unset "
                        "(map it in connectors.yaml under jira.fields.priority)")
    tags = [str(x) for x in fields.get("labels") or [] if x]
    tags += [n for n in (_field_name(c) for c in fields.get("components") or []) if n]
    assignee = fields.get("assignee")
    status = _field_name(fields.get("status")) or "unknown"
    email = reporter.get("emailAddress") if isinstance(reporter, dict) else None
    return ImportedTicket(
        source=SOURCE,
        ticket_id=key,
        subject=summary.strip(),
        created_at=created,
        status=status,
        requester_name=_name(reporter),
        requester_email=email if isinstance(email, str) and email else None,
        events=events,
        docs={"issue": issue, "fields": fields},
        tags=tags,
        priority=priority,
        assignee={"name": _name(assignee)} if isinstance(assignee, dict) else None,
        warnings=warnings,
    )
