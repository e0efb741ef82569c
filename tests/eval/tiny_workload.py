"""A tiny workload for the eval's own tests: a lookup tool whose queries run as units, a program
that calls it (retrying once after a rejected argument) and answers, three tasks and a trace."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import sglang as sgl

from sgl_conveyor import ArgumentRejectedError, Tool, ToolRegistry
from sgl_conveyor.eval.workload import Workload

LOOKUP_SPEC = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up facts, one query per item.",
        "parameters": {
            "type": "object",
            "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
            "required": ["queries"],
            "additionalProperties": False,
        },
    },
    "conveyor": {"units": [{"path": "/queries/*", "effect": "pure"}], "cost_model": False},
}


class Lookup(Tool):
    """Each query takes 30 ms; 'nowhere' is rejected the moment it is generated."""

    def __init__(self, spec=None):
        super().__init__(spec)
        self.lock = threading.Lock()
        self.runs: list[str] = []

    def check_unit(self, unit, ctx):
        if unit.value == "nowhere":
            raise ArgumentRejectedError("'nowhere' is not a place; name a city")

    def run_unit(self, unit, ctx):
        ctx.sleep(0.03)
        with self.lock:
            self.runs.append(unit.value)
        return f"facts about {unit.value}"

    def finish(self, arguments, results, ctx):
        return {"results": [r.value for r in results]}


def make_registry() -> ToolRegistry:
    reg = ToolRegistry()
    reg.add(LOOKUP_SPEC, Lookup)
    return reg


def make_program(registry: ToolRegistry):
    @sgl.function
    def tiny(s, question, mode="partial", task_id=None):
        s += sgl.user(question)
        s += sgl.assistant(
            sgl.partial_tool(
                "lookup", name="call", mode=mode, registry=registry, retries=1, max_tokens=96
            )
        )
        s += sgl.assistant(sgl.gen("answer", max_tokens=24))

    return tiny


TASKS = [
    {"id": "cities", "input": {"question": "Populations of three cities?"}},
    {"id": "rivers", "input": {"question": "Lengths of two rivers?"}},
    {"id": "bad", "input": {"question": "News from nowhere?"}, "invalid_first": True},
]

TRACE = [
    {
        "id": "cities",
        "workload": "tiny",
        "input": {"question": "Populations of three cities?"},
        "outputs": [
            '{"queries": ["Paris population", "Berlin population", "Rome population"]}',
            "Paris, Berlin and Rome are large.",
        ],
    },
    {
        "id": "rivers",
        "workload": "tiny",
        "input": {"question": "Lengths of two rivers?"},
        "outputs": ['{"queries": ["Nile length", "Rhine length"]}', "The Nile is longer."],
    },
    {
        "id": "bad",
        "workload": "tiny",
        "input": {"question": "News from nowhere?"},
        "outputs": [
            '{"queries": ["nowhere", "local news today", "weather today"]}',
            '{"queries": ["Springfield news"]}',
            "Springfield is quiet.",
        ],
    },
]


def write_jsonl(rows, path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_workload(directory: Path, name: str = "tiny") -> Workload:
    """The tiny workload with its tasks and trace written into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    registry = make_registry()
    return Workload(
        name=name,
        program=make_program(registry),
        tasks_path=write_jsonl(TASKS, directory / "tasks.jsonl"),
        trace_path=write_jsonl(TRACE, directory / "trace.jsonl"),
        tools=registry,
        description="three lookups, one with a rejected first call",
    )
