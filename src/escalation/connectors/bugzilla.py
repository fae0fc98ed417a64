"""Bugzilla (REST API, 5.0 and later) importer: one bug, its comments and history as an `ImportedTicket`.

Reads the JSON the public API returns, already decoded: GET /rest/bug/{id} ({"bugs": [...]}),
/rest/bug/{id}/comment ({"bugs": {"<id>": {"comments": [...]}}}) and /rest/bug/{id}/history;
also a bare bug object with embedded `comments` and `history`, as exports such as
bugbug's keep them. Comment 0 is the description. A private comment (`is_private`) stays
internal, so the customer update can never quote it. Nothing here calls the network.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import InputError
from .ticket import ImportedTicket, api_time

SOURCE = "bugzilla"
_BUG_HINT = "pass the JSON of GET /rest/bug/{id}"
_COMMENTS_HINT = "pass the JSON of GET /rest/bug/{id}/comment as --comments"
_HISTORY_HINT = "pass the JSON of GET /rest/bug/{id}/history as --history"

_PRIORITY = {"p1": "urgent", "p2": "high", "p3": "normal", "p4": "low", "p5": "low"}
"""Bugzilla's P1…P5 on the case's four levels; "--" (not prioritised) maps to nothing."""

_FIELDS = {"severity": "severity", "priority": "priority", "status": "status", "bug_status": "status",
           "assigned_to": "assignee", "component": "component"}
"""History fields that become field-change events, and their names in the case."""


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return kinds.get(type(value), type(value).__name__)


def _other_vendor(obj: dict[str, Any]) -> str | None:
    if "key" in obj and "fields" in obj:
        return "a Jira issue (it has 'key' and 'fields'); import it with the Jira importer"
    if "ticket" in obj or "requester_id" in obj or "via" in obj:
        return "a Zendesk or Freshdesk ticket; import it with that help desk's importer"
    return None


def _time(value: Any, where: str) -> datetime:
    return api_time(value, where, "Bugzilla REST API", "2026-03-04T10:15:30Z")


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip().casefold() == b.strip().casefold() != ""


def _is_bot(login: Any) -> bool:
    local = str(login or "").split("@", 1)[0].casefold()
    return "bot" in local.replace("+", "-").split("-") or local.endswith("bot") or local.startswith("bot")


def _role(login: Any, creator: Any) -> str:
    """The bug's creator is the customer; bots are the system; everyone else (mostly developers) an engineer."""
    if _same(login, creator):
        return "customer"
    if _is_bot(login):
        return "system"
    return "engineer"


def _unwrap_bug(bug: Any) -> dict[str, Any]:
    if isinstance(bug, list) and len(bug) == 1:
        bug = bug[0]
    if not isinstance(bug, dict):
        raise InputError(f"bugzilla: expected a bug object, got {_kind(bug)}; {_BUG_HINT}")
    if bug.get("error") is True or ("code" in bug and "message" in bug and "bugs" not in bug):
        raise InputError(f"bugzilla: the file holds an API error, not a bug: {bug.get('message')!r}; {_BUG_HINT}")
    if "bugs" in bug:
        bugs = bug["bugs"]
        if isinstance(bugs, dict):
            raise InputError(f"bugzilla: this looks like a comment list (/rest/bug/{{id}}/comment); {_BUG_HINT} "
                             "as the main file and the comments as --comments")
        if not isinstance(bugs, list) or not bugs:
            raise InputError(f"bugzilla: the file holds no bug ('bugs' is empty); {_BUG_HINT}")
        if len(bugs) > 1:
            raise InputError(f"bugzilla: the file holds {len(bugs)} bugs; pass one bug at a time")
        bug = bugs[0]
        if not isinstance(bug, dict):
            raise InputError(f"bugzilla: bugs[0] is {_kind(bug)}, not a bug object; {_BUG_HINT}")
    if "id" not in bug or "summary" not in bug:
        other = _other_vendor(bug)
        if other:
            raise InputError(f"bugzilla: this looks like {other}")
        if "history" in bug and "summary" not in bug:
            raise InputError(f"bugzilla: this looks like a bug history (/rest/bug/{{id}}/history); {_HISTORY_HINT}")
        missing = "id" if "id" not in bug else "summary"
        raise InputError(f"bugzilla: not a Bugzilla bug (no {missing!r}); {_BUG_HINT}")
    return bug


