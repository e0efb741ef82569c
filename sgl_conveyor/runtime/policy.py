"""When a unit runs: a pure decision on the unit and the runtime's estimates.

The scope asks it once per final unit and does what it says; it never looks at a clock, a
thread or a stream, so every rule of scheduling can be read (and tested) here alone.
"""

from __future__ import annotations

import enum

from sgl_conveyor.runtime.cost_model import BATCH, DEFER
from sgl_conveyor.tools.spec import Effect, Order, ToolSpec
from sgl_conveyor.units.base import Unit


class Decision(str, enum.Enum):
    """What to do with a unit now; the value is what the timeline records."""

    END = "end"  # run when the call is complete (sequential, call-eager)
    HOLD = "hold"  # run after the whole call validated (irreversible, or behind one in order)
    RUN = "run"  # hand to a worker now
    BATCH = "batch"  # join the next hand-off: alone it costs more than it saves
    DEFER = "defer"  # run inline at close: cheaper than any hand-off


def effect_of(spec: ToolSpec, unit: Unit) -> Effect:
    """The unit's declared effect; a unit no pattern declares is irreversible (the safe one)."""
    if unit.pattern < len(spec.units):
        return spec.units[unit.pattern].effect
    return Effect.IRREVERSIBLE


def cost_hint(spec: ToolSpec, unit: Unit) -> float | None:
    """The spec's estimate of the unit's cost (ms), the cost model's prior."""
    if unit.pattern < len(spec.units):
        return spec.units[unit.pattern].cost_ms
    return None


def decide(
    mode: str, effect: Effect, order: Order, held: bool, cost: str | None = None
) -> Decision:
    """The decision for one unit.

    mode:   the call's mode value ("partial", "sequential", "call-eager").
    held:   an earlier unit of the call is held.
    cost:   the cost model's decision ("run", "batch", "defer"), or None without a cost model.
    """
    if mode != "partial":
        return Decision.END
    serial = order is Order.SERIAL
    if not effect.runs_early or (serial and held):
        # In a serial tool whatever follows a held unit waits behind it, or the order of
        # execution would change.
        return Decision.HOLD
    if cost == DEFER:
        # Inline at close would overtake the units queued on a serial tool's one worker.
        return Decision.BATCH if serial else Decision.DEFER
    if cost == BATCH:
        return Decision.BATCH
    return Decision.RUN


class Batch:
    """Units the policy said to BATCH: they wait for one shared hand-off until their expected
    cost is worth it (the scope compares `expected_s` with the cost model's target)."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.expected_s = 0.0

    def add(self, unit: Unit, expected_s: float) -> None:
        self.units.append(unit)
        self.expected_s += expected_s

    def take(self) -> list[Unit]:
        """The waiting units, in arrival order; the batch is empty after."""
        units, self.units, self.expected_s = self.units, [], 0.0
        return units
