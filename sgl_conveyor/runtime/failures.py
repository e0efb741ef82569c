"""How a call's failures are named and ordered, so a call fails the same way on every run.

Pure functions: they build and compare errors, never raise them and never doom a call.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping

from sgl_conveyor.errors import (
    IncompleteError,
    MalformedCallError,
    SchemaViolationError,
    ToolCallError,
    ToolExecutionError,
    TruncatedCallError,
    UnitError,
    UnitSchemaError,
)


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


def call_error(e: Exception, tool: str, ended_because: Callable[[], str]) -> ToolCallError:
    """What a failed call means to the user: detector errors become call errors, a failing
    stream a ToolExecutionError. `ended_because` says why the stream ended (for a cut call);
    both entry points (partial_tool and the chat stream) name their failures with it."""
    if isinstance(e, UnitSchemaError):
        return SchemaViolationError(f"{tool} call cannot match its schema: {e}", tool=tool)
    if isinstance(e, IncompleteError):
        return TruncatedCallError(
            f"{tool} call ended before it was complete ({ended_because()}): {e}", tool=tool
        )
    if isinstance(e, UnitError):
        return MalformedCallError(f"{tool} call is malformed: {e}", tool=tool)
    if isinstance(e, ToolCallError):
        return e
    # the backend failed mid-stream
    return ToolExecutionError(
        f"stream of the {tool} call failed: {type(e).__name__}: {e}", tool=tool
    )
