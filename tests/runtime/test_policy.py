"""The scheduling policy on its own: mode, effect, order and estimate in, a decision out."""

from __future__ import annotations

import pytest

from sgl_conveyor.runtime.policy import Decision, decide
from sgl_conveyor.tools.spec import Effect, Order


@pytest.mark.parametrize("mode", ["sequential", "call-eager"])
def test_outside_partial_mode_every_unit_waits_for_the_end(mode):
    for effect in Effect:
        assert decide(mode, effect, Order.PARALLEL, held=False, cost="defer") is Decision.END


def test_an_irreversible_unit_is_held_whatever_the_cost_model_says():
    for cost in (None, "run", "batch", "defer"):
        assert decide("partial", Effect.IRREVERSIBLE, Order.PARALLEL, False, cost) is Decision.HOLD


def test_in_a_serial_tool_whatever_follows_a_held_unit_is_held_too():
    assert decide("partial", Effect.PURE, Order.SERIAL, held=True) is Decision.HOLD
    assert decide("partial", Effect.PURE, Order.PARALLEL, held=True) is Decision.RUN


def test_the_cost_models_decision_is_followed_for_early_units():
    assert decide("partial", Effect.PURE, Order.PARALLEL, False) is Decision.RUN
    assert decide("partial", Effect.PURE, Order.PARALLEL, False, "run") is Decision.RUN
    assert decide("partial", Effect.REVERSIBLE, Order.PARALLEL, False, "batch") is Decision.BATCH
    assert decide("partial", Effect.PURE, Order.DAG, False, "defer") is Decision.DEFER


def test_a_serial_tool_batches_what_it_would_defer_so_nothing_overtakes_its_queue():
    assert decide("partial", Effect.PURE, Order.SERIAL, False, "defer") is Decision.BATCH


def test_a_decisions_value_is_what_the_timeline_records():
    assert [d.value for d in Decision] == ["end", "hold", "run", "batch", "defer"]
