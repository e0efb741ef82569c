"""The `plan` tool: an LLMCompiler-style plan whose steps run as soon as each line is complete
and the steps it refers to (`$k`) have finished.

The step library does real work: `search` and `lookup` go to the search service, arithmetic goes
through the safe calculator, `format` fills a template. A step never sees another step's result
except through a `$k` reference, and nothing in a plan is ever passed to `eval`.
"""

from __future__ import annotations

import inspect
import math
import re
import string
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from sgl_conveyor.errors import (
    ArgumentRejectedError,
    ToolCallError,
    ToolExecutionError,
    UnitError,
)
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.tools.builtin.calculator import Calculator, CalculatorError
from sgl_conveyor.tools.builtin.search import SearchClient
from sgl_conveyor.tools.spec import ToolSpec
from sgl_conveyor.units.base import Unit
from sgl_conveyor.units.plan import Expr, PlanSplitter, Ref

Number = int | float

_NUMBER = re.compile(
    r"(?<![\w.])(-?\d[\d,]*(?:\.\d+)?)(?:\s*(thousand|million|billion|trillion))?(\s*BC\b)?",
    re.IGNORECASE,
)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_REF_IN_TEXT = re.compile(r"\$\{?(\d+)\}?")


def to_number(value: Any, what: str = "value") -> Number:
    """A number from a step result: numbers as they are, else the first number in the text
    ("about 3,100 billion US dollars" -> 3.1e12, "about 250 BC" -> -250)."""
    if isinstance(value, bool):
        raise ToolExecutionError(f"{what} is a truth value, not a number")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, Mapping) and "value" in value:
        return to_number(value["value"], what)
    m = _NUMBER.search(str(value))
    if m is None:
        raise ToolExecutionError(f"{what} has no number in it: {str(value)[:80]!r}")
    text = m.group(1).replace(",", "")
    n: Number = float(text) if "." in text else int(text)
    if m.group(2):
        n = n * _SCALE[m.group(2).lower()]
        if isinstance(n, float) and n.is_integer():
            n = int(n)
    if m.group(3):
        n = -n
    return n


def show(value: Any) -> str:
    """A result as a person would write it: 2,100,000 / 0.9118 / 3.5."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


class _SafeFormatter(string.Formatter):
    """str.format without attribute or item access in the fields ({0.__class__} is refused)."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]):
        if "." in field_name or "[" in field_name:
            raise ToolExecutionError(f"format fields cannot use '.' or '[': {{{field_name}}}")
        return super().get_field(field_name, args, kwargs)


_FORMATTER = _SafeFormatter()


# --- the step library ------------------------------------------------------------------------


@dataclass
class StepContext:
    """What a step function can use: the search client and the call's context."""

    client: Callable[[], SearchClient]
    ctx: CallContext
    calc: Calculator


def _search(env: StepContext, query: Any) -> str:
    """The best hit for the query, as 'Title: the sentence that answers it'."""
    env.ctx.check()
    hits = env.client().search(str(query), 1)
    if not hits:
        raise ToolExecutionError(f"search found nothing for {str(query)!r}")
    return f"{hits[0]['title']}: {hits[0]['snippet']}"


def _lookup(env: StepContext, entity: Any, attribute: Any) -> Any:
    """One fact of one entity from the encyclopedia's tables."""
    env.ctx.check()
    try:
        return env.client().lookup(str(entity), str(attribute))["value"]
    except LookupError as e:
        body = e.args[0] if e.args and isinstance(e.args[0], Mapping) else {}
        hint = ""
        if body.get("suggestions"):
            hint = f"; did you mean {', '.join(body['suggestions'])}?"
        elif body.get("attributes"):
            hint = f"; known attributes: {', '.join(body['attributes'])}"
        raise ToolExecutionError(f"lookup failed: {body.get('error', e)}{hint}") from None


def _calc(env: StepContext, expression: Any) -> Number:
    try:
        return env.calc.evaluate(str(expression))
    except CalculatorError as e:
        raise ToolExecutionError(f"calc({str(expression)!r}): {e}") from None


def _nums(values: Sequence[Any], fn: str) -> list[Number]:
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = values[0]
    if not values:
        raise ToolExecutionError(f"{fn}() needs at least one number")
    return [to_number(v, f"argument {i + 1} of {fn}()") for i, v in enumerate(values)]


def _ratio(env: StepContext, a: Any, b: Any) -> float:
    x, y = to_number(a, "the numerator"), to_number(b, "the denominator")
    if y == 0:
        raise ToolExecutionError("ratio(): the denominator is zero")
    return x / y


def _percent(env: StepContext, a: Any, b: Any) -> float:
    return 100.0 * _ratio(env, a, b)


