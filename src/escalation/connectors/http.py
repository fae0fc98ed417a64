"""Optional live fetch and post with httpx: tickets in from Zendesk, Jira and Freshdesk; payloads out.

Credentials come only from environment variables and never leave this module except in
the Authorization header of a request to the vendor: error messages, reprs, the dry-run
output and httpx's own request log are scrubbed of them (a Slack webhook URL is itself a
secret). Only the internal Zendesk note is ever posted; the draft customer reply waits for
a person. Every request has a timeout, and a 429 is retried once after Retry-After.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import EscalationError, InputError

TIMEOUT_S = 30.0
MAX_RETRY_AFTER_S = 60.0
DEFAULT_RETRY_AFTER_S = 2.0
MAX_PAGES = 200
PER_PAGE = 100
REDACTED = "***"

_sleep: Callable[[float], None] = time.sleep
"""How the 429 retry waits; tests replace it so they do not sleep."""

SECRET_VARS = ("ZENDESK_API_TOKEN", "JIRA_API_TOKEN", "FRESHDESK_API_KEY", "SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL")
POST_KINDS = ("zendesk-note", "jira-issue", "slack")
FETCH_VENDORS = ("zendesk", "jira", "freshdesk")

_SUBDOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_NUMERIC_ID = re.compile(r"^[0-9]{1,20}$")
_JIRA_KEY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*-[0-9]+|[0-9]{1,20})$")


class RemoteError(EscalationError):
    """The vendor's API refused or failed a request; the message has the status and the vendor's reason."""

    status = 502  # for the service: the help desk, not the caller, failed


def _require(env: Mapping[str, str], names: tuple[str, ...], what: str) -> dict[str, str]:
    """The named variables, or one InputError naming exactly the ones that are not set."""
    missing = [n for n in names if not (env.get(n) or "").strip()]
    if missing:
        raise InputError(f"{what}: set {', '.join(missing)} in the environment "
                         f"({'it is' if len(missing) == 1 else 'they are'} not set)")
    return {n: env[n].strip() for n in names}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _host_part(value: str, suffix: str, var: str) -> str:
    """`acme` from acme, acme.zendesk.com or https://acme.zendesk.com/ (what people paste)."""
    host = re.sub(r"^https?://", "", value.strip(), flags=re.IGNORECASE).split("/", 1)[0].lower()
    host = host.removesuffix("." + suffix)
    if not _SUBDOMAIN.match(host):
        raise InputError(f"{var}={value!r} is not a {suffix} subdomain; set it to the part before .{suffix}")
    return host


