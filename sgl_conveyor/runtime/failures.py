"""How a call's failures are named and ordered, so a call fails the same way on every run.

Pure functions: they build and compare errors, never raise them and never doom a call.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping

from sgl_conveyor.errors import ToolCallError, ToolExecutionError


def comes_first(new: ToolCallError, old: ToolCallError, positions: Mapping[str, int]) -> bool:
    """Whether `new` names a unit earlier in the call than `old` (by each path's position):
    then it is the call's error, whichever thread failed first."""
    if new is old or not new.unit or not old.unit:
        return False
    i, j = positions.get(new.unit), positions.get(old.unit)
    return i is not None and j is not None and i < j


def raised(tool: str, e: BaseException, path: str | None) -> ToolExecutionError:
    """A tool's own exception as a call error that says where it raised."""
    tb = traceback.extract_tb(e.__traceback__)
    where = f" ({tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    what = f"unit {path}" if path else "the call"
    return ToolExecutionError(
        f"{tool} raised on {what}: {type(e).__name__}: {e}{where}", tool=tool, unit=path
    )
