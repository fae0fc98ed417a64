"""Zendesk Support (API v2) importer: a ticket, its comments, users and organization as an `ImportedTicket`.

Reads the JSON the public API returns, already decoded: GET /api/v2/tickets/{id}.json
(optionally `?include=users,organizations,groups`), /api/v2/tickets/{id}/comments.json,
/api/v2/users/show_many.json and /api/v2/organizations/{id}.json. Nothing here calls the
network or downloads attachments. A comment with `public: false` is an internal note and
stays internal, so the customer update can never quote it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import InputError
from .text import attachment_lines, html_to_text, looks_like_html
from .ticket import ImportedTicket, api_time

SOURCE = "zendesk"
_PRIORITIES = ("low", "normal", "high", "urgent")
_STAFF_ROLES = ("agent", "admin")
_TICKET_HINT = "pass the JSON of GET /api/v2/tickets/{id}.json"
_COMMENTS_HINT = "pass the JSON of GET /api/v2/tickets/{id}/comments.json as --comments"


def _kind(value: Any) -> str:
    names = {"dict": "an object", "list": "a list", "str": "a string", "NoneType": "null"}
    return names.get(type(value).__name__, type(value).__name__)


def _other_vendor(obj: dict[str, Any]) -> str | None:
    """The vendor a payload that is not a Zendesk ticket seems to come from, for the error message."""
    if "key" in obj and "fields" in obj:
        return "a Jira issue (it has 'key' and 'fields'); import it with the Jira importer"
    if isinstance(obj.get("status"), int) or "description_text" in obj or "responder_id" in obj:
        return ("a Freshdesk ticket (numeric status, description_text or responder_id); "
                "import it with the Freshdesk importer")
    return None


def _time(value: Any, where: str) -> datetime:
    return api_time(value, where, "Zendesk API", "2026-10-05T14:00:00Z")


def _text(comment: dict[str, Any]) -> str:
    """The comment as a person reads it: plain_body, else body, else html_body, markup removed."""
    for key in ("plain_body", "body", "html_body"):
        raw = comment.get(key)
        if isinstance(raw, str) and raw.strip():
            if key == "html_body" or looks_like_html(raw):
                return html_to_text(raw)
            return raw.strip()
    return ""


def _unwrap_ticket(data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ticket object and the response around it (which may carry sideloads)."""
    if isinstance(data, list):
        raise InputError(f"Zendesk ticket: expected one ticket object, got a list; {_TICKET_HINT} "
                         "(a comments list goes to --comments)")
    if not isinstance(data, dict):
        raise InputError(f"Zendesk ticket: expected a JSON object, got {_kind(data)}; {_TICKET_HINT}")
    other = _other_vendor(data)
    if other:
        raise InputError(f"Zendesk ticket: this looks like {other}")
    if "tickets" in data and "ticket" not in data:
        raise InputError("Zendesk ticket: this is a list of tickets (tickets.json or a search); "
                         f"{_TICKET_HINT} for the one ticket to escalate")
    if "comments" in data and "ticket" not in data:
        raise InputError(f"Zendesk ticket: this is a comments file, not a ticket; {_TICKET_HINT} "
                         "and give this file as --comments")
    if "audits" in data and "ticket" not in data:
        raise InputError(f"Zendesk ticket: this is a ticket audits file, not a ticket; {_TICKET_HINT}")
    obj = data.get("ticket", data)
    if not isinstance(obj, dict):
        raise InputError(f"Zendesk ticket: $.ticket is {_kind(obj)}, not a ticket object; {_TICKET_HINT}")
    other = _other_vendor(obj)
    if other:
        raise InputError(f"Zendesk ticket: this looks like {other}")
    missing = [k for k in ("id", "created_at") if obj.get(k) in (None, "")]
    if "subject" not in obj and "raw_subject" not in obj:
        missing.append("subject")
    if missing:
        raise InputError(f"Zendesk ticket: missing {', '.join(repr(k) for k in missing)}; this is not a Zendesk "
                         f"ticket object; {_TICKET_HINT}")
    return obj, (data if obj is not data else {})


