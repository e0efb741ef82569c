"""The grammar of forced tool calls (`tool_choice` "required" or a named function).

The output is one `<tool_call>` block (or several, one per line, for parallel calls) written
exactly as `templates/hermes_chatml.jinja` renders a call, with the arguments constrained to the
tool's JSON Schema in compact JSON: what the model writes is what a follow-up request repeats,
token for token. Pure: builds EBNF text for the engine, never runs a model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import xgrammar as xgr

MAX_PARALLEL_CALLS = 8  # blocks one forced response may hold
NO_PARAMETERS = {"type": "object", "properties": {}}


class ToolGrammarError(ValueError):
    """A tool's parameters are not a JSON Schema the grammar compiler can enforce."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"the parameters of tool {name!r} cannot be enforced: {reason}")
        self.tool = name


def _literal(text: str) -> xgr.Grammar:
    return xgr.Grammar.from_ebnf("root ::= " + json.dumps(text))


def call_block(name: str, parameters: Mapping[str, Any] | None) -> xgr.Grammar:
    """One call: `<tool_call>\\n{"name": NAME, "arguments": <schema>}\\n</tool_call>`."""
    schema = dict(parameters) if parameters else NO_PARAMETERS
    try:
        arguments = xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ToolGrammarError(name, str(err).strip().splitlines()[-1][:300]) from err
    head = '<tool_call>\n{"name": ' + json.dumps(name, ensure_ascii=False) + ', "arguments": '
    return xgr.Grammar.concat(_literal(head), arguments, _literal("}\n</tool_call>"))


def forced_calls_grammar(
    tools: Sequence[tuple[str, Mapping[str, Any] | None]], *, several: bool
) -> str:
    """EBNF for a response made of tool calls only: one call of one of `tools` ((name,
    parameters) pairs), or with `several` up to MAX_PARALLEL_CALLS of them, one per line."""
    if not tools:
        raise ValueError("no tools to call")
    blocks = [call_block(name, params) for name, params in tools]
    one = blocks[0] if len(blocks) == 1 else xgr.Grammar.union(*blocks)
    text = str(one)
    if not several:
        return text
    # `root` of the one-call grammar becomes a rule of its own (only its definition is renamed:
    # nothing refers to `root`, and a literal may contain the word)
    body = re.sub(r"^root ::=", "tool_call_block ::=", text, count=1, flags=re.MULTILINE)
    repeat = f'("\\n" tool_call_block){{0, {MAX_PARALLEL_CALLS - 1}}}'
    return f"root ::= tool_call_block {repeat}\n{body}"