def _diff(env: StepContext, a: Any, b: Any) -> Number:
    return to_number(a, "the first value") - to_number(b, "the second value")


def _sum(env: StepContext, *xs: Any) -> Number:
    return sum(_nums(xs, "sum"))


def _product(env: StepContext, *xs: Any) -> Number:
    return math.prod(_nums(xs, "product"))


def _mean(env: StepContext, *xs: Any) -> float:
    ns = _nums(xs, "mean")
    return sum(ns) / len(ns)


def _max(env: StepContext, *xs: Any) -> Number:
    return max(_nums(xs, "max"))


def _min(env: StepContext, *xs: Any) -> Number:
    return min(_nums(xs, "min"))


def _round(env: StepContext, x: Any, digits: Any = 0) -> Number:
    return round(to_number(x), int(to_number(digits)))


def _format(env: StepContext, *args: Any) -> str:
    """format("{} is {:.2f} times {}", $1, $2, "x"), or the arguments joined as text."""
    if args and isinstance(args[0], str) and "{" in args[0]:
        try:
            return _FORMATTER.format(args[0], *args[1:])
        except (IndexError, KeyError, ValueError) as e:
            raise ToolExecutionError(f"format(): {e}") from None
    return " ".join(show(a) for a in args)


def _format_ratio(env: StepContext, x: Any) -> str:
    return f"{to_number(x, 'the ratio'):.2f}"


def _join(env: StepContext, *xs: Any) -> Any:
    """The end of the plan: its arguments, or None (the plan's answer is then the step before)."""
    if not xs:
        return None
    return xs[0] if len(xs) == 1 else list(xs)


STEPS: Mapping[str, Callable[..., Any]] = {
    "search": _search,
    "lookup": _lookup,
    "calc": _calc,
    "ratio": _ratio,
    "compute_ratio": _ratio,
    "percent": _percent,
    "diff": _diff,
    "subtract": _diff,
    "sum": _sum,
    "add": _sum,
    "product": _product,
    "multiply": _product,
    "mean": _mean,
    "average": _mean,
    "max": _max,
    "min": _min,
    "round": _round,
    "format": _format,
    "format_ratio": _format_ratio,
    "join": _join,
    "finish": _join,
}


def _arity(fn: Callable[..., Any]) -> tuple[int, int | None]:
    params = list(inspect.signature(fn).parameters.values())[1:]  # the StepContext
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return sum(p.default is p.empty for p in params if p.kind is not p.VAR_POSITIONAL), None
    return sum(p.default is p.empty for p in params), len(params)


_ARITY = {name: _arity(fn) for name, fn in STEPS.items()}


# --- the tool --------------------------------------------------------------------------------


