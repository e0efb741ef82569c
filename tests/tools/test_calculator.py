"""The `calculator` tool: arithmetic by walking the syntax tree, never eval, bounded sizes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tool_helpers import json_unit, make_ctx, make_tool

from sgl_conveyor.errors import ArgumentRejectedError, ToolExecutionError
from sgl_conveyor.tools.base import UnitResult
from sgl_conveyor.tools.builtin.calculator import Calculator, CalculatorError

calc = Calculator()


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("200 * 701", 140200),
        ("0.1 + 0.2", 0.3),
        ("2 ** 10", 1024),
        ("-3 // 2", -2),
        ("7 % 3", 1),
        ("sqrt(3**2 + 4**2)", 5.0),
        ("log(8, 2)", 3.0),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("round(pi, 2)", 3.14),
        ("factorial(10)", 3628800),
        ("3 × 4 ÷ 2", 6.0),
    ],
)
def test_expressions(expr, value):
    assert calc.evaluate(expr) == value


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("__import__('os').system('true')", "unknown function"),
        ("(1).__class__", "Attribute is not allowed"),
        ("[1, 2][0]", "not allowed"),
        ("'a' * 3", "is not a number"),
        ("x + 1", "unknown name 'x'"),
        ("2 ^ 3", "write 2\\*\\*10 for powers"),
        ("2 ** 100000", "more than 1000 digits"),
        ("9 ** 9 ** 9", "more than 1000 digits"),
        ("factorial(5000)", "too many digits"),
        ("10.0 ** 400", "too large"),
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "math error"),
        ("1 +", "not a valid expression"),
        ("-(" * 50 + "1" + ")" * 50, "nested too deeply"),
        ("1" * 300, "longer than 200"),
    ],
)
def test_what_is_refused(expr, message):
    with pytest.raises(CalculatorError, match=message):
        calc.evaluate(expr)


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.integers(-1000, 1000).map(str),
        lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        max_leaves=12,
    )
)
def test_integer_arithmetic_agrees_with_python(expr):
    assert calc.evaluate(expr) == eval(expr)  # the test's own oracle, on generated integers


def test_the_tool_rejects_at_check_and_computes_at_run():
    tool = make_tool("calculator")
    ctx = make_ctx(tool)
    with pytest.raises(ArgumentRejectedError, match="unknown name"):
        tool.check_unit(json_unit("/expression", "foo + 1"), ctx)
    unit = json_unit("/expression", "200 * 701")
    tool.check_unit(unit, ctx)
    value = tool.run_unit(unit, ctx)
    assert value == {"expression": "200 * 701", "result": 140200}
    assert tool.finish({"expression": "200 * 701"}, [UnitResult(unit, value)], ctx) == value
    assert tool.finish({"expression": "2 * pi"}, [], ctx)["result"] == pytest.approx(2 * math.pi)
    with pytest.raises(ToolExecutionError, match="division by zero"):
        tool.run_unit(json_unit("/expression", "1 / (3 - 3)"), ctx)
