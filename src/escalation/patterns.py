"""Pack-authored regular expressions, compiled for speed and safety.

Patterns in a pack are written by support ops leads, not engineers. They run on RE2
(google-re2) when RE2 accepts them: linear time, so no pattern can hang the engine on a
large log, and several times faster than Python's backtracking engine on the large
alternations vocabularies become. Patterns that need what RE2 lacks (lookaround,
backreferences) fall back to Python's `re` with the same flags, so a pack never fails
for choosing one or the other. Results are identical for the constructs both support.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import re2

_PY_ONLY = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=|\(\?\(")


class Matcher:
    """A compiled pattern: `spans(text, pos, endpos)` and `search(text)`.

    RE2 runs on an ASCII view of the text (one byte per character, non-ASCII characters as a
    placeholder), so byte offsets are character offsets; the binding's own str handling converts
    offsets match by match, which is quadratic on a multi-megabyte log. Patterns that are not
    ASCII, or need lookaround, run on Python's `re`.
    """

    __slots__ = ("pattern", "engine", "_rx", "_py")

    def __init__(self, pattern: str, ignore_case: bool, multiline: bool) -> None:
        self.pattern = pattern
        flags = ("i" if ignore_case else "") + ("m" if multiline else "")
        pyflags = (re.IGNORECASE if ignore_case else 0) | (re.MULTILINE if multiline else 0)
        self._py = re.compile(pattern, pyflags)
        self._rx: object = None
        self.engine = "re"
        if _PY_ONLY.search(pattern) is None and pattern.isascii():
            try:
                self._rx = re2.compile((f"(?{flags})" + pattern if flags else pattern).encode("utf-8"))
                self.engine = "re2"
            except re2.error:
                self._rx = None

    def spans(self, text: str, pos: int = 0, endpos: int | None = None) -> Iterator[tuple[int, int]]:
        end = len(text) if endpos is None else endpos
        if self._rx is not None:
            for m in self._rx.finditer(_ascii_bytes(text), pos, end):  # type: ignore[attr-defined]
                yield m.span()
            return
        for m in self._py.finditer(text, pos, end):
            yield m.span()

    def fullmatch(self, text: str) -> bool:
        return self._py.fullmatch(text) is not None

    def search(self, text: str) -> bool:
        if self._rx is not None:
            return self._rx.search(_ascii_bytes(text)) is not None  # type: ignore[attr-defined]
        return self._py.search(text) is not None

    def __repr__(self) -> str:
        return f"Matcher({self.pattern!r}, {self.engine})"


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@lru_cache(maxsize=256)
def _ascii_bytes(text: str) -> bytes:
    """The text as ASCII bytes, one byte per character: non-ASCII characters become \\x1a.

    Offsets into these bytes are offsets into the text, so RE2 can scan it directly. Pack
    patterns are ASCII (others run on Python's re), so a placeholder only affects word
    boundaries inside non-English words.
    """
    if not text.isascii():
        text = _NON_ASCII.sub("\x1a", text)
    return text.encode("ascii")


@lru_cache(maxsize=2048)
def compile_pattern(pattern: str, ignore_case: bool = True, multiline: bool = True) -> Matcher:
    """Compile (once) a pack pattern; raises re.error for a pattern neither engine accepts."""
    re.compile(pattern)  # validates with Python's syntax, whose errors name the position
    return Matcher(pattern, ignore_case, multiline)


def alternation(patterns: list[str] | tuple[str, ...]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)
