"""Retrieval over the pack's context documents (SQLite FTS5) and their known issues.

Product docs are split into passages — a known-issue bullet, or a paragraph under a
heading — and indexed in an in-memory FTS5 table, so a fact can cite the paragraph it
came from (`doc:exports.md` with the passage as quote). Known issues are parsed from the
docs' "Known issues" lists: id, title, workaround and whether the docs call the
behaviour expected.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass

from .pack import Pack


@dataclass(frozen=True)
class Passage:
    doc: str                  # file name, e.g. "exports.md"
    heading: str
    text: str                 # verbatim from the doc (a substring of the file)
    known_issue: str | None = None
    title: str | None = None
    workaround: str | None = None     # whitespace-normalised, for reading
    workaround_raw: str | None = None  # verbatim from the doc, for quoting
    expected: bool = False

    @property
    def ref(self) -> str:
        return f"doc:{self.doc}"


_KI_ID = re.compile(r"\*\*([A-Z]+-KI-\d+):?\s*(.*?)\*\*", re.S)
_WORKAROUND = re.compile(r"\*Workaround:\*\s*(.+)", re.S)
_EXPECTED = re.compile(r"expected behaviou?r|by design|not a defect|not an outage", re.I)


def split_passages(name: str, text: str) -> list[Passage]:
    """Passages of one markdown doc: bullets (with their continuation lines) and paragraphs."""
    out: list[Passage] = []
    heading = ""
    block: list[str] = []

    def flush() -> None:
        if not block:
            return
        body = "\n".join(block).strip()
        block.clear()
        if not body:
            return
        m = _KI_ID.search(body)
        ki = title = wa = wa_raw = None
        if m:
            ki, title = m.group(1), re.sub(r"\s+", " ", m.group(2)).strip()
        w = _WORKAROUND.search(body)
        if w:
            wa_raw = w.group(1).strip()
            wa = re.sub(r"\s+", " ", wa_raw)
        out.append(Passage(doc=name, heading=heading, text=body, known_issue=ki, title=title, workaround=wa,
                           workaround_raw=wa_raw,
                           expected=bool(_EXPECTED.search(body))))

    for line in text.splitlines():
        if line.startswith("#"):
            flush()
            heading = line.lstrip("#").strip()
        elif line.startswith("- ") or not line.strip():
            flush()
            if line.strip():
                block.append(line)
        else:
            block.append(line)
    flush()
    return out


class DocIndex:
    """FTS5 index over a pack's docs and handbook sections; built once per pack."""

    def __init__(self, pack: Pack) -> None:
        self.passages: list[Passage] = []
        for name, text in pack.docs.items():
            self.passages.extend(split_passages(name, text))
        for sec in pack.sections.values():
            self.passages.append(Passage(doc=pack.handbook_name, heading=sec.anchor, text=sec.text))
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("CREATE VIRTUAL TABLE passages USING fts5(body, tokenize='porter unicode61')")
        self._db.executemany("INSERT INTO passages(rowid, body) VALUES (?, ?)",
                             [(i, p.text) for i, p in enumerate(self.passages)])
        self.known_issues = {p.known_issue: p for p in self.passages if p.known_issue}

    def search(self, text: str, limit: int = 3, *, docs_only: bool = True) -> list[tuple[Passage, float]]:
        """Passages most relevant to free text (bm25; lower is better, returned as positive score)."""
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9]{2,}", text)][:32]
        if not words:
            return []
        query = " OR ".join(f'"{w}"' for w in dict.fromkeys(w.lower() for w in words))
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, bm25(passages) FROM passages WHERE passages MATCH ? ORDER BY bm25(passages) LIMIT ?",
                (query, limit * 4)).fetchall()
        out = []
        for rowid, score in rows:
            p = self.passages[rowid]
            if docs_only and p.known_issue is None and p.doc.endswith(".md") and p.heading.startswith("§"):
                continue
            out.append((p, -score))
        return out[:limit]

    def phrase_match(self, phrase: str) -> list[Passage]:
        """Known-issue passages that contain an exact phrase (an error message, say)."""
        needle = phrase.strip().lower()
        if len(needle) < 8:
            return []
        return [p for p in self.passages if p.known_issue and needle in p.text.lower()]


_INDEXES: dict[str, DocIndex] = {}
_INDEX_LOCK = threading.Lock()


def index_for(pack: Pack) -> DocIndex:
    """The pack's index, built on first use (keyed by content hash: a changed pack gets a new one)."""
    with _INDEX_LOCK:
        idx = _INDEXES.get(pack.content_hash)
        if idx is None:
            idx = _INDEXES[pack.content_hash] = DocIndex(pack)
        return idx

