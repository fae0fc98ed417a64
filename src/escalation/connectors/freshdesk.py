"""Freshdesk (API v2) importer: a ticket, its conversations, requester and company as an `ImportedTicket`.

Reads the JSON the public API returns, already decoded: GET /api/v2/tickets/{id} (optionally
`?include=conversations,requester,company`), /api/v2/tickets/{id}/conversations,
/api/v2/contacts/{id}, /api/v2/companies/{id} and /api/v2/agents. Nothing here calls the
network or downloads attachments. A private note (`private: true`) stays internal, so the
customer update can never quote it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import InputError
from .text import attachment_lines, html_to_text
from .ticket import ImportedTicket, api_time

SOURCE = "freshdesk"
STATUSES = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
"""Freshdesk's built-in ticket statuses; custom statuses (6 and up) have no fixed name."""
PRIORITIES = {1: "low", 2: "normal", 3: "high", 4: "urgent"}
"""Freshdesk priorities (Low, Medium, High, Urgent) as case priorities."""
_OUTBOUND_EMAIL = 10
"""Ticket source of an outbound e-mail: the description was written by an agent, not the customer."""
_EMBEDDED_CONVERSATIONS = 10
"""`include=conversations` embeds at most this many conversations."""
_TICKET_HINT = "pass the JSON of GET /api/v2/tickets/{id}"
_CONV_HINT = "pass the JSON of GET /api/v2/tickets/{id}/conversations as --conversations"


def _kind(value: Any) -> str:
    names = {"dict": "an object", "list": "a list", "str": "a string", "NoneType": "null"}
    return names.get(type(value).__name__, type(value).__name__)


def _time(value: Any, where: str) -> datetime:
    return api_time(value, where, "Freshdesk API", "2026-10-05T14:00:00Z")


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _body(obj: dict[str, Any], text_key: str, html_key: str) -> str:
    """The plain text Freshdesk keeps beside the HTML, else the HTML made readable, then attachment lines."""
    text = obj.get(text_key)
    if not isinstance(text, str) or not text.strip():
        html = obj.get(html_key)
        text = html_to_text(html) if isinstance(html, str) else ""
    parts = [text.strip(), "\n".join(attachment_lines(obj.get("attachments")))]
    return "\n\n".join(p for p in parts if p)


def _check_ticket(data: Any) -> dict[str, Any]:
    if isinstance(data, list):
        if data and all(isinstance(x, dict) and ("incoming" in x or "body_text" in x) for x in data):
            raise InputError(f"Freshdesk ticket: this is a conversations list, not a ticket; {_TICKET_HINT} "
                             "and give this file as --conversations")
        raise InputError(f"Freshdesk ticket: expected one ticket object, got a list; {_TICKET_HINT}")
    if not isinstance(data, dict):
        raise InputError(f"Freshdesk ticket: expected a JSON object, got {_kind(data)}; {_TICKET_HINT}")
    if "key" in data and "fields" in data:
        raise InputError("Freshdesk ticket: this looks like a Jira issue (it has 'key' and 'fields'); "
                         "import it with the Jira importer")
    if "ticket" in data or "raw_subject" in data or "submitter_id" in data or isinstance(data.get("status"), str):
        raise InputError("Freshdesk ticket: this looks like a Zendesk ticket (a 'ticket' wrapper, raw_subject or a "
                         "text status); import it with the Zendesk importer")
    if "comments" in data:
        raise InputError("Freshdesk ticket: this looks like Zendesk comments; import the ticket with the "
                         "Zendesk importer")
    if "tickets" in data or "results" in data:
        raise InputError(f"Freshdesk ticket: this is a list or search of tickets; {_TICKET_HINT} for one ticket")
    missing = [k for k in ("id", "subject", "created_at") if k not in data or data[k] is None]
    if missing:
        raise InputError(f"Freshdesk ticket: missing {', '.join(repr(k) for k in missing)}; this is not a Freshdesk "
                         f"ticket object; {_TICKET_HINT}")
    return data


