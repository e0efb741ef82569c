"""The grammar of forced tool calls accepts exactly the calls the template renders: one block
(or several, one per line) of a listed tool, arguments in compact JSON matching its schema."""

from __future__ import annotations

import json

import pytest
import xgrammar as xgr
from xgrammar.testing import _is_grammar_accept_string as accepts

from sgl_conveyor.backends.tool_call_parser import parse_tool_calls
from sgl_conveyor.backends.tool_grammar import (
    MAX_PARALLEL_CALLS,
    ToolGrammarError,
    forced_calls_grammar,
)

QUERY = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
TOOLS = [("search", QUERY), ("now", None)]


def _block(name: str, arguments: dict) -> str:
    call = f'{{"name": {json.dumps(name)}, "arguments": {json.dumps(arguments)}}}'
    return f"<tool_call>\n{call}\n</tool_call>"


def test_one_call_of_a_listed_tool_with_schema_valid_arguments():
    g = xgr.Grammar.from_ebnf(forced_calls_grammar(TOOLS, several=False))
    assert accepts(g, _block("search", {"query": "Paris"}))
    assert accepts(g, _block("now", {}))
    assert not accepts(g, _block("search", {"q": "Paris"}))  # not the schema
    assert not accepts(g, _block("other", {"query": "Paris"}))  # not a listed tool
    assert not accepts(g, _block("search", {"query": "a"}) + "\n" + _block("now", {}))
    assert not accepts(g, "Sure! " + _block("now", {}))  # calls only


def test_several_calls_one_per_line_up_to_the_limit():
    g = xgr.Grammar.from_ebnf(forced_calls_grammar(TOOLS, several=True))
    two = _block("search", {"query": "Paris"}) + "\n" + _block("now", {})
    assert accepts(g, two)
    content, calls = parse_tool_calls(two)  # what it accepts, the parser reads back
    assert content == "" and [c.name for c in calls] == ["search", "now"]
    many = "\n".join([_block("now", {})] * MAX_PARALLEL_CALLS)
    assert accepts(g, many) and not accepts(g, many + "\n" + _block("now", {}))


def test_a_schema_the_compiler_cannot_enforce_names_its_tool():
    with pytest.raises(ToolGrammarError, match="'broken'"):
        forced_calls_grammar([("broken", {"type": "strnig"})], several=False)
