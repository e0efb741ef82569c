"""The `get_local_news` tool: each argument checked the moment it completes, with messages the
model can act on; the feed fetched early and reused at the end."""

from __future__ import annotations

import threading
import time

import pytest
from tool_helpers import json_unit, make_ctx, make_tool

from sgl_conveyor.errors import ArgumentRejectedError, CallCancelledError
from sgl_conveyor.tools.base import UnitResult


@pytest.fixture(scope="module")
def tool():
    t = make_tool("get_local_news")
    yield t
    t.close()


def check(tool, ctx, path, value):
    tool.check_unit(json_unit(path, value), ctx)


@pytest.mark.parametrize(
    "location",
    [
        "New York, NY",
        "new york, new york",
        "Portland, Oregon",
        "St. Louis, MO",
        "Lyon, France",
        "London, UK",
        "New York, USA",
    ],
)
def test_places_the_gazetteer_knows_are_accepted_in_usual_spellings(tool, location):
    ctx = make_ctx(tool)
    tool.start(ctx)
    check(tool, ctx, "/location", location)


@pytest.mark.parametrize(
    ("location", "message", "suggested"),
    [
        ("New York", "incomplete", ["New York, NY"]),
        ("Portland", "incomplete", ["Portland, OR", "Portland, ME"]),
        ("Springfeld, IL", "unknown location", ["Springfield, IL"]),
        ("Atlantis, Greece", "unknown location", ["Athens, Greece"]),
        ("Paris, USA", "unknown location", ["Paris, France"]),
    ],
)
def test_unknown_places_are_rejected_with_close_matches(tool, location, message, suggested):
    ctx = make_ctx(tool)
    with pytest.raises(ArgumentRejectedError) as e:
        check(tool, ctx, "/location", location)
    text = str(e.value)
    assert message in text and "'City, ST'" in text
    for s in suggested:
        assert s in text
    assert e.value.unit == "/location"


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("2024-02-30", "not a real date"),
        ("2024-13-01", "not a real date"),
        ("04/01/2024", "YYYY-MM-DD"),
        ("2023-04-01", "the feed covers 2024-03-01 to 2024-04-30"),
    ],
)
def test_bad_dates_are_rejected(tool, date, message):
    with pytest.raises(ArgumentRejectedError, match=message):
        check(tool, make_ctx(tool), "/date", date)


@pytest.mark.parametrize("order", [("/date", "/days"), ("/days", "/date")])
def test_a_range_past_the_feed_is_rejected_whichever_argument_comes_last(tool, order):
    ctx = make_ctx(tool)
    tool.start(ctx)
    values = {"/date": "2024-04-28", "/days": 5}
    check(tool, ctx, order[0], values[order[0]])
    with pytest.raises(ArgumentRejectedError, match="use days of at most 3") as e:
        check(tool, ctx, order[1], values[order[1]])
    assert e.value.unit == order[1]


def test_days_outside_one_to_seven_are_rejected(tool):
    for days in (0, 8, True, 2.5):
        with pytest.raises(ArgumentRejectedError, match="from 1 to 7"):
            check(tool, make_ctx(tool), "/days", days)


def test_the_feed_fetched_for_the_location_unit_is_filtered_at_the_end(tool):
    args = {"location": "New York, NY", "date": "2024-04-01", "days": 1}
    ctx = make_ctx(tool)
    tool.start(ctx)
    results = []
    for i, (k, v) in enumerate(args.items()):
        unit = json_unit(f"/{k}", v, i)
        tool.check_unit(unit, ctx)
        results.append(UnitResult(unit, tool.run_unit(unit, ctx)))
    assert results[0].value["location"] == "New York, NY" and results[0].value["feed"]
    out = tool.finish(args, results, ctx)
    assert out["location"] == "New York, NY" and out["from"] == out["to"] == "2024-04-01"
    assert out["total"] >= 1 and all(i["date"] == "2024-04-01" for i in out["items"])
    seq = make_ctx(tool, mode="sequential")
    tool.start(seq)
    assert tool.finish(args, [], seq) == out


def test_the_simulated_api_latency_gives_way_to_cancellation():
    tool = make_tool("get_local_news", latency_ms=20_000, latency_sigma=0)
    ctx = make_ctx(tool)
    tool.start(ctx)
    threading.Timer(0.2, ctx.cancelled.set).start()
    t0 = time.monotonic()
    with pytest.raises(CallCancelledError):
        tool.run_unit(json_unit("/location", "Boston, MA"), ctx)
    assert time.monotonic() - t0 < 3
    tool.close()