def _comments(comments: Any, bug_id: str) -> list[Any]:
    """The comment list from /rest/bug/{id}/comment, {"comments": [...]} or a bare list."""
    if isinstance(comments, list):
        return comments
    if isinstance(comments, dict):
        bugs = comments.get("bugs")
        if isinstance(bugs, dict):
            entry = bugs.get(bug_id)
            if entry is None and len(bugs) == 1:
                other = next(iter(bugs))
                raise InputError(f"bugzilla bug {bug_id}: --comments holds the comments of bug {other}, "
                                 f"not of bug {bug_id}; {_COMMENTS_HINT}")
            if isinstance(entry, dict) and isinstance(entry.get("comments"), list):
                return list(entry["comments"])
        if isinstance(comments.get("comments"), list):
            return list(comments["comments"])
    raise InputError(f"bugzilla bug {bug_id}: comments: expected the response of /rest/bug/{{id}}/comment, "
                     f"got {_kind(comments)}; {_COMMENTS_HINT}")


def _history(history: Any, bug_id: str) -> list[Any]:
    """The history list from /rest/bug/{id}/history, {"history": [...]} or a bare list."""
    if isinstance(history, list):
        return history
    if isinstance(history, dict):
        bugs = history.get("bugs")
        if isinstance(bugs, list):
            for b in bugs:
                if isinstance(b, dict) and str(b.get("id")) == bug_id and isinstance(b.get("history"), list):
                    return list(b["history"])
            if len(bugs) == 1 and isinstance(bugs[0], dict) and isinstance(bugs[0].get("history"), list):
                raise InputError(f"bugzilla bug {bug_id}: --history holds the history of bug {bugs[0].get('id')}, "
                                 f"not of bug {bug_id}; {_HISTORY_HINT}")
        if isinstance(history.get("history"), list):
            return list(history["history"])
    raise InputError(f"bugzilla bug {bug_id}: history: expected the response of /rest/bug/{{id}}/history, "
                     f"got {_kind(history)}; {_HISTORY_HINT}")


def _history_events(entries: list[Any], creator: Any, names: dict[str, str], where: str) -> list[dict[str, Any]]:
    events = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        changes: dict[str, tuple[Any, Any]] = {}
        lines = []
        for ch in entry.get("changes") or []:
            if not isinstance(ch, dict):
                continue
            key = _FIELDS.get(str(ch.get("field_name") or ""))
            if key is None:
                continue
            old, new = ch.get("removed") or None, ch.get("added") or None
            changes[key] = (old, new)
            lines.append(f"{ch['field_name']} changed from {old or '(none)'} to {new or '(none)'}")
        if not changes:
            continue
        who = entry.get("who")
        role = _role(who, creator)
        events.append({
            "id": f"h{n}",
            "at": _time(entry.get("when"), f"{where}: history[{n}].when"),
            "author": {"name": names.get(str(who or "").casefold()) or str(who or "unknown"), "role": role},
            "visibility": "internal",
            "body": "; ".join(lines),
            "changes": changes,
        })
    return events


def _tags(bug: dict[str, Any]) -> list[str]:
    """Keywords, then the [bracketed] whiteboard tokens."""
    tags = [str(k) for k in bug.get("keywords") or [] if k]
    board = bug.get("whiteboard")
    if isinstance(board, str):
        for part in board.split("["):
            token = part.split("]", 1)[0].strip() if "]" in part else ""
            if token and token not in tags:
                tags.append(token)
    return tags


def _person(detail: Any, login: Any) -> tuple[str, str | None]:
    """Display name and e-mail of a Bugzilla user (the `*_detail` object when the API sent it)."""
    email = login if isinstance(login, str) and "@" in login else None
    if isinstance(detail, dict):
        email = detail.get("email") or email
        name = detail.get("real_name") or detail.get("nick") or detail.get("name") or email
        return str(name or login or "unknown"), email if isinstance(email, str) and email else None
    return str(login or "unknown"), email


