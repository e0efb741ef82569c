"""Whether a tool's result can enter the program's state as text.

Checked once, when `finish` returns, so a result that cannot be rendered fails the call with a
typed error instead of failing the program later. It never changes the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def unrenderable(value: Any) -> str | None:
    """Why `value` cannot be rendered as JSON (sets, tuples and mappings can), or None."""
    try:
        json.dumps(value, default=_reject)
    except RecursionError:
        return "it is nested too deeply"
    except (TypeError, ValueError) as e:
        return str(e)
    return None


def _reject(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")
