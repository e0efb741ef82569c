"""The `faulty` tool: injects faults on demand, for the runtime's tests and the soak test.

Each unit is a step `{"op": ..., "ms": ..., "size": ..., "tag": ...}` that succeeds, sleeps,
hangs until cancelled, raises, is rejected at check time, returns a huge or an unserializable
result. Every execution, undo and abort is counted in a process-wide ledger, so a test can prove
that nothing ran twice. It never blocks past cancellation: every wait goes through `ctx.sleep`.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sgl_conveyor import resources
from sgl_conveyor.errors import ArgumentRejectedError
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.tools.spec import ToolSpec, load_spec
from sgl_conveyor.units.base import Unit

SPEC_FILE = resources.tool_specs_dir() / "faulty.json"
OPS = ("ok", "sleep", "hang", "raise", "reject", "slow_check", "big", "unserializable")
HANG_S = 3600.0
BIG_CHARS = 10_000_000


class InjectedFault(RuntimeError):
    """The exception a `raise` step raises: deliberately not a ToolCallError."""


class Opaque:
    """A result no renderer can serialize: not JSON, not a string (repr still works)."""

    __slots__ = ("step",)

    def __init__(self, step: int):
        self.step = step

    def __repr__(self) -> str:
        return f"<Opaque step {self.step}>"


class FaultLedger:
    """Process-wide counts of what the faulty tool did, by unit key. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: Counter[str] = Counter()
        self._checks: Counter[str] = Counter()
        self._undos: Counter[str] = Counter()
        self._aborts: Counter[str] = Counter()
        self._finishes: Counter[str] = Counter()
        self._active = 0

    def _bump(self, counter: Counter[str], key: str) -> None:
        with self._lock:
            counter[key] += 1

    def executions(self, key: str | None = None) -> int:
        """How many times the unit with `key` ran (all units when None)."""
        with self._lock:
            return self._runs[key] if key is not None else sum(self._runs.values())

    def duplicates(self) -> dict[str, int]:
        """Units that ran more than once: must stay empty."""
        with self._lock:
            return {k: n for k, n in self._runs.items() if n > 1}

    def runs(self) -> dict[str, int]:
        with self._lock:
            return dict(self._runs)

    def checks(self) -> dict[str, int]:
        with self._lock:
            return dict(self._checks)

    def undos(self) -> dict[str, int]:
        with self._lock:
            return dict(self._undos)

    def aborts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._aborts)

    def finishes(self) -> dict[str, int]:
        with self._lock:
            return dict(self._finishes)

    @property
    def active(self) -> int:
        """Steps running right now (0 once every call has ended)."""
        with self._lock:
            return self._active

    def reset(self) -> None:
        with self._lock:
            for c in (self._runs, self._checks, self._undos, self._aborts, self._finishes):
                c.clear()


LEDGER = FaultLedger()


def faulty_spec(
    effect: str = "pure",
    order: str = "parallel",
    *,
    name: str | None = None,
    **conveyor: Any,
) -> ToolSpec:
    """A variant of tool_specs/faulty.json with another effect, order or conveyor settings
    (e.g. `faulty_spec("irreversible", "serial", unit_timeout_s=1)`)."""
    data = copy.deepcopy(json.loads(SPEC_FILE.read_text()))
    conv = data["conveyor"]
    for u in conv["units"]:
        u["effect"] = effect
    conv["order"] = order
    conv.update(conveyor)
    if name:
        data["function"]["name"] = name
    return load_spec(data)


class FaultyTool(Tool):
    """`{"steps": [{"op": "ok" | "sleep" | "hang" | "raise" | "reject" | "slow_check" | "big" |
    "unserializable", "ms": 50, "size": 1000, "tag": "..."}]}`; see OPS."""

    def __init__(self, spec: ToolSpec | None = None, ledger: FaultLedger | None = None):
        super().__init__(spec)
        self.ledger = ledger or LEDGER

    def check_unit(self, unit: Unit, ctx: CallContext) -> None:
        step = _step(unit)
        if step is None:
            return
        self.ledger._bump(self.ledger._checks, ctx.key(unit))
        op = step.get("op")
        if op == "reject":
            raise ArgumentRejectedError(
                f"step {_index(unit)} is rejected (op 'reject')",
                tool=self.spec.name,
                unit=unit.path,
            )
        if op == "slow_check":
            ctx.sleep(step.get("ms", 100) / 1000)

    def run_unit(self, unit: Unit, ctx: CallContext) -> Any:
        step = _step(unit)
        if step is None:
            return None
        key = ctx.key(unit)
        self.ledger._bump(self.ledger._runs, key)
        with self.ledger._lock:
            self.ledger._active += 1
        try:
            return self._do(step, _index(unit), ctx)
        finally:
            with self.ledger._lock:
                self.ledger._active -= 1

    def _do(self, step: Mapping[str, Any], i: int, ctx: CallContext) -> Any:
        op = step.get("op", "ok")
        ms = step.get("ms", 0)
        if op == "hang":
            ctx.sleep(ms / 1000 if ms else HANG_S)  # only cancellation or a timeout ends it
        elif ms:
            ctx.sleep(ms / 1000)
        elif op == "sleep":
            ctx.sleep(0.1)
        if op == "raise":
            raise InjectedFault(f"injected fault at step {i}")
        if op == "big":
            return "x" * int(step.get("size", BIG_CHARS))
        if op == "unserializable":
            return Opaque(i)
        return {"step": i, "op": op, "tag": step.get("tag")}

    def undo_unit(self, unit: Unit, result: Any, ctx: CallContext) -> None:
        self.ledger._bump(self.ledger._undos, ctx.key(unit))

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> Any:
        self.ledger._bump(self.ledger._finishes, ctx.call_id)
        steps = list(arguments.get("steps", ())) if isinstance(arguments, Mapping) else []
        by_index: dict[int, UnitResult] = {}
        for r in results:
            if r.unit.path.startswith("/steps/"):
                by_index[_index(r.unit)] = r
        out = []
        for i in range(len(steps)):
            r = by_index.get(i)
            if r is None:
                out.append({"step": i, "error": "not run"})
            elif r.ok:
                v = r.value
                out.append(v if isinstance(v, Mapping) else {"step": i, "value": v})
            else:
                out.append({"step": i, "error": r.error.message if r.error else "failed"})
        return {"steps": out}

    def abort(self, ctx: CallContext, error: BaseException | None) -> None:
        self.ledger._bump(self.ledger._aborts, ctx.call_id)


def _step(unit: Unit) -> Mapping[str, Any] | None:
    return (
        unit.value if unit.path.startswith("/steps/") and isinstance(unit.value, Mapping) else None
    )


def _index(unit: Unit) -> int:
    try:
        return int(unit.path.rsplit("/", 1)[1])
    except ValueError:
        return unit.index
