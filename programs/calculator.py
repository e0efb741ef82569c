"""calculator: one arithmetic expression, evaluated, then an answer.

The fastest tool there is (an expression takes 10-50 microseconds): the workload shows that
partial execution does not slow down a call it cannot speed up.
"""

from __future__ import annotations

import sglang as sgl

import sgl_conveyor
from sgl_conveyor.eval.goals import FAST_TOOL
from sgl_conveyor.eval.workload import Workload
from sgl_conveyor.lang.prompting import example_turns


@sgl.function
def calculate(s, question, mode=None, task_id=None):
    s += sgl.system(sgl_conveyor.tool_prompt(["calculator"], examples=0))
    for request, call in example_turns("calculator"):
        s += sgl.user(request)
        s += sgl.assistant(call)
    s += sgl.user(question)
    s += sgl.assistant(
        sgl.partial_tool("calculator", name="calc", mode=mode, max_tokens=48, temperature=0)
    )
    s += sgl.user("Answer in one sentence.")
    s += sgl.assistant(sgl.gen("answer", max_tokens=32, stop="\n", temperature=0))


WORKLOAD = Workload(
    name="calculator",
    program=calculate,
    tasks_path="tasks/calculator.jsonl",
    trace_path="traces/calculator.jsonl",
    description="one calculator expression (the fastest tool: partial execution must not make "
    "it slower), then an answer",
    goals=(FAST_TOOL,),
)