def _records(data: Any, single: str, plural: str, what: str, hint: str) -> list[dict[str, Any]]:
    """Objects from `{single: {...}}`, `{plural: [...]}`, a bare object or a list (of objects or pages)."""
    if data is None:
        return []
    if isinstance(data, dict):
        if plural in data:
            data = data[plural]
        elif single in data:
            data = [data[single]]
        elif "id" in data:
            data = [data]
        else:
            keys = ", ".join(sorted(data)[:5]) or "none"
            raise InputError(f"Zendesk {what}: expected {{{plural!r}: [...]}}, got an object with keys {keys}; {hint}")
    if not isinstance(data, list):
        raise InputError(f"Zendesk {what}: expected a list of {plural}, got {_kind(data)}; {hint}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(data):
        if isinstance(item, dict) and plural in item:  # several pages of the same endpoint
            out.extend(_records(item, single, plural, what, hint))
        elif isinstance(item, dict) and "id" in item:
            out.append(item)
        else:
            raise InputError(f"Zendesk {what}[{i}]: expected a {single} object with an 'id', got {_kind(item)}; {hint}")
    return out


def _comments(data: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The comment objects and a warning when the file is only one page of several."""
    if isinstance(data, dict):
        if "ticket" in data and "comments" not in data:
            raise InputError(f"Zendesk comments: this is a ticket file, not comments; {_COMMENTS_HINT}")
        if "audits" in data:
            raise InputError(f"Zendesk comments: this is a ticket audits file, which is not read; {_COMMENTS_HINT}")
        if "conversations" in data:
            raise InputError("Zendesk comments: these look like Freshdesk conversations; import the ticket with the "
                             "Freshdesk importer")
        if "comments" not in data:
            keys = ", ".join(sorted(data)[:5]) or "none"
            raise InputError(f"Zendesk comments: expected {{'comments': [...]}}, got an object with keys {keys}; "
                             f"{_COMMENTS_HINT}")
    elif not isinstance(data, list):
        raise InputError(f"Zendesk comments: expected {{'comments': [...]}} or a list, got {_kind(data)}; "
                         f"{_COMMENTS_HINT}")
    items = data if isinstance(data, list) else [data]
    pages = [p for p in items if isinstance(p, dict) and "comments" in p]
    warnings = []
    if pages:
        last = pages[-1]
        more = last.get("next_page") or (isinstance(last.get("meta"), dict) and last["meta"].get("has_more"))
        if more:
            warnings.append("comments: the comments file is one page of several (next_page is set); later comments "
                            "are missing; pass every page (a list of the pages works)")
    comments = _records(data, "comment", "comments", "comments", _COMMENTS_HINT)
    for i, c in enumerate(comments):
        if "incoming" in c or "body_text" in c:
            raise InputError("Zendesk comments: these look like Freshdesk conversations (incoming/body_text); "
                             "import the ticket with the Freshdesk importer")
        if "created_at" not in c or not any(k in c for k in ("body", "plain_body", "html_body")):
            raise InputError(f"Zendesk comments[{i}]: not a ticket comment (it needs created_at and body); "
                             f"{_COMMENTS_HINT}")
    return comments, warnings


def _organization(data: Any, sideloaded: Any, org_id: Any) -> dict[str, Any] | None:
    """The ticket's organization, from the argument or the `include=organizations` sideload."""
    hint = "pass the JSON of GET /api/v2/organizations/{id}.json"
    given = data is not None
    orgs = _records(data if given else sideloaded, "organization", "organizations", "organization", hint)
    if not orgs:
        return None
    match = next((o for o in orgs if org_id is not None and str(o.get("id")) == str(org_id)), None)
    if match is not None:
        return match
    if given and len(orgs) == 1 and org_id is None:
        return orgs[0]
    if given:
        ids = ", ".join(str(o.get("id")) for o in orgs)
        want = f"organization {org_id}" if org_id is not None else "no organization"
        raise InputError(f"Zendesk organization: the file holds organization {ids} but the ticket belongs to {want}; "
                         f"{hint} for the ticket's organization_id")
    return None


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def parse(ticket: Any, *, comments: Any | None = None, users: Any | None = None,
          organization: Any | None = None) -> ImportedTicket:
    """Read a Zendesk ticket (and its comments, users, organization) into the vendor-neutral ticket.

    Separate arguments win over the ticket response's sideloads (`users`, `organizations`,
    `groups`). Without comments only the description is read, as the customer's first message.
    """
    obj, response = _unwrap_ticket(ticket)
    tid = str(obj["id"])
    where = f"Zendesk ticket {tid}"
    warnings: list[str] = []
    created = _time(obj["created_at"], f"{where}: created_at")

    people: dict[str, dict[str, Any]] = {}
    users_hint = "pass the JSON of GET /api/v2/users/show_many.json?ids=..."
    for source in (response.get("users"), users):
        for u in _records(source, "user", "users", "users", users_hint):
            people[str(u["id"])] = u
    groups = {str(g.get("id")): g for g in response.get("groups") or [] if isinstance(g, dict)}
    org = _organization(organization, response.get("organizations"), obj.get("organization_id"))

    requester_id = obj.get("requester_id")
    requester = people.get(str(requester_id)) if requester_id is not None else None
    if requester is None:
        warnings.append(f"requester: user {requester_id} is not in the users given; pass "
                        "GET /api/v2/users/show_many.json (or include=users) for names and e-mail")
    unknown: set[str] = set()

    def author(author_id: Any) -> dict[str, str]:
        user = people.get(str(author_id))
        if user is not None:
            role = str(user.get("role", ""))
            staff = role in _STAFF_ROLES or (role != "end-user" and str(author_id) != str(requester_id))
            return {"name": str(user.get("name") or f"user {author_id}"), "role": "agent" if staff else "customer"}
        if str(author_id) not in unknown:
            unknown.add(str(author_id))
            warnings.append(f"author: user {author_id} is not in the users given; named 'user {author_id}' and "
                            "taken for " + ("the requester" if str(author_id) == str(requester_id) else "an agent"))
        return {"name": f"user {author_id}",
                "role": "customer" if str(author_id) == str(requester_id) else "agent"}

    events: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    if comments is not None:
        items, page_warnings = _comments(comments)
        warnings.extend(page_warnings)
        if not items:
            warnings.append("comments: the comments file holds no comments; read the ticket description instead")
    for i, c in enumerate(items):
        cid = str(c["id"])
        public = c.get("public")
        if not isinstance(public, bool):
            warnings.append(f"comment {cid}: no 'public' flag; kept internal so it is never quoted to the customer")
        body = "\n\n".join(part for part in [_text(c), "\n".join(attachment_lines(c.get("attachments")))] if part)
        events.append({
            "id": f"zd-comment-{cid}",
            "at": _time(c["created_at"], f"Zendesk comments[{i}] (id {cid}): created_at"),
            "author": author(c.get("author_id")),
            "visibility": "public" if public is True else "internal",
            "body": body,
        })
    if not events:
        description = obj.get("description")
        if not isinstance(description, str) or not description.strip():
            raise InputError(f"{where}: no comments were given and the ticket has no description; {_COMMENTS_HINT}")
        warnings.append("comments: not given; only the ticket description was read, as the customer's first "
                        f"message; {_COMMENTS_HINT} for the full history and internal notes")
        events.append({
            "id": f"zd-description-{tid}",
            "at": created,
            "author": {"name": str((requester or {}).get("name") or f"user {requester_id}"), "role": "customer"},
            "visibility": "public",
            "body": html_to_text(description),
        })

    priority = obj.get("priority")
    if priority is not None and priority not in _PRIORITIES:
        warnings.append(f"priority: {priority!r} is not a Zendesk priority (low/normal/high/urgent); left unset")
        priority = None

    assignee = None
    if obj.get("assignee_id") is not None:
        user = people.get(str(obj["assignee_id"]))
        group = groups.get(str(obj.get("group_id")))
        assignee = {"name": str((user or {}).get("name") or f"user {obj['assignee_id']}"),
                    "group": str(group["name"]) if group and group.get("name") else None}

    tags = [str(t) for t in obj.get("tags") or []]
    if org is not None:
        tags += [str(t) for t in org.get("tags") or []]
    subject = obj.get("subject") or obj.get("raw_subject") or ""
    return ImportedTicket(
        source=SOURCE,
        ticket_id=tid,
        subject=str(subject),
        created_at=created,
        status=str(obj.get("status") or "unknown"),
        requester_name=str((requester or {}).get("name") or f"user {requester_id}"),
        requester_email=(requester or {}).get("email") or None,
        events=events,
        docs={"ticket": obj, "organization": org or {}, "requester": requester or {}},
        tags=_dedupe(tags),
        priority=priority,
        assignee=assignee,
        org_id=str(org.get("external_id") or org["id"]) if org is not None else None,
        org_name=str(org["name"]) if org is not None and org.get("name") else None,
        warnings=warnings,
    )
