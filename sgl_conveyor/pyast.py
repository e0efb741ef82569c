"""`ast.parse` that the threads of one process can share.

Before Python 3.13, `ast.parse` on two threads at once can fail with "SystemError: AST
constructor recursion depth mismatch" (seen in the eval, 16 calls at once). Every parse of ours
(python tool, plan steps, calculator) goes through `parse`: they take turns, and one that still
collided with a parse elsewhere in the process (a user's tool) is parsed again.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_lock = threading.Lock()


def parse(source: str, mode: str = "exec") -> Any:
    """`ast.parse(source, mode=mode)`; raises what it raises (SyntaxError...), never the race."""
    for attempt in range(3):
        try:
            with _lock:
                return ast.parse(source, mode=mode)
        except SystemError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