def _conversations(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        if "conversations" in data and isinstance(data["conversations"], list):
            data = data["conversations"]
        elif "comments" in data:
            raise InputError("Freshdesk conversations: these look like Zendesk comments; import the ticket with the "
                             "Zendesk importer")
        else:
            what = "a ticket" if "subject" in data else "an object"
            raise InputError(f"Freshdesk conversations: expected a list of conversations, got {what}; {_CONV_HINT}")
    if not isinstance(data, list):
        raise InputError(f"Freshdesk conversations: expected a list of conversations, got {_kind(data)}; {_CONV_HINT}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(data):
        if isinstance(item, list):  # several pages of the same endpoint
            out.extend(_conversations(item))
            continue
        if not isinstance(item, dict):
            raise InputError(f"Freshdesk conversations[{i}]: expected a conversation object, got {_kind(item)}; "
                             f"{_CONV_HINT}")
        if "author_id" in item or "public" in item:
            raise InputError("Freshdesk conversations: these look like Zendesk comments (author_id/public); import "
                             "the ticket with the Zendesk importer")
        if "id" not in item or "created_at" not in item or not ("body" in item or "body_text" in item):
            raise InputError(f"Freshdesk conversations[{i}]: not a conversation (it needs id, created_at and body); "
                             f"{_CONV_HINT}")
        out.append(item)
    return out


def _one(data: Any, want_id: Any, what: str, hint: str) -> dict[str, Any] | None:
    """A contact or company object; one that is not the ticket's is an error, not a silent mix-up."""
    if data is None:
        return None
    if isinstance(data, dict) and what in data and isinstance(data[what], dict):
        data = data[what]
    if not isinstance(data, dict) or "id" not in data:
        raise InputError(f"Freshdesk {what}: expected a {what} object with an 'id', got {_kind(data)}; {hint}")
    if want_id is not None and str(data["id"]) != str(want_id):
        raise InputError(f"Freshdesk {what}: the file is {what} {data['id']} but the ticket's is {want_id}; {hint}")
    return data


def _agents(data: Any) -> dict[str, dict[str, Any]]:
    """Agent id -> {name, email} from GET /api/v2/agents (names live under `contact`)."""
    if data is None:
        return {}
    items = data if isinstance(data, list) else [data]
    out: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(items):
        if not isinstance(a, dict) or "id" not in a:
            raise InputError(f"Freshdesk agents[{i}]: expected an agent object with an 'id', got {_kind(a)}; "
                             "pass the JSON of GET /api/v2/agents")
        contact: dict[str, Any] = a["contact"] if isinstance(a.get("contact"), dict) else a
        out[str(a["id"])] = {"name": contact.get("name"), "email": contact.get("email")}
    return out


def parse(ticket: Any, *, conversations: Any | None = None, requester: Any | None = None,
          company: Any | None = None, agents: Any | None = None) -> ImportedTicket:
    """Read a Freshdesk ticket (and its conversations, requester, company) into the vendor-neutral ticket.

    Separate arguments win over what `include=` embedded in the ticket. The description is
    the customer's first message; `agents` (GET /api/v2/agents) only supplies agent names.
    """
    obj = _check_ticket(ticket)
    tid = str(obj["id"])
    where = f"Freshdesk ticket {tid}"
    warnings: list[str] = []
    created = _time(obj["created_at"], f"{where}: created_at")
    requester_id = obj.get("requester_id")

    req = _one(requester if requester is not None else obj.get("requester"), requester_id, "requester",
               "pass the JSON of GET /api/v2/contacts/{requester_id}")
    comp = _one(company if company is not None else obj.get("company"), obj.get("company_id"), "company",
                "pass the JSON of GET /api/v2/companies/{company_id}")
    staff = _agents(agents)
    if req is None:
        warnings.append(f"requester: contact {requester_id} not given; pass GET /api/v2/contacts/{requester_id} "
                        "(or include=requester) for the name and e-mail")

    def agent_name(user_id: Any) -> str:
        return str((staff.get(str(user_id)) or {}).get("name") or f"agent {user_id}")

    requester_name = str((req or {}).get("name") or f"contact {requester_id}")
    events: list[dict[str, Any]] = []
    description = _body(obj, "description_text", "description")
    if description:
        outbound = _int(obj.get("source")) == _OUTBOUND_EMAIL
        events.append({
            "id": f"fd-description-{tid}",
            "at": created,
            "author": ({"name": agent_name(obj.get("responder_id")), "role": "agent"} if outbound
                       else {"name": requester_name, "role": "customer"}),
            "visibility": "public",
            "body": description,
        })

    if conversations is not None:
        items = _conversations(conversations)
    else:
        items = _conversations(obj["conversations"]) if isinstance(obj.get("conversations"), list) else []
        if not items:
            warnings.append(f"conversations: not given; only the ticket description was read; {_CONV_HINT}")
        elif len(items) >= _EMBEDDED_CONVERSATIONS:
            warnings.append(f"conversations: include=conversations embeds only the first {_EMBEDDED_CONVERSATIONS}; "
                            f"later replies and notes may be missing; {_CONV_HINT}")
    if not events and not items:
        raise InputError(f"{where}: the ticket has no description and no conversations were given; {_CONV_HINT}")

    for i, c in enumerate(items):
        cid = str(c["id"])
        user_id = c.get("user_id")
        is_customer = c.get("incoming") is True or (user_id is not None and str(user_id) == str(requester_id))
        if is_customer:
            name = (requester_name if req is not None and str(user_id) == str(requester_id)
                    else c.get("from_email") or f"contact {user_id}")
        else:
            name = agent_name(user_id)
        private = c.get("private")
        if not isinstance(private, bool):
            warnings.append(f"conversation {cid}: no 'private' flag; kept internal so it is never quoted to the "
                            "customer")
        events.append({
            "id": f"fd-conversation-{cid}",
            "at": _time(c["created_at"], f"Freshdesk conversations[{i}] (id {cid}): created_at"),
            "author": {"name": str(name), "role": "customer" if is_customer else "agent"},
            "visibility": "public" if private is False else "internal",
            "body": _body(c, "body_text", "body"),
        })

    raw_status = _int(obj.get("status"))
    status = STATUSES.get(raw_status) if raw_status is not None else None
    if status is None:
        status = f"status {obj.get('status')}"
        warnings.append(f"status: {obj.get('status')!r} is a custom Freshdesk status; kept as {status!r}")
    raw_priority = _int(obj.get("priority"))
    priority = PRIORITIES.get(raw_priority) if raw_priority is not None else None
    if priority is None and obj.get("priority") is not None:
        warnings.append(f"priority: {obj.get('priority')!r} is not a Freshdesk priority (1-4); left unset")

    assignee = None
    if obj.get("responder_id") is not None:
        assignee = {"name": agent_name(obj["responder_id"]), "group": None}
    return ImportedTicket(
        source=SOURCE,
        ticket_id=tid,
        subject=str(obj.get("subject") or ""),
        created_at=created,
        status=status,
        requester_name=requester_name,
        requester_email=(req or {}).get("email") or None,
        events=events,
        docs={"ticket": obj, "company": comp or {}, "requester": req or {}},
        tags=list(dict.fromkeys(str(t) for t in obj.get("tags") or [])),
        priority=priority,
        assignee=assignee,
        org_id=str(comp["id"]) if comp is not None else None,
        org_name=str(comp["name"]) if comp is not None and comp.get("name") else None,
        warnings=warnings,
    )
