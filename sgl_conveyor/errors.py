"""The exception hierarchy of sgl-conveyor.

Every failure a user can meet is one of these types and says what to fix. A failed tool call
never raises into the program by default: the error is put into the state (see `lang`), so the
program (or the model) can react. Nothing here imports sglang.
"""

from __future__ import annotations

from typing import Any


class ConveyorError(Exception):
    """Base class of every error raised by sgl-conveyor."""


# --- tool specs and the registry ------------------------------------------------------------


class ToolSpecError(ConveyorError):
    """A tool spec is malformed. Names the file (if any) and the field at fault."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        where = []
        if source:
            where.append(source)
        if field:
            where.append(f"field {field}")
        prefix = f"{': '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class UnknownToolError(ConveyorError):
    """A tool name that the registry does not know."""

    def __init__(self, name: str, known: list[str] | None = None):
        self.name = name
        self.known = sorted(known or [])
        hint = f" (known tools: {', '.join(self.known)})" if self.known else ""
        super().__init__(f"unknown tool {name!r}{hint}")


# --- unit detection -------------------------------------------------------------------------


class UnitError(ConveyorError):
    """The streamed text cannot be split into units: it is not valid for its format.

    `offset` is the position in the streamed text of the first character that made it invalid.
    """

    def __init__(self, message: str, *, offset: int | None = None, text: str | None = None):
        self.offset = offset
        self.text = text
        at = f" at offset {offset}" if offset is not None else ""
        context = ""
        if text is not None and offset is not None:
            lo = max(0, offset - 20)
            context = f" near {text[lo : offset + 1]!r}"
        super().__init__(f"{message}{at}{context}")


class IncompleteError(UnitError):
    """The stream ended before the text was complete (cut by max_tokens, a stop, an abort)."""


class UnitSchemaError(UnitError):
    """The streamed JSON is well formed so far but cannot match the schema (a value of the
    wrong type, a property the schema forbids), detected at its first character."""


# --- tool calls -----------------------------------------------------------------------------


class ToolCallError(ConveyorError):
    """A tool call failed. Put into the state as `s[name + "_result"]` unless on_error="raise".

    `kind` is a short machine-readable tag; `to_dict()` is what lands in meta info and the eval.
    """

    kind = "tool_call_error"

    def __init__(self, message: str, *, tool: str | None = None, unit: str | None = None):
        self.tool = tool
        self.unit = unit
        self.message = message
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "tool": self.tool, "unit": self.unit, "message": self.message}

    def __reduce__(self):  # keep pickling (across processes) simple
        return (type(self)._restore, (self.message, self.tool, self.unit, self.__dict__))

    @classmethod
    def _restore(cls, message, tool, unit, state):
        obj = cls.__new__(cls)
        obj.__dict__.update(state)
        Exception.__init__(obj, message)
        return obj


class MalformedCallError(ToolCallError):
    """The generated arguments are not valid for the call's format (e.g. broken JSON)."""

    kind = "malformed_call"


class TruncatedCallError(ToolCallError):
    """The stream ended before the call was complete (max_tokens, stop string, cut connection)."""

    kind = "truncated_call"


class SchemaViolationError(ToolCallError):
    """The arguments, or one completed unit of them, violate the tool's JSON Schema."""

    kind = "schema_violation"

    def __init__(self, message: str, *, tool=None, unit=None, path: str | None = None):
        super().__init__(message, tool=tool, unit=unit)
        self.path = path


class ArgumentRejectedError(ToolCallError):
    """A tool's own semantic check rejected an argument (e.g. an unknown city)."""

    kind = "argument_rejected"


class ToolExecutionError(ToolCallError):
    """The tool raised while running a unit or finishing the call."""

    kind = "tool_error"


class ScriptError(ToolExecutionError):
    """A statement of a generated script failed at run time (its traceback is in `output`,
    after what the script printed before it). Retryable: the model is shown the traceback."""

    kind = "script_error"

    def __init__(self, message: str, *, tool=None, unit=None, output: str = "", line=None):
        super().__init__(message, tool=tool, unit=unit)
        self.output = output
        self.line = line


class ToolTimeoutError(ToolCallError):
    """A unit or the whole call ran past its time limit."""

    kind = "timeout"


class SandboxError(ToolExecutionError):
    """The sandbox itself failed (could not start): not an error of the user's code."""


class ResultNotSerializableError(ToolCallError):
    """The tool returned something that cannot be rendered into the state."""

    kind = "result_not_serializable"


class UnknownToolCallError(ToolCallError):
    """The model called a tool that the request did not offer (or named none)."""

    kind = "unknown_tool"


class UnconfirmedCallError(ToolCallError):
    """A complete tool call that the server never confirmed: the response ended with a finish
    reason other than `tool_calls` (`length`, `stop`, `content_filter`), was cut, or was stopped
    because another call failed. What needs confirmation (irreversible units, the tool's
    finish) did not run; reversible units that ran early were undone."""

    kind = "unconfirmed_call"


class CallCancelledError(ToolCallError):
    """The call was cancelled: by the user, by the program, or because the program failed."""

    kind = "cancelled"


class BackendError(ConveyorError):
    """The backend failed to produce a stream (server error, lost connection)."""


class ModelNotFoundError(BackendError):
    """The model to load does not exist, or the default model package is not installed."""


class RequestError(BackendError):
    """A request failed inside the engine (the message says why)."""


class ChatStreamError(BackendError):
    """An OpenAI-compatible chat stream failed: the server answered with an error (its status
    and message), the connection broke, or the stream ended without a finish reason."""

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status
        super().__init__(message)
