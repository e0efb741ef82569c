"""codegen: the model writes a Python script for a data task on the bundled files.

The code fence is prefilled and the `python` call stops at the closing fence, so the model
writes plain code; each top-level statement (an import of pandas or matplotlib, loading a file,
a computation, a plot) runs in the sandbox while the next one is decoded. A statement that fails
ends the script; with early interruption (`partial+interrupt`) decoding stops right there. In
every mode the model gets one retry: it is shown the output and the traceback and writes the
script again, in a fresh interpreter. The script's output is reinjected as a tool message and the
model answers in one sentence.

SmolLM2-135M writes plausible scripts here, but many of them fail (invented columns and file
names), which is what early interruption and the retry are measured on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sglang as sgl

import sgl_conveyor
from sgl_conveyor.eval.goals import (
    CALL_EAGER,
    INTERRUPT_SPEEDUP,
    INTERRUPT_SUCCESS,
    OVERLAP_CAPTURED,
)
from sgl_conveyor.eval.metrics import ALL_MODES, INTERRUPT
from sgl_conveyor.eval.workload import Task, Workload

# A small repetition penalty: greedy decoding of a 135M model otherwise loops on one line until
# max_tokens in about a third of the tasks (measured on the 25 tasks: 9 runaways without it).
FREQUENCY_PENALTY = 0.3
RETRIES = 1  # every mode repairs a failed script once: the success rates compare like for like


@sgl.function
def codegen(s, task, mode=None, interrupt=None, task_id=None):
    s += sgl.system(sgl_conveyor.tool_prompt(["python"]))
    s += sgl.user(task)
    s += sgl.assistant(
        "```python\n"
        + sgl.partial_tool(
            "python",
            name="code",
            mode=mode,
            interrupt=interrupt,
            retries=RETRIES,
            stop="```",
            max_tokens=200,
            temperature=0,
            frequency_penalty=FREQUENCY_PENALTY,
        )
    )
    s += sgl.assistant(sgl.gen("answer", max_tokens=40, stop="\n", temperature=0))


def codegen_args(task: Task, mode: str) -> Mapping[str, Any]:
    """`partial+interrupt` is partial mode with early interruption; the other modes run
    without it (sequential and call-eager cannot interrupt; plain partial is the comparison)."""
    interrupt = mode == INTERRUPT
    return {
        "task": task.input["task"],
        "mode": "partial" if interrupt else mode,
        "interrupt": interrupt,
        "task_id": task.id,
    }


WORKLOAD = Workload(
    name="codegen",
    program=codegen,
    tasks_path="tasks/codegen.jsonl",
    trace_path="traces/codegen.jsonl",
    description="a Python script for a data task on the bundled files; each top-level "
    "statement runs in the sandbox as soon as it is written; a failing one stops decoding "
    "(partial+interrupt), and the model repairs the script once",
    make_args=codegen_args,
    modes=ALL_MODES,
    goals=(OVERLAP_CAPTURED, CALL_EAGER, INTERRUPT_SPEEDUP, INTERRUPT_SUCCESS),
)