class PlanTool(Tool):
    """Runs plan steps through the step library. limits: those of the search client."""

    def __init__(self, spec: ToolSpec | None = None):
        super().__init__(spec)
        self._client: SearchClient | None = None
        self._lock = threading.Lock()
        self._calc = Calculator()

    def client(self) -> SearchClient:
        with self._lock:
            if self._client is None:
                self._client = SearchClient.from_limits(
                    self.spec.limits, connections=max(4, self.spec.max_concurrency)
                )
            return self._client

    def start(self, ctx: CallContext) -> None:
        self.client().warm()

    def check_unit(self, unit: Unit, ctx: CallContext) -> None:
        meta = unit.meta if isinstance(unit.meta, Mapping) else {}
        name = meta.get("tool")
        if name is None:
            raise ArgumentRejectedError("not a plan step", tool=self.spec.name, unit=unit.path)
        if name not in STEPS:
            known = ", ".join(sorted(STEPS))
            raise ArgumentRejectedError(
                f"step {meta.get('id')}: unknown step tool {name!r} (known: {known})",
                tool=self.spec.name,
                unit=unit.path,
            )
        if meta.get("kwargs"):
            raise ArgumentRejectedError(
                f"step {meta.get('id')}: {name}() takes positional arguments only",
                tool=self.spec.name,
                unit=unit.path,
            )
        lo, hi = _ARITY[name]
        n = len(meta.get("args", ()))
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else (f"{lo} or more" if hi is None else f"{lo} to {hi}")
            raise ArgumentRejectedError(
                f"step {meta.get('id')}: {name}() takes {want} arguments, got {n}",
                tool=self.spec.name,
                unit=unit.path,
            )

    def run_unit(self, unit: Unit, ctx: CallContext) -> Any:
        meta = unit.meta
        return self._run_step(meta["id"], meta["tool"], meta.get("args", ()), ctx, ctx.results)

    def _run_step(
        self,
        step_id: int,
        name: str,
        args: Sequence[Any],
        ctx: CallContext,
        results: Mapping[Any, Any],
    ) -> Any:
        env = StepContext(self.client, ctx, self._calc)
        values = [self._resolve(a, step_id, results) for a in args]
        try:
            return STEPS[name](env, *values)
        except ToolCallError as e:
            e.message = f"step {step_id} ({name}): {e.message}"
            e.args = (e.message,)
            raise
        except (ArithmeticError, ValueError, TypeError) as e:
            raise ToolExecutionError(f"step {step_id} ({name}): {e}") from None

    def _resolve(self, arg: Any, step_id: int, results: Mapping[Any, Any]) -> Any:
        if isinstance(arg, Ref):
            return _result_of(arg.id, step_id, results)
        if isinstance(arg, Expr):
            return self._expr(arg, step_id, results)
        if isinstance(arg, list):
            return [self._resolve(a, step_id, results) for a in arg]
        if isinstance(arg, tuple):
            return tuple(self._resolve(a, step_id, results) for a in arg)
        if isinstance(arg, dict):
            return {k: self._resolve(v, step_id, results) for k, v in arg.items()}
        return arg

    def _expr(self, expr: Expr, step_id: int, results: Mapping[Any, Any]) -> Any:
        """`$1 / 2` computes; unquoted text (`Microsoft market cap`) stays text."""
        vals = {k: _result_of(k, step_id, results) for k in expr.refs}
        try:
            numeric = _REF_IN_TEXT.sub(lambda m: repr(to_number(vals[int(m.group(1))])), expr.text)
            return self._calc.evaluate(numeric)
        except (ToolCallError, CalculatorError, KeyError):
            return _REF_IN_TEXT.sub(lambda m: show(vals.get(int(m.group(1)), m.group())), expr.text)

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> Any:
        text = arguments if isinstance(arguments, str) else arguments[self.spec.text_field]
        steps = _parse_plan(text)
        values: dict[int, Any] = {}
        errors: dict[int, str] = {}
        for r in results:
            sid = r.unit.meta.get("id") if isinstance(r.unit.meta, Mapping) else None
            if sid is None:
                continue
            if r.ok:
                values[sid] = r.value
            elif r.error is not None:
                errors[sid] = r.error.message
        for sid, v in ctx.results.items():
            if isinstance(sid, int):
                values.setdefault(sid, v)
        pending = [s for s in steps if s["id"] not in values and s["id"] not in errors]
        if pending:
            self._run_rest(pending, values, errors, ctx)
        out, answer = [], None
        for s in steps:
            entry: dict[str, Any] = {"id": s["id"], "step": s["text"]}
            if s["id"] in values:
                entry["result"] = values[s["id"]]
                if s["tool"] not in ("join", "finish") or values[s["id"]] is not None:
                    answer = values[s["id"]]
            else:
                entry["error"] = errors.get(s["id"], "not run")
            out.append(entry)
        return {"steps": out, "answer": answer}

    def _run_rest(
        self,
        pending: list[dict[str, Any]],
        values: dict[int, Any],
        errors: dict[int, str],
        ctx: CallContext,
    ) -> None:
        """Steps no unit ran (sequential mode): each as soon as its dependencies are done."""
        todo = {s["id"]: s for s in pending}
        running: dict[Future, int] = {}
        with ThreadPoolExecutor(max(1, self.spec.max_concurrency), "plan-step") as pool:
            while todo or running:
                for sid, s in list(todo.items()):
                    if any(d in errors for d in s["deps"]):
                        errors[sid] = "not run: a step it depends on failed"
                        del todo[sid]
                    elif all(d in values for d in s["deps"]):
                        del todo[sid]
                        snapshot = dict(values)
                        fut = pool.submit(self._run_step, sid, s["tool"], s["args"], ctx, snapshot)
                        running[fut] = sid
                if not running:
                    for sid in todo:
                        errors[sid] = "not run: its dependencies never finished"
                    return
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    sid = running.pop(fut)
                    try:
                        values[sid] = fut.result()
                    except ToolCallError as e:
                        errors[sid] = e.message

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _result_of(k: int, step_id: int, results: Mapping[Any, Any]) -> Any:
    for key in (k, str(k)):
        if key in results:
            return results[key]
    raise ToolExecutionError(f"step {step_id} needs the result of step {k}, which has none")


def _parse_plan(text: str) -> list[dict[str, Any]]:
    splitter = PlanSplitter()
    try:
        pieces = splitter.feed(text) + splitter.finish()
    except UnitError as e:
        raise ArgumentRejectedError(f"the plan is malformed: {e}") from None
    return [{**p.meta, "text": p.text} for p in pieces]
