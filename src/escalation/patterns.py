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
    """A compiled pattern: `spans(text, pos, endpos)` and `search(text)`."""

    __slots__ = ("pattern", "engine", "_rx")

    def __init__(self, pattern: str, ignore_case: bool, multiline: bool) -> None:
        self.pattern = pattern
        flags = ("i" if ignore_case else "") + ("m" if multiline else "")
        self._rx: object
        if _PY_ONLY.search(pattern) is None:
            try:
                self._rx = re2.compile(f"(?{flags})" + pattern if flags else pattern)
                self.engine = "re2"
                return
            except re2.error:
                pass
        pyflags = (re.IGNORECASE if ignore_case else 0) | (re.MULTILINE if multiline else 0)
        self._rx = re.compile(pattern, pyflags)
        self.engine = "re"

    def spans(self, text: str, pos: int = 0, endpos: int | None = None) -> Iterator[tuple[int, int]]:
        end = len(text) if endpos is None else endpos
        for m in self._rx.finditer(text, pos, end):  # type: ignore[attr-defined]
            yield m.span()

    def fullmatch(self, text: str) -> bool:
        return self._rx.fullmatch(text) is not None  # type: ignore[attr-defined]

    def search(self, text: str) -> bool:
        return self._rx.search(text) is not None  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Matcher({self.pattern!r}, {self.engine})"


@lru_cache(maxsize=2048)
def compile_pattern(pattern: str, ignore_case: bool = True, multiline: bool = True) -> Matcher:
    """Compile (once) a pack pattern; raises re.error for a pattern neither engine accepts."""
    re.compile(pattern)  # validates with Python's syntax, whose errors name the position
    return Matcher(pattern, ignore_case, multiline)


def alternation(patterns: list[str] | tuple[str, ...]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)