def _jira_base(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise InputError(f"JIRA_BASE_URL={value!r} is not a site URL; set it like https://acme.atlassian.net")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _ticket_id(vendor: str, ticket: str | None) -> str:
    text = (ticket or "").strip()
    if not text:
        raise InputError(f"{vendor}: give the ticket id" + (" or issue key" if vendor == "jira" else ""))
    pattern = _JIRA_KEY if vendor == "jira" else _NUMERIC_ID
    if not pattern.match(text):
        want = "an issue key such as ENG-123" if vendor == "jira" else "a ticket number such as 35436"
        raise InputError(f"{vendor}: {text!r} is not {want}")
    return text.upper() if vendor == "jira" else text


class _Scrub(logging.Filter):
    """Removes secrets from httpx's request log lines (the webhook URL would otherwise be logged)."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self._scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


class _Session:
    """One vendor's authenticated client: timeouts, one 429 retry, errors without secrets."""

    def __init__(self, vendor: str, headers: dict[str, str], secrets: list[str],
                 transport: httpx.BaseTransport | None) -> None:
        self.vendor = vendor
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._client = httpx.Client(transport=transport, timeout=httpx.Timeout(TIMEOUT_S), headers=headers,
                                    follow_redirects=False)

    def __repr__(self) -> str:
        return f"<http session {self.vendor}>"

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, REDACTED)
        return text

    def close(self) -> None:
        self._client.close()

    def _where(self, method: str, url: str) -> str:
        parts = urlsplit(url)
        return self.scrub(f"{method} {parts.scheme}://{parts.netloc}{parts.path}")

    def request(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                json: Any | None = None) -> httpx.Response:
        where = self._where(method, url)
        for attempt in (0, 1):
            try:
                response = self._client.request(method, url, params=params, json=json)
            except httpx.TimeoutException:
                raise RemoteError(f"{self.vendor}: {where} timed out after {TIMEOUT_S:.0f} s; try again later") \
                    from None
            except httpx.HTTPError as e:
                raise RemoteError(f"{self.vendor}: {where} failed: {type(e).__name__}: {self.scrub(str(e))[:200]}") \
                    from None
            if response.status_code == 429 and attempt == 0:
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait > MAX_RETRY_AFTER_S:
                    raise RemoteError(f"{self.vendor}: {where} returned HTTP 429 (rate limited); the API asks to "
                                      f"wait {wait:.0f} s, longer than {MAX_RETRY_AFTER_S:.0f} s; try again later")
                _sleep(wait)
                continue
            if response.status_code >= 400:
                raise RemoteError(self._status_message(where, response))
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _status_message(self, where: str, response: httpx.Response) -> str:
        detail = _vendor_message(response)
        hint = {401: "; check the e-mail and API token variables",
                403: "; the credentials lack permission for this",
                404: "; check the ticket id and the site variable",
                429: " (rate limited again after one retry); try again later"}.get(response.status_code, "")
        text = f"{self.vendor}: {where} returned HTTP {response.status_code}" + (f": {detail}" if detail else "")
        return self.scrub(text + hint)

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError:
            ctype = response.headers.get("Content-Type", "unknown")
            raise RemoteError(f"{self.vendor}: {self._where(method, url)} did not return JSON "
                              f"(HTTP {response.status_code}, {ctype})") from None

    @contextmanager
    def active(self) -> Iterator[None]:
        filt = _Scrub(self.scrub)
        loggers = [logging.getLogger("httpx"), logging.getLogger("httpcore")]
        for lg in loggers:
            lg.addFilter(filt)
        try:
            yield
        finally:
            for lg in loggers:
                lg.removeFilter(filt)
            self.close()


def _retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); a short default without one."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _vendor_message(response: httpx.Response) -> str:
    """The vendor's own error text (Zendesk, Jira, Freshdesk and Slack shapes), at most 300 characters."""
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    parts: list[str] = []
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            parts += [str(err.get(k)) for k in ("title", "message") if err.get(k)]
        elif err:
            parts.append(str(err))
        for key in ("description", "message"):
            if isinstance(data.get(key), str) and data[key]:
                parts.append(data[key])
        msgs = data.get("errorMessages")
        if isinstance(msgs, list):
            parts += [str(m) for m in msgs]
        errors = data.get("errors")
        if isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        elif isinstance(errors, list):
            parts += [f"{e.get('field', '')}: {e.get('message', '')}".strip(": ") if isinstance(e, dict) else str(e)
                      for e in errors]
        details = data.get("details")
        if isinstance(details, dict):
            parts += [f"{k}: {v}" for k, v in details.items()]
    elif isinstance(data, str):
        parts.append(data)
    return "; ".join(p for p in parts if p)[:300]


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


# -- fetch ----------------------------------------------------------------------------------


