"""Incremental parser of hermes-style tool calls in a model's streamed text.

The model writes `<tool_call>\\n{"name": "NAME", "arguments": {...}}\\n</tool_call>` blocks (see
`templates/hermes_chatml.jinja`). Text is fed as it is decoded, in pieces of any size; out come
content deltas, the start of each call (as soon as its name is known) and its argument
fragments: the model's own argument text, never re-serialised JSON, so the concatenated
fragments are exactly what the model wrote. How the text is split never changes what comes out
(only how it is grouped). It never validates arguments against a schema: that is the client's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

START_TAG = "<tool_call>"
END_TAG = "</tool_call>"
ARGUMENT_KEYS = ("arguments", "parameters")  # some models write "parameters"
_WS = " \t\r\n"
_PRIMITIVE_END = re.compile(r"[\s,}\]<]")


@dataclass(frozen=True)
class ContentDelta:
    text: str


@dataclass(frozen=True)
class CallStarted:
    """A call's name is known: the first chunk of a call (its arguments follow)."""

    index: int
    name: str


@dataclass(frozen=True)
class ArgumentsDelta:
    index: int
    text: str


@dataclass(frozen=True)
class CallEnded:
    index: int
    name: str
    arguments: str  # every fragment of the call, joined


Event = ContentDelta | CallStarted | ArgumentsDelta | CallEnded


@dataclass
class ParsedCall:
    name: str
    arguments: str


def _hold_length(text: str) -> int:
    """How many trailing characters of `text` might still turn into `<tool_call>` (trailing
    whitespace too: whitespace right before a call, or between calls, is not content)."""
    for k in range(min(len(START_TAG) - 1, len(text)), 0, -1):
        if START_TAG.startswith(text[-k:]):
            held = k
            break
    else:
        held = 0
    rest = text[: len(text) - held]
    return held + (len(rest) - len(rest.rstrip(_WS)))


@dataclass
class _Call:
    """The scanner state of one `<tool_call>` block: a cursor over its body text."""

    index: int
    lead: str = ""  # the blanks before `<tool_call>`: content again if the block has no name
    body: str = ""
    pos: int = 0
    # top-level object: "start" (before `{`), "key", "colon", "value", "comma", "done", "broken"
    phase: str = "start"
    key: str | None = None
    value_start: int = 0
    # the value being scanned: nesting depth, inside a string, after a backslash
    depth: int = 0
    in_string: bool = False
    escaped: bool = False
    name: str | None = None
    started: bool = False  # CallStarted was emitted
    args_start: int | None = None
    args_end: int | None = None
    args_is_string: bool = False
    sent: str = ""  # the argument text already emitted


