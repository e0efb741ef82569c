"""The `calculator` tool: arithmetic on one expression, by walking its syntax tree.

Numbers, + - * / // % **, unary signs, parentheses, a few math functions and constants. Never
`eval`: names, attributes, subscripts, strings and anything else are refused, and the size of
integers, exponents and factorials is bounded before they are computed.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgl_conveyor.errors import ArgumentRejectedError, ToolExecutionError
from sgl_conveyor.pyast import parse as parse_python
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.units.base import Unit

Number = int | float


class CalculatorError(ValueError):
    """The expression is not allowed, or its value cannot be computed."""


@dataclass(frozen=True)
class CalculatorLimits:
    max_chars: int = 200
    max_digits: int = 1000  # of any integer, operand or result
    max_depth: int = 40  # nesting of the syntax tree


_CONSTANTS: Mapping[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _round(x: Number, ndigits: Number | None = None) -> Number:
    return round(x) if ndigits is None else round(x, int(ndigits))


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


_FUNCTIONS: Mapping[str, tuple[Callable[..., Number], int, int]] = {
    # name: (function, min args, max args)
    "sqrt": (math.sqrt, 1, 1),
    "cbrt": (lambda x: math.copysign(abs(x) ** (1 / 3), x), 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (_log, 1, 2),
    "ln": (math.log, 1, 1),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "atan2": (math.atan2, 2, 2),
    "degrees": (math.degrees, 1, 1),
    "radians": (math.radians, 1, 1),
    "hypot": (math.hypot, 1, 8),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "min": (min, 1, 32),
    "max": (max, 1, 32),
    "gcd": (math.gcd, 1, 8),
    "factorial": (math.factorial, 1, 1),
}

_BINARY: Mapping[type, Callable[[Any, Any], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def _digits(n: int) -> float:
    return math.log10(abs(n)) + 1 if n else 1


class Calculator:
    """Parses and evaluates expressions within `limits`. Stateless and thread-safe."""

    def __init__(self, limits: CalculatorLimits | None = None):
        self.limits = limits or CalculatorLimits()

    def parse(self, expression: str) -> ast.Expression:
        """The checked syntax tree; raises CalculatorError naming what is not allowed."""
        text = expression.strip()
        if not text:
            raise CalculatorError("the expression is empty")
        if len(text) > self.limits.max_chars:
            raise CalculatorError(f"the expression is longer than {self.limits.max_chars} chars")
        if "^" in text:
            raise CalculatorError("'^' is not a power operator here: write 2**10 for powers")
        text = text.replace("×", "*").replace("÷", "/").replace("−", "-")
        try:
            tree = parse_python(text, mode="eval")
        except SyntaxError as e:
            raise CalculatorError(f"not a valid expression: {e.msg}") from None
        self._check(tree.body, 0)
        return tree

    def _check(self, node: ast.AST, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise CalculatorError("the expression is nested too deeply")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise CalculatorError(f"{node.value!r} is not a number")
            if isinstance(node.value, int) and _digits(node.value) > self.limits.max_digits:
                raise CalculatorError(f"a number has more than {self.limits.max_digits} digits")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise CalculatorError(f"the operator {_op_name(node.op)} is not supported")
            self._check(node.left, depth + 1)
            self._check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub)):
                raise CalculatorError(f"the operator {_op_name(node.op)} is not supported")
            self._check(node.operand, depth + 1)
        elif isinstance(node, ast.Name):
            if node.id not in _CONSTANTS:
                known = ", ".join(sorted(_CONSTANTS))
                raise CalculatorError(f"unknown name {node.id!r} (constants: {known})")
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
                known = ", ".join(sorted(_FUNCTIONS))
                raise CalculatorError(f"unknown function (functions: {known})")
            if node.keywords:
                raise CalculatorError("functions take positional arguments only")
            _, lo, hi = _FUNCTIONS[node.func.id]
            if not lo <= len(node.args) <= hi:
                raise CalculatorError(f"{node.func.id}() takes {lo}..{hi} arguments")
            for a in node.args:
                self._check(a, depth + 1)
        else:
            raise CalculatorError(f"{type(node).__name__} is not allowed in an expression")

    def evaluate(self, expression: str) -> Number:
        """The value of the expression; raises CalculatorError on anything not computable."""
        tree = self.parse(expression)
        try:
            value = self._eval(tree.body)
        except CalculatorError:
            raise
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
        except (ValueError, TypeError) as e:
            raise CalculatorError(f"math error: {e}") from None
        if isinstance(value, float):
            if not math.isfinite(value):
                raise CalculatorError("the result is not a finite number")
            value = float(f"{value:.15g}")  # 0.1 + 0.2 -> 0.3, as a calculator shows it
        return value

    def _eval(self, node: ast.AST) -> Number:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return _CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand)
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BinOp):
            a, b = self._eval(node.left), self._eval(node.right)
            self._guard(node.op, a, b)
            return _BINARY[type(node.op)](a, b)
        if isinstance(node, ast.Call):
            fn, _, _ = _FUNCTIONS[node.func.id]
            args = [self._eval(a) for a in node.args]
            if node.func.id == "factorial":
                n = args[0]
                if not (isinstance(n, int) or (isinstance(n, float) and n.is_integer())):
                    raise CalculatorError("factorial() needs a whole number")
                n = int(n)
                if n > 0 and math.lgamma(n + 1) / math.log(10) > self.limits.max_digits:
                    raise CalculatorError(f"factorial({n}) has too many digits")
                args = [n]
            result = fn(*args)
            self._guard_int(result)
            return result
        raise CalculatorError(f"{type(node).__name__} is not allowed")  # checked in parse

    def _guard(self, op: ast.operator, a: Number, b: Number) -> None:
        """Refuse integer operations whose result would exceed the digit limit."""
        if not (isinstance(a, int) and isinstance(b, int)):
            return
        limit = self.limits.max_digits
        if isinstance(op, ast.Pow) and b > 0 and abs(a) > 1:
            if b * math.log10(abs(a)) > limit:
                raise CalculatorError(f"{a}**{b} would have more than {limit} digits")
        elif isinstance(op, ast.Mult) and _digits(a) + _digits(b) > limit + 1:
            raise CalculatorError(f"the product would have more than {limit} digits")

    def _guard_int(self, value: Number) -> None:
        if isinstance(value, int) and _digits(value) > self.limits.max_digits:
            raise CalculatorError(f"the result has more than {self.limits.max_digits} digits")


def _op_name(op: ast.AST) -> str:
    return type(op).__name__


class CalculatorTool(Tool):
    """`{"expression": "..."}`: parsed as soon as the string closes, computed at once.

    limits: `max_chars`, `max_digits`, `max_depth`.
    """

    def __init__(self, spec=None):
        super().__init__(spec)
        self._calc: Calculator | None = None

    @property
    def calc(self) -> Calculator:
        if self._calc is None:
            known = {"max_chars", "max_digits", "max_depth"}
            limits = {k: v for k, v in self.spec.limits.items() if k in known}
            self._calc = Calculator(CalculatorLimits(**limits))
        return self._calc

    def check_unit(self, unit: Unit, ctx: CallContext) -> None:
        if unit.path == "/expression":
            try:
                self.calc.parse(str(unit.value))
            except CalculatorError as e:
                raise ArgumentRejectedError(str(e), tool=self.spec.name, unit=unit.path) from None

    def run_unit(self, unit: Unit, ctx: CallContext) -> dict[str, Any] | None:
        if unit.path != "/expression":
            return None
        return self._compute(str(unit.value))

    def _compute(self, expression: str) -> dict[str, Any]:
        try:
            return {"expression": expression, "result": self.calc.evaluate(expression)}
        except CalculatorError as e:
            raise ToolExecutionError(str(e), tool=self.spec.name, unit="/expression") from None

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> Any:
        expression = str(arguments["expression"])
        for r in results:
            if r.ok and isinstance(r.value, Mapping) and r.value.get("expression") == expression:
                return r.value
        return self._compute(expression)