def _fetch_zendesk(env: Mapping[str, str], ticket: str, transport: httpx.BaseTransport | None) -> dict[str, Any]:
    v = _require(env, ("ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN"), "zendesk")
    base = f"https://{_host_part(v['ZENDESK_SUBDOMAIN'], 'zendesk.com', 'ZENDESK_SUBDOMAIN')}.zendesk.com"
    tid = _ticket_id("zendesk", ticket)
    auth = _basic(v["ZENDESK_EMAIL"] + "/token", v["ZENDESK_API_TOKEN"])
    s = _Session("zendesk", {"Authorization": auth, "Accept": "application/json"},
                 [v["ZENDESK_API_TOKEN"], auth, auth.removeprefix("Basic ")], transport)
    with s.active():
        resp = s.json("GET", f"{base}/api/v2/tickets/{tid}.json", params={"include": "users,organizations"})
        if not isinstance(resp, dict) or not isinstance(resp.get("ticket"), dict):
            raise RemoteError(f"zendesk: GET /api/v2/tickets/{tid}.json returned no ticket object")
        users = {str(u.get("id")): u for u in resp.get("users") or [] if isinstance(u, dict)}
        comments: list[Any] = []
        url: str | None = f"{base}/api/v2/tickets/{tid}/comments.json"
        params: dict[str, Any] | None = {"include": "users"}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            page = s.json("GET", url, params=params)
            if not isinstance(page, dict):
                raise RemoteError(f"zendesk: GET /api/v2/tickets/{tid}/comments.json returned no comments object")
            comments += [c for c in page.get("comments") or [] if isinstance(c, dict)]
            for u in page.get("users") or []:
                if isinstance(u, dict):
                    users.setdefault(str(u.get("id")), u)
            nxt = page.get("next_page")
            if not nxt and isinstance(page.get("meta"), dict) and page["meta"].get("has_more"):
                nxt = (page.get("links") or {}).get("next")
            if nxt and not _same_origin(str(nxt), base):
                raise RemoteError(f"zendesk: next_page points outside {base}; refusing to send credentials there")
            url, params = (str(nxt), None) if nxt else (None, None)
        else:
            raise RemoteError(f"zendesk: ticket {tid} has more than {MAX_PAGES} pages of comments")
    tk = resp["ticket"]
    orgs = [o for o in resp.get("organizations") or [] if isinstance(o, dict)]
    org = next((o for o in orgs if str(o.get("id")) == str(tk.get("organization_id"))), orgs[0] if orgs else None)
    return {"ticket": tk, "comments": comments, "users": list(users.values()), "organization": org}


def _fetch_jira(env: Mapping[str, str], ticket: str, transport: httpx.BaseTransport | None) -> dict[str, Any]:
    v = _require(env, ("JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN"), "jira")
    base = _jira_base(v["JIRA_BASE_URL"])
    key = _ticket_id("jira", ticket)
    auth = _basic(v["JIRA_EMAIL"], v["JIRA_API_TOKEN"])
    s = _Session("jira", {"Authorization": auth, "Accept": "application/json"},
                 [v["JIRA_API_TOKEN"], auth, auth.removeprefix("Basic ")], transport)
    with s.active():
        issue = s.json("GET", f"{base}/rest/api/3/issue/{key}", params={"expand": "changelog"})
        if not isinstance(issue, dict) or not isinstance(issue.get("fields"), dict):
            raise RemoteError(f"jira: GET /rest/api/3/issue/{key} returned no issue object")
        comments: list[Any] = []
        start = 0
        for _ in range(MAX_PAGES):
            page = s.json("GET", f"{base}/rest/api/3/issue/{key}/comment",
                          params={"startAt": start, "maxResults": PER_PAGE})
            batch = [c for c in (page.get("comments") if isinstance(page, dict) else None) or [] if isinstance(c, dict)]
            comments += batch
            start += len(batch)
            total = page.get("total") if isinstance(page, dict) else None
            if not batch or not isinstance(total, int) or start >= total:
                break
        else:
            raise RemoteError(f"jira: issue {key} has more than {MAX_PAGES} pages of comments")
    issue["fields"]["comment"] = {"comments": comments, "startAt": 0, "maxResults": len(comments),
                                  "total": len(comments)}
    return {"issue": issue}


def _fetch_freshdesk(env: Mapping[str, str], ticket: str, transport: httpx.BaseTransport | None) -> dict[str, Any]:
    v = _require(env, ("FRESHDESK_DOMAIN", "FRESHDESK_API_KEY"), "freshdesk")
    base = f"https://{_host_part(v['FRESHDESK_DOMAIN'], 'freshdesk.com', 'FRESHDESK_DOMAIN')}.freshdesk.com"
    tid = _ticket_id("freshdesk", ticket)
    auth = _basic(v["FRESHDESK_API_KEY"], "X")
    s = _Session("freshdesk", {"Authorization": auth, "Accept": "application/json"},
                 [v["FRESHDESK_API_KEY"], auth, auth.removeprefix("Basic ")], transport)
    with s.active():
        tk = s.json("GET", f"{base}/api/v2/tickets/{tid}", params={"include": "requester,company"})
        if not isinstance(tk, dict) or "id" not in tk:
            raise RemoteError(f"freshdesk: GET /api/v2/tickets/{tid} returned no ticket object")
        conversations: list[Any] = []
        for page_no in range(1, MAX_PAGES + 1):
            page = s.json("GET", f"{base}/api/v2/tickets/{tid}/conversations",
                          params={"page": page_no, "per_page": PER_PAGE})
            if not isinstance(page, list):
                raise RemoteError(f"freshdesk: GET /api/v2/tickets/{tid}/conversations returned no list")
            conversations += page
            if len(page) < PER_PAGE:
                break
        else:
            raise RemoteError(f"freshdesk: ticket {tid} has more than {MAX_PAGES} pages of conversations")
    return {"ticket": tk, "conversations": conversations}