@dataclass
class HermesToolCallParser:
    """Feed decoded text with `feed()`, then call `finish()` once; each returns the events that
    the new text settles. `calls` and `content` hold the result so far."""

    calls: list[ParsedCall] = field(default_factory=list)
    content: str = ""
    _pending: str = ""  # text outside a call not yet emitted (it may open a call)
    _call: _Call | None = None
    _after_call: bool = False  # no content since the last call closed (blanks there are dropped)
    _finished: bool = False

    def feed(self, text: str) -> list[Event]:
        if self._finished:
            raise RuntimeError("the parser has finished")
        events: list[Event] = []
        self._consume(text, events)
        return events

    def finish(self) -> list[Event]:
        """The stream ended: an open call is closed (with what it has), held text flushed."""
        if self._finished:
            return []
        self._finished = True
        events: list[Event] = []
        if self._call is not None:
            self._scan(self._call, events, final=True)
            self._close(events, tag_seen=False)
        held, self._pending = self._pending, ""
        if self.calls:
            held = held.rstrip(_WS)  # blanks after the last call are not content
        self._content(held, events)
        return events

    # --- outside a call -----------------------------------------------------------------------

    def _consume(self, text: str, events: list[Event]) -> None:
        while text:
            if self._call is not None:
                self._call.body += text
                text = self._scan(self._call, events, final=False) or ""
                continue
            self._pending += text
            text = ""
            at = self._pending.find(START_TAG)
            if at >= 0:
                before = self._pending[:at]
                kept = before.rstrip(_WS)  # blanks before a call are not content
                self._content(kept, events)
                text = self._pending[at + len(START_TAG) :]
                self._pending = ""
                self._call = _Call(index=len(self.calls), lead=before[len(kept) :])
                continue
            held = _hold_length(self._pending)
            self._content(self._pending[: len(self._pending) - held], events)
            self._pending = self._pending[len(self._pending) - held :]

    def _content(self, text: str, events: list[Event]) -> None:
        if self._after_call:
            text = text.lstrip(_WS)  # the newline between calls, or after the last one
        if text:
            self._after_call = False
            self.content += text
            events.append(ContentDelta(text))

    # --- inside a call ------------------------------------------------------------------------

    def _scan(self, call: _Call, events: list[Event], *, final: bool) -> str | None:
        """Advance the cursor over the call's body as far as the text decides. Returns the text
        after `</tool_call>` once it is seen (the call is then closed), else None."""
        body = call.body
        while call.pos < len(body):
            c = body[call.pos]
            if not call.in_string and c == "<":
                # `</tool_call>` (or a new `<tool_call>`: the model forgot to close) ends the
                # call wherever it is outside a string; wait until enough text decides
                tail = body[call.pos :]
                for tag in (END_TAG, START_TAG):
                    if tail.startswith(tag):
                        self._emit_arguments(call, events, upto=call.pos)
                        rest = tail[len(tag) :] if tag == END_TAG else tail
                        self._close(events, tag_seen=tag == END_TAG)
                        return rest
                if not final and (END_TAG.startswith(tail) or START_TAG.startswith(tail)):
                    break
            self._step(call, c)
            call.pos += 1
        self._emit_arguments(call, events, upto=call.pos)
        return None

    def _step(self, call: _Call, c: str) -> None:
        """One character of the body's top-level object (values scanned for their extent)."""
        phase = call.phase
        if phase in ("done", "broken"):
            if phase == "done" and c not in _WS:
                call.phase = "broken"  # text after the object: ignored
            return
        if phase == "value":
            self._value_char(call, c)
            return
        if c in _WS:
            return
        if phase == "start":
            call.phase = "key" if c == "{" else "broken"
        elif phase == "key":
            if c == '"':
                call.phase, call.value_start, call.in_string = "value", call.pos, True
                call.key = None  # the key string is scanned like a value
            elif c == "}":
                call.phase = "done"
            else:
                call.phase = "broken"
        elif phase == "colon":
            if c == ":":
                call.phase = "value"
                call.value_start = -1  # the value starts at its first non-blank character
            else:
                call.phase = "broken"
        elif phase == "comma":
            if c == ",":
                call.phase = "key"
            elif c == "}":
                call.phase = "done"
            else:
                call.phase = "broken"

    def _value_char(self, call: _Call, c: str) -> None:
        if call.value_start == -1:  # before the value
            if c in _WS:
                return
            if c in ",}]":
                call.phase = "broken"  # no value
                return
            call.value_start = call.pos
            if call.key in ARGUMENT_KEYS and call.args_start is None:
                call.args_start = call.pos
                call.args_is_string = c == '"'
            if c == '"':
                call.in_string = True
            elif c in "{[":
                call.depth = 1
            return
        if call.in_string:
            if call.escaped:
                call.escaped = False
            elif c == "\\":
                call.escaped = True
            elif c == '"':
                call.in_string = False
                if call.depth == 0:
                    self._value_done(call, call.pos + 1)
            return
        if call.depth > 0:
            if c == '"':
                call.in_string = True
            elif c in "{[":
                call.depth += 1
            elif c in "}]":
                call.depth -= 1
                if call.depth == 0:
                    self._value_done(call, call.pos + 1)
            return
        # a number, true, false or null: it ends before the first delimiter
        if _PRIMITIVE_END.match(c):
            self._value_done(call, call.pos)
            self._step(call, c)  # the delimiter belongs to the object

    def _value_done(self, call: _Call, end: int) -> None:
        raw = call.body[call.value_start : end]
        if call.key is None:  # that was a key
            try:
                call.key = json.loads(raw)
            except ValueError:
                call.phase = "broken"
                return
            call.phase = "colon"
            return
        if call.key == "name" and call.name is None:
            try:
                name = json.loads(raw)
            except ValueError:
                name = None
            if isinstance(name, str) and name:
                call.name = name
        elif call.key in ARGUMENT_KEYS and call.args_start == call.value_start:
            call.args_end = end
        call.key = None
        call.phase = "comma"

    def _emit_arguments(self, call: _Call, events: list[Event], *, upto: int) -> None:
        """Start the call once its name is known, and emit the argument text scanned so far
        (a string-valued `arguments`, the JSON-in-a-string convention, only when complete)."""
        if call.name is not None and not call.started:
            call.started = True
            events.append(CallStarted(call.index, call.name))
        if not call.started or call.args_start is None or call.args_is_string:
            return
        end = upto if call.args_end is None else min(upto, call.args_end)
        text = call.body[call.args_start + len(call.sent) : end]
        if text:
            call.sent += text
            events.append(ArgumentsDelta(call.index, text))

    def _close(self, events: list[Event], *, tag_seen: bool) -> None:
        """End the open call: a named one becomes a tool call; a block without a name is
        given back as content, as the model wrote it."""
        call = self._call
        assert call is not None
        self._call = None
        self._emit_arguments(call, events, upto=call.pos)
        if call.name is None:
            block = START_TAG + call.body[: call.pos] + (END_TAG if tag_seen else "")
            self._content(call.lead + block, events)
            return
        final = _final_arguments(call)
        rest = final[len(call.sent) :] if final.startswith(call.sent) else ""
        if rest:  # a string-valued `arguments`, or a call without arguments ("{}")
            call.sent += rest
            events.append(ArgumentsDelta(call.index, rest))
        self.calls.append(ParsedCall(call.name, call.sent))
        events.append(CallEnded(call.index, call.name, call.sent))
        self._after_call = True


def _final_arguments(call: _Call) -> str:
    """The arguments text of a closed call: the raw value; a JSON string decoded (the
    arguments-as-a-string convention); "{}" for a call without arguments."""
    if call.args_start is None:
        return "{}"
    end = call.args_end if call.args_end is not None else call.pos
    raw = call.body[call.args_start : end].rstrip(_WS)
    if call.args_is_string:
        try:
            decoded = json.loads(raw)
        except ValueError:
            return raw
        return decoded if isinstance(decoded, str) else raw
    return raw or "{}"


def parse_tool_calls(text: str) -> tuple[str, list[ParsedCall]]:
    """The content and the calls of a whole response (the same parser, in one piece)."""
    parser = HermesToolCallParser()
    parser.feed(text)
    parser.finish()
    return parser.content, parser.calls
