"""The CEL binding without its interactive shell.

`import cel` also imports the package's REPL (prompt_toolkit and friends), about 130 ms of
start-up that a command-line run pays on every call. The engine needs only `compile`.
"""

from __future__ import annotations

import sys
import types

if "cel" not in sys.modules:
    sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))

import cel  # noqa: E402

compile = cel.compile  # noqa: A001 - the binding's own name

__all__ = ["compile"]
