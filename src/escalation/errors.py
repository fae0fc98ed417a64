"""Errors the caller can fix, kept apart from bugs.

    EscalationError
    ├── InputError   a case file is unreadable or malformed (names the file and JSON path)
    └── PackError    a policy pack is invalid (names the file and line)

Anything else escaping the engine is a defect in this project, not in the user's input.
"""

from __future__ import annotations


class EscalationError(Exception):
    """Base of every error the user can act on; `str()` is a one-line message."""


class InputError(EscalationError):
    """The case (or a draft reply) given to the skill cannot be used as it is."""


class PackError(EscalationError):
    """The policy pack is invalid; the message says which file and line to fix."""
