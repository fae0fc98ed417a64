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
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Literal

from .case import Case
from .pack import Pack
from .patterns import Matcher

Role = Literal["customer", "agent", "engineer", "csm", "system", "docs", "attachment", "account", "related",
               "incident", "policy", "ticket"]
STAFF_ROLES = ("agent", "engineer", "csm")


@lru_cache(maxsize=4096)
def _spans_cached(rx: Matcher, text: str) -> tuple[tuple[int, int], ...]:
    """Shared across runs: the tone-variant re-runs rescan only the messages they change."""
    if len(text) <= SCAN_LIMIT:
        return tuple(rx.spans(text))
    out: list[tuple[int, int]] = []
    for a, b in scan_ranges(text):
        out.extend(rx.spans(text, a, b))
    return tuple(out)


SCAN_LIMIT = 256 * 1024
"""Texts longer than this (big logs) are scanned in their informative parts only."""

_ERRORISH = re.compile(r"ERROR|FATAL|Exception|failed|FAILED|error", re.M)


@lru_cache(maxsize=64)
def scan_ranges(text: str, head_lines: int = 400, tail_lines: int = 200, max_error_lines: int = 2000
                ) -> tuple[tuple[int, int], ...]:
    """Line ranges of a big text worth reading: its head, its tail and its error lines.

    Keeps extraction cost bounded on a multi-megabyte log while the drain3 signatures
    still read every line.
    """
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    n = len(starts)
    keep: set[int] = set(range(min(head_lines, n))) | set(range(max(0, n - tail_lines), n))
    errors = 0
    for m in _ERRORISH.finditer(text):
        if errors >= max_error_lines:
            break
        i = bisect_right(starts, m.start()) - 1
        if i not in keep:
            keep.add(i)
            errors += 1
    ranges: list[tuple[int, int]] = []
    for i in sorted(keep):
        a = starts[i]
        b = starts[i + 1] if i + 1 < n else len(text)
        if ranges and ranges[-1][1] == a:
            ranges[-1] = (ranges[-1][0], b)
        else:
            ranges.append((a, b))
    return tuple(ranges)


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

    def spans(self, rx: Matcher) -> tuple[tuple[int, int], ...]:
        """Match spans of a regex over the whole text, computed once per source and regex.

        Extractors ask many concepts of many sentences; one scan per source is far cheaper
        than one search per sentence.
        """
        cache: dict[str, tuple[tuple[int, int], ...]] = self.__dict__.setdefault("_spans", {})
        hit = cache.get(rx.pattern)
        if hit is None:
            hit = cache[rx.pattern] = _spans_cached(rx, self.text)
        return hit

    @cached_property
    def _starts(self) -> list[int]:
        return [s.start for s in self.sentences]

    def sentence_at(self, pos: int) -> Sentence | None:
        """The sentence holding text offset `pos` (binary search: logs have many lines)."""
        i = bisect_right(self._starts, pos) - 1
        if i >= 0:
            s = self.sentences[i]
            if s.start <= pos < s.end:
                return s
        return None

    def sentence_index(self, s: Sentence) -> int:
        i = bisect_right(self._starts, s.start) - 1
        return i if i >= 0 and self.sentences[i].start == s.start else -1

    def hits(self, rx: Matcher, allow_negated: bool = True,
             negated: Callable[[str, int], bool] | None = None) -> dict[int, tuple[int, int]]:
        """Sentence start → first match span inside that sentence; cached per regex."""
        cache: dict[tuple[str, bool], dict[int, tuple[int, int]]] = self.__dict__.setdefault("_hits", {})
        key = (rx.pattern, allow_negated)
        found = cache.get(key)
        if found is None:
            found = {}
            for a, b in self.spans(rx):
                s = self.sentence_at(a)
                if s is None or b > s.end or s.start in found:
                    continue
                if not allow_negated and negated is not None and negated(self.text, a):
                    continue
                found[s.start] = (a, b)
            cache[key] = found
        return found


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


def split_sentences(source: Source) -> list[Sentence]:
    """Sentences (or log lines) of a source, trimmed, with exact offsets."""
    text = source.text
    out: list[Sentence] = []
    if source.kind == "subject":
        return _subject_sentence(source)
    ranges = ((0, len(text)),) if len(text) <= SCAN_LIMIT else scan_ranges(text)
    for start, end in ranges:
        pos = start
        for m in _BOUNDARY.finditer(text, start, end):
            _append(out, source, pos, m.start())
            pos = m.end()
        _append(out, source, pos, end)
    return out


def _subject_sentence(source: Source) -> list[Sentence]:
    subject = source.text.split("} ", 1)[1] if "} " in source.text else source.text
    start = len(source.text) - len(subject)
    out: list[Sentence] = []
    _append(out, source, start, len(source.text))
    return out


def _append(out: list[Sentence], source: Source, start: int, end: int) -> None:
    text = source.text
    while start < end and text[start] in " \t\r\n>-*":
        start += 1
    while end > start and text[end - 1] in " \t\r\n":
        end -= 1
    if end - start >= 3:
        out.append(Sentence(source, start, end))


@dataclass(frozen=True)
class Evidence:
    """All sources of one case under one pack, in thread order."""

    case: Case
    sources: tuple[Source, ...]

    @cached_property
    def by_ref(self) -> dict[str, Source]:
        return {s.ref: s for s in self.sources if s.kind != "subject"}

    def case_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.kind not in ("handbook", "doc"))

    def subject(self) -> Source:
        return next(s for s in self.sources if s.kind == "subject")

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
    ticket_text = json.dumps(ticket_fields, ensure_ascii=False) + " " + t.subject
    sources.append(Source(ref="ticket", kind="ticket", text=ticket_text, visibility="internal", role="ticket",
                          at=t.created_at, order=-1))
    # the subject is the customer's own words: a sentence of evidence like their messages
    sources.append(Source(ref="ticket", kind="subject", text=ticket_text, visibility="public", role="customer",
                          author=t.requester.name, at=t.created_at, order=-1))
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