_FETCHERS = {"zendesk": _fetch_zendesk, "jira": _fetch_jira, "freshdesk": _fetch_freshdesk}


def fetch(vendor: str, ticket: str, *, env: Mapping[str, str] = os.environ,
          transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """One ticket's payloads as the importers take them (all comment pages followed).

    zendesk: {"ticket", "comments", "users", "organization"}; jira: {"issue"} with every
    comment in fields.comment; freshdesk: {"ticket", "conversations"}.
    """
    fetcher = _FETCHERS.get(vendor)
    if fetcher is None:
        raise InputError(f"fetch {vendor}: live fetch is for {', '.join(FETCH_VENDORS)}")
    return fetcher(env, ticket, transport)


# -- post -----------------------------------------------------------------------------------


def _redact_url(url: str, secrets: list[str]) -> str:
    for s in secrets:
        if s and s in url:
            url = url.replace(s, REDACTED)
    return url


def _webhook_display(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{REDACTED}"


def _plan(kind: str, payload: dict[str, Any], ticket: str | None,
          env: Mapping[str, str]) -> tuple[str, str, str, dict[str, Any], list[str]]:
    """(vendor, method, url, body, missing variables) of a post; the URL has placeholders for unset variables."""
    def get(name: str) -> str:
        return (env.get(name) or "").strip()

    if kind == "zendesk-note":
        note = payload.get("internal_note")
        comment = note.get("ticket", {}).get("comment") if isinstance(note, dict) else None
        if not isinstance(note, dict) or not isinstance(comment, dict):
            raise InputError("zendesk-note: the payload has no internal_note.ticket.comment; pass what "
                             "`emit('zendesk-note', ...)` returns")
        if comment.get("public") is not False:
            raise InputError("zendesk-note: refusing to post a comment that is not marked public: false; only the "
                             "internal note is posted, the draft reply waits for approval")
        tid = _ticket_id("zendesk", ticket if ticket is not None else str(payload.get("ticket_id") or ""))
        sub = get("ZENDESK_SUBDOMAIN")
        host = _host_part(sub, "zendesk.com", "ZENDESK_SUBDOMAIN") if sub else "{ZENDESK_SUBDOMAIN}"
        missing = [n for n in ("ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN") if not get(n)]
        return "zendesk", "PUT", f"https://{host}.zendesk.com/api/v2/tickets/{tid}.json", note, missing
    if kind == "zendesk-approved-reply":
        comment = payload.get("ticket", {}).get("comment") if isinstance(payload.get("ticket"), dict) else None
        if not isinstance(comment, dict) or comment.get("public") is not True or not comment.get("body"):
            raise InputError("zendesk-approved-reply: expected {ticket: {comment: {body, public: true}}} built from "
                             "an approved customer update")
        tid = _ticket_id("zendesk", ticket)
        sub = get("ZENDESK_SUBDOMAIN")
        host = _host_part(sub, "zendesk.com", "ZENDESK_SUBDOMAIN") if sub else "{ZENDESK_SUBDOMAIN}"
        missing = [n for n in ("ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN") if not get(n)]
        return "zendesk", "PUT", f"https://{host}.zendesk.com/api/v2/tickets/{tid}.json", payload, missing
    if kind == "jira-issue":
        if not isinstance(payload.get("fields"), dict):
            raise InputError("jira-issue: the payload has no fields; pass what `emit('jira-issue', ...)` returns")
        base = _jira_base(get("JIRA_BASE_URL")) if get("JIRA_BASE_URL") else "{JIRA_BASE_URL}"
        missing = [n for n in ("JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN") if not get(n)]
        return "jira", "POST", f"{base}/rest/api/3/issue", payload, missing
    if kind == "slack":
        if not isinstance(payload.get("blocks"), list) and not payload.get("text"):
            raise InputError("slack: the payload has no text or blocks; pass what `emit('slack', ...)` returns")
        if get("SLACK_BOT_TOKEN"):
            if not payload.get("channel"):
                raise InputError("slack: the message has no channel (the owner has no alias); emit it with "
                                 "channel=... or set SLACK_WEBHOOK_URL instead of SLACK_BOT_TOKEN")
            return "slack", "POST", "https://slack.com/api/chat.postMessage", payload, []
        if get("SLACK_WEBHOOK_URL"):
            body = {k: v for k, v in payload.items() if k != "channel"}  # a webhook posts to its own channel
            return "slack", "POST", get("SLACK_WEBHOOK_URL"), body, []
        return "slack", "POST", "https://slack.com/api/chat.postMessage", payload, ["SLACK_BOT_TOKEN"]
    if kind == "markdown":
        raise InputError("markdown is for people to read; nothing to post")
    raise InputError(f"post {kind!r}: unknown kind; choose one of {', '.join(POST_KINDS)}")


def post_approved_reply(ticket: str, text: str, *, env: Mapping[str, str] = os.environ,
                        transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Post an approved, verified customer update as a public Zendesk reply.

    Only the service's send step calls this, after a person approved the text and the
    customer-safe check passed on it; the CLI can only post internal notes.
    """
    payload = {"ticket": {"comment": {"body": text, "public": True}}}
    return post("zendesk-approved-reply", payload, ticket=ticket, env=env, transport=transport, dry_run=False)


def post(kind: str, payload: dict[str, Any], *, ticket: str | None, env: Mapping[str, str] = os.environ,
         transport: httpx.BaseTransport | None = None, dry_run: bool = True) -> dict[str, Any]:
    """Send an emitted payload (a dry run by default: the request it would make, no network).

    zendesk-note PUTs only the internal note to the ticket; jira-issue creates the issue;
    slack posts with SLACK_BOT_TOKEN (chat.postMessage) or SLACK_WEBHOOK_URL.
    """
    vendor, method, url, body, missing = _plan(kind, payload, ticket, env)
    secrets = [(env.get(n) or "").strip() for n in SECRET_VARS]
    is_webhook = vendor == "slack" and url == (env.get("SLACK_WEBHOOK_URL") or "").strip()
    shown = _webhook_display(url) if is_webhook else _redact_url(url, secrets)
    if dry_run:
        out: dict[str, Any] = {"dry_run": True, "method": method, "url": shown, "body": body}
        if missing:
            out["missing_env"] = missing
        return out
    if vendor == "zendesk":
        v = _require(env, ("ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN"), "zendesk")
        auth = _basic(v["ZENDESK_EMAIL"] + "/token", v["ZENDESK_API_TOKEN"])
    elif vendor == "jira":
        v = _require(env, ("JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN"), "jira")
        auth = _basic(v["JIRA_EMAIL"], v["JIRA_API_TOKEN"])
    elif is_webhook:
        auth = ""
    else:
        auth = "Bearer " + _require(env, ("SLACK_BOT_TOKEN",), "slack (or set SLACK_WEBHOOK_URL)")["SLACK_BOT_TOKEN"]
    headers = {"Accept": "application/json", "Content-Type": "application/json; charset=utf-8"}
    if auth:
        headers["Authorization"] = auth
    webhook_path = urlsplit(url).path if is_webhook else ""
    s = _Session(vendor, headers, [*secrets, auth, auth.removeprefix("Basic ").removeprefix("Bearer "),
                                   webhook_path], transport)
    with s.active():
        response = s.request(method, url, json=body)
        try:
            data: Any = response.json()
        except ValueError:
            data = response.text[:300]
    if vendor == "slack" and not is_webhook and not (isinstance(data, dict) and data.get("ok") is True):
        reason = data.get("error") if isinstance(data, dict) else data
        raise RemoteError(s.scrub(f"slack: chat.postMessage returned ok=false: {reason or 'no reason given'}"))
    if isinstance(data, str):
        data = s.scrub(data)
    return {"dry_run": False, "method": method, "url": shown, "status": response.status_code, "response": data}
