"""Micro-benchmark of unit detection: microseconds per token, per detector, per call size.

Run `python -m sgl_conveyor.eval.bench_units [--out FILE]`. Tokens are simulated as fixed
4-character chunks of generated calls (what a model streams, minus the model); times are the
process's CPU time, so other jobs on a shared machine do not inflate long calls more than short
ones. It measures only
the detectors and must never need a model, a network or a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sgl_conveyor.units import JsonUnitDetector, TextUnitDetector, UnitDetector, UnitPattern

CHARS_PER_TOKEN = 4
SIZES = (100, 1000, 4000)

_WORDS = (
    "population",
    "paris",
    "lyon",
    "market",
    "cap",
    "revenue",
    "weather",
    "forecast",
    "berlin",
    "tokyo",
    "history",
    "of",
    "the",
    "river",
    "bridge",
    "museum",
    "opening",
    "hours",
    "train",
    "schedule",
    "price",
    "index",
    "growth",
    "rate",
    "2024",
    "quarterly",
)

SEARCH_SCHEMA = {
    "type": "object",
    "properties": {
        "queries": {"type": "array", "items": {"type": "string"}},
        "site": {"type": "string"},
    },
    "required": ["queries"],
    "additionalProperties": False,
}
STEPS_SCHEMA = {
    "type": "object",
    "properties": {
        "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
    },
    "additionalProperties": False,
    "$defs": {
        "step": {
            "type": "object",
            "properties": {
                "tool": {"enum": ["search", "calc", "lookup"]},
                "args": {"type": "object"},
                "weight": {"type": "number"},
                "cache": {"type": "boolean"},
            },
            "required": ["tool", "args"],
        }
    },
}


def _phrase(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(_WORDS) for _ in range(n))


def _python_program(rnd: random.Random, chars: int) -> str:
    out = ["import math", "from collections import defaultdict", ""]
    k = 0
    while sum(len(s) + 1 for s in out) < chars:
        k += 1
        r = k % 4
        if r == 0:
            out.append(f"def f{k}(x, y={k}):\n    '''{_phrase(rnd, 4)}'''\n    return x * y + {k}")
        elif r == 1:
            out.append(f"values_{k} = [math.sqrt(i) for i in range({k})]  # {_phrase(rnd, 2)}")
        elif r == 2:
            out.append(
                f'if values_{k - 1}:\n    print(f"{{len(values_{k - 1})}} items")\nelse:\n    pass'
            )
        else:
            out.append(f"table_{k} = {{'name': \"{_phrase(rnd, 2)}\", 'n': {k}}}")
        out.append("")
    return "\n".join(out)


def _plan(rnd: random.Random, chars: int) -> str:
    lines = ["Thought: gather the data first."]
    k = 0
    while sum(len(s) + 1 for s in lines) < chars:
        k += 1
        if k > 2 and k % 3 == 0:
            lines.append(f"{k}. compute_ratio(${k - 2}, ${k - 1}, digits=3)")
        else:
            lines.append(f'{k}. search("{_phrase(rnd, 3)}")')
    lines.append("join()<END_OF_PLAN>")
    return "\n".join(lines) + "\n"


def _search_call(rnd: random.Random, chars: int) -> str:
    queries: list[str] = []
    while len(json.dumps({"queries": queries})) < chars:
        queries.append(_phrase(rnd, 4))
    return json.dumps({"queries": queries, "site": "example.org"})


def _steps_call(rnd: random.Random, chars: int) -> str:
    steps: list[dict] = []
    while len(json.dumps({"steps": steps}, indent=2)) < chars:
        steps.append(
            {
                "tool": rnd.choice(["search", "calc", "lookup"]),
                "args": {"q": _phrase(rnd, 2), "limit": rnd.randint(1, 50), "tags": ["a", "b"]},
                "weight": round(rnd.random(), 3),
                "cache": rnd.random() < 0.5,
            }
        )
    return json.dumps({"steps": steps}, indent=2)


def _code_call(rnd: random.Random, chars: int) -> str:
    # the escaped JSON string is longer than the code; aim the code a bit short
    return json.dumps({"code": _python_program(rnd, int(chars * 0.85))})


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    text: Callable[[random.Random, int], str]
    detector: Callable[[], UnitDetector]


CASES = (
    Case(
        "json-queries",
        "{queries: [str...]}, units /queries/*, with schema",
        _search_call,
        lambda: JsonUnitDetector([UnitPattern("/queries/*")], SEARCH_SCHEMA),
    ),
    Case(
        "json-steps",
        "indented objects, numbers, bools; units /steps/* and /steps/*/args, with $ref schema",
        _steps_call,
        lambda: JsonUnitDetector(
            [UnitPattern("/steps/*"), UnitPattern("/steps/*/args")], STEPS_SCHEMA
        ),
    ),
    Case(
        "json-code",
        "{code: str} with \\n escapes, split into Python statements",
        _code_call,
        lambda: JsonUnitDetector([UnitPattern("/code", "python")]),
    ),
    Case(
        "text-python",
        "raw Python code, top-level statements",
        _python_program,
        lambda: TextUnitDetector("/code", "python"),
    ),
    Case(
        "text-plan",
        "LLMCompiler plan, one step per line",
        _plan,
        lambda: TextUnitDetector("/plan", "plan"),
    ),
    Case(
        "text-lines",
        "lines of text",
        lambda rnd, chars: "\n".join(_phrase(rnd, 6) for _ in range(chars // 40 + 1)),
        lambda: TextUnitDetector("/text", "lines"),
    ),
)


@dataclass(frozen=True)
class Result:
    case: str
    tokens: int
    chars: int
    units: int
    us_per_token: float  # best of the repeats: the detector's own cost, least disturbed
    us_per_token_median: float
    us_per_call: float  # best of the repeats


def _run_once(case: Case, chunks: list[str]) -> tuple[float, int]:
    detector = case.detector()
    t0 = time.process_time()
    n = 0
    for c in chunks:
        n += len(detector.feed(c))
    n += len(detector.finish())
    return time.process_time() - t0, n


def measure(case: Case, sizes: list[int], repeats: int) -> list[Result]:
    """Each repeat runs every size once, so a burst of load on the machine hits all sizes."""
    calls = []
    for tokens in sizes:
        text = case.text(random.Random(tokens), tokens * CHARS_PER_TOKEN)
        calls.append(
            (text, [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)])
        )
    runs: list[list[float]] = [[] for _ in sizes]
    units = [0] * len(sizes)
    for _ in range(repeats):
        for k, (_, chunks) in enumerate(calls):
            seconds, units[k] = _run_once(case, chunks)
            runs[k].append(seconds)
    return [
        Result(
            case=case.name,
            tokens=len(chunks),
            chars=len(text),
            units=units[k],
            us_per_token=min(runs[k]) / len(chunks) * 1e6,
            us_per_token_median=statistics.median(runs[k]) / len(chunks) * 1e6,
            us_per_call=min(runs[k]) * 1e6,
        )
        for k, (text, chunks) in enumerate(calls)
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the results as JSON to this file")
    ap.add_argument("--repeats", type=int, default=15, help="runs per case and size")
    ap.add_argument("--sizes", type=int, nargs="*", default=list(SIZES), help="tokens per call")
    args = ap.parse_args(argv)

    results = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"unit detection, µs per token; a token is a fixed {CHARS_PER_TOKEN}-character chunk of "
        f"the call's text (no model); CPU time, best of {args.repeats} runs (median in brackets)\n"
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load:.2f} when started"
    )
    print(f"{'case':<14}" + "".join(f"{f'{n} tokens':>18}" for n in args.sizes) + "   units")
    for case in CASES:
        row = measure(case, args.sizes, args.repeats)
        results += row
        cells = "".join(f"{f'{r.us_per_token:.2f} ({r.us_per_token_median:.2f})':>18}" for r in row)
        print(f"{case.name:<14}{cells}   {'/'.join(str(r.units) for r in row)}")
    if args.out:
        payload = {
            "chars_per_token": CHARS_PER_TOKEN,
            "repeats": args.repeats,
            "statistic": "process CPU time; us_per_token is the best of the repeats",
            "load_average": load,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cases": {c.name: c.what for c in CASES},
            "results": [asdict(r) for r in results],
        }
        with open(args.out, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