def _names(bug: dict[str, Any]) -> dict[str, str]:
    """Login → display name from the `*_detail` objects, so comments show who wrote them as people read it."""
    details = [bug.get(k) for k in ("creator_detail", "assigned_to_detail", "qa_contact_detail")]
    details += list(bug.get("cc_detail") or []) + list(bug.get("mentors_detail") or [])
    out: dict[str, str] = {}
    for d in details:
        if isinstance(d, dict):
            name, _ = _person(d, d.get("name"))
            for login in (d.get("name"), d.get("email")):
                if isinstance(login, str) and login:
                    out.setdefault(login.casefold(), name)
    return out


def parse(bug: Any, *, comments: Any | None = None, history: Any | None = None) -> ImportedTicket:
    """Read one Bugzilla bug; --comments and --history, when given, win over what the bug embeds."""
    b = _unwrap_bug(bug)
    bug_id = str(b["id"])
    where = f"bugzilla bug {bug_id}"
    warnings: list[str] = []
    creator = b.get("creator")
    created = _time(b.get("creation_time"), f"{where}: creation_time")

    if comments is not None:
        raw_comments = _comments(comments, bug_id)
    elif isinstance(b.get("comments"), list):
        raw_comments = b["comments"]
    else:
        raise InputError(f"{where}: the bug carries no comments, so there is no description to read; "
                         f"{_COMMENTS_HINT}")
    names = _names(b)
    events: list[dict[str, Any]] = []
    for n, c in enumerate(raw_comments):
        if not isinstance(c, dict):
            raise InputError(f"{where}: comments[{n}]: expected a comment object, got {_kind(c)}")
        count = c.get("count", n)
        first = str(count) == "0"
        login = c.get("creator") or c.get("author") or (creator if first else None)
        role = "customer" if first else _role(login, creator)
        name = names.get(str(login or "").casefold()) or str(login or "unknown")
        text = c.get("text")
        if text is None:
            text = c.get("raw_text")
        events.append({
            "id": "description" if first else f"c{c.get('id', n)}",
            "at": _time(c.get("creation_time") or c.get("time"), f"{where}: comments[{n}].creation_time"),
            "author": {"name": name, "role": role},
            "visibility": "internal" if c.get("is_private") in (True, 1, "1", "true") else "public",
            "body": str(text or "").replace("\r\n", "\n").strip(),
        })
    if not any(e["id"] == "description" for e in events):
        warnings.append("description: no comment 0 (the bug's description) was given; the first message read is "
                        "a later comment")

    if history is not None:
        raw_history = _history(history, bug_id)
    else:
        embedded = b.get("history")
        raw_history = embedded if isinstance(embedded, list) else []
        if "history" not in b:
            warnings.append(f"history: the bug carries no history, so field changes are not read; {_HISTORY_HINT}")
    events.extend(_history_events(raw_history, creator, names, where))

    raw_prio = str(b.get("priority") or "").strip()
    priority = _PRIORITY.get(raw_prio.casefold())
    if raw_prio and raw_prio not in ("--", "---") and priority is None:
        warnings.append(f"priority: Bugzilla priority {raw_prio!r} is not P1–P5; left unset "
                        "(map it in connectors.yaml under bugzilla.fields.priority)")
    status = str(b.get("status") or "unknown")
    if b.get("resolution"):
        status += f" {b['resolution']}"
    req_name, req_email = _person(b.get("creator_detail"), creator)
    assigned = b.get("assigned_to")
    assignee = None
    if assigned and not str(assigned).casefold().startswith("nobody@"):
        assignee = {"name": _person(b.get("assigned_to_detail"), assigned)[0]}
    return ImportedTicket(
        source=SOURCE,
        ticket_id=bug_id,
        subject=str(b.get("summary") or "").strip(),
        created_at=created,
        status=status,
        requester_name=req_name,
        requester_email=req_email,
        events=events,
        docs={"bug": b},
        tags=_tags(b),
        priority=priority,
        assignee=assignee,
        warnings=warnings,
    )
