"""Evidence: every part of a case and of the pack as an addressable, quotable source.

A source has a ref that a reader (and `score.py`) can resolve — `ticket:e3`,
`attachment:a1`, `account`, `related:47760`, `incident`, `handbook:§2.3`,
`doc:exports.md` — its visibility (public: the customer has seen it or may; internal:
never to be shown), and who wrote it. Sentences keep their offsets into the source text,
so every quote is a verbatim substring of what the ref names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Literal

from .case import Case
from .pack import Pack

Role = Literal["customer", "agent", "engineer", "csm", "system", "docs", "attachment", "account", "related",
               "incident", "policy", "ticket"]
STAFF_ROLES = ("agent", "engineer", "csm")


@dataclass(frozen=True)
class Source:
    ref: str
    kind: str                      # ticket_event, ticket, attachment, account, related, incident, handbook, doc
    text: str
    visibility: Literal["public", "internal"]
    role: Role
    author: str | None = None
    at: datetime | None = None
    order: int = 0                 # position in the thread; attachments and context sort after events
    attachment_kind: str | None = None

    @cached_property
    def sentences(self) -> tuple[Sentence, ...]:
        return tuple(split_sentences(self))


@dataclass(frozen=True)
class Sentence:
    source: Source
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.source.text[self.start:self.end]

    @property
    def ref(self) -> str:
        return self.source.ref

    @property
    def role(self) -> Role:
        return self.source.role


_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])|\n+|(?<=[.!?;:])\s+-{1,2}\s+")
_LOG_LINE = re.compile(r"^\s*(\[?\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?\]?|\d{2}-\d{2} \d{2}:\d{2}|\[\w+\])")


def split_sentences(source: Source) -> list[Sentence]:
    """Sentences (or log lines) of a source, trimmed, with exact offsets."""
    text = source.text
    out: list[Sentence] = []
    pos = 0
    for m in _BOUNDARY.finditer(text):
        _append(out, source, pos, m.start())
        pos = m.end()
    _append(out, source, pos, len(text))
    return out


def _append(out: list[Sentence], source: Source, start: int, end: int) -> None:
    text = source.text
    while start < end and text[start] in " \t\r\n>-*":
        start += 1
    while end > start and text[end - 1] in " \t\r\n":
        end -= 1
    if end - start >= 3:
        out.append(Sentence(source, start, end))


def is_log_line(sentence: Sentence) -> bool:
    return bool(_LOG_LINE.match(sentence.text))


@dataclass(frozen=True)
class Evidence:
    """All sources of one case under one pack, in thread order."""

    case: Case
    sources: tuple[Source, ...]

    @cached_property
    def by_ref(self) -> dict[str, Source]:
        return {s.ref: s for s in self.sources}

    def case_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.kind not in ("handbook", "doc"))

    def events(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.kind == "ticket_event")

    def sentences(self, *, roles: tuple[str, ...] | None = None, kinds: tuple[str, ...] | None = None
                  ) -> list[Sentence]:
        out: list[Sentence] = []
        for s in self.case_sources():
            if roles is not None and s.role not in roles:
                continue
            if kinds is not None and s.kind not in kinds:
                continue
            out.extend(s.sentences)
        return out


def collect(case: Case, pack: Pack) -> Evidence:
    """Turn a case (and the pack's context documents) into addressable sources."""
    sources: list[Source] = []
    t = case.ticket
    ticket_fields = {k: v for k, v in t.model_dump(mode="json").items() if k != "events"}
    sources.append(Source(ref="ticket", kind="ticket", text=json.dumps(ticket_fields, ensure_ascii=False),
                          visibility="internal", role="ticket", at=t.created_at, order=-1))
    for i, ev in enumerate(t.events):
        if ev.changes:
            text = (ev.body + " " if ev.body else "") + json.dumps(ev.changes, ensure_ascii=False)
        else:
            text = ev.body
        sources.append(Source(ref=f"ticket:{ev.id}", kind="ticket_event", text=text, visibility=ev.visibility,
                              role=ev.author.role, author=ev.author.name, at=ev.at, order=i))
    n = len(t.events)
    for j, a in enumerate(case.attachments):
        sources.append(Source(ref=f"attachment:{a.id}", kind="attachment", text=a.text, visibility="internal",
                              role="attachment", order=n + j, attachment_kind=a.kind))
    sources.append(Source(ref="account", kind="account", text=json.dumps(case.account.model_dump(mode="json"),
                                                                         ensure_ascii=False),
                          visibility="internal", role="account", order=n + 100))
    for r in case.related_tickets:
        text = " ".join(str(v) for v in r.model_dump(mode="json").values())
        sources.append(Source(ref=f"related:{r.id}", kind="related", text=text, visibility="internal",
                              role="related", at=r.created_at, order=n + 200))
    if case.incident is not None:
        inc = case.incident
        text = " ".join(str(v) for v in inc.model_dump(mode="json").values())
        sources.append(Source(ref="incident", kind="incident", text=text,
                              visibility="public" if inc.public else "internal", role="incident", order=n + 300))
    for sec in pack.sections.values():
        sources.append(Source(ref=sec.ref, kind="handbook", text=sec.text, visibility="internal", role="policy",
                              order=n + 400))
    for name, text in pack.docs.items():
        sources.append(Source(ref=f"doc:{name}", kind="doc", text=text, visibility="public", role="docs",
                              order=n + 500))
    return Evidence(case=case, sources=tuple(sources))
