"""codegen: the model writes a Python script for a data task on the bundled files.

The code fence is prefilled and the `python` call stops at the closing fence, so the model
writes plain code; each top-level statement (an import, loading a file, a computation, a plot)
runs in the sandbox while the next one is decoded. The script's output (or its traceback) is
reinjected as a tool message and the model answers in one sentence.

SmolLM2-135M writes plausible scripts here, but few of them run to the end: it reaches for
pandas (not installed) and invents file names. What it does write is real work per statement
(imports of numpy and matplotlib, file reads), which is what this workload measures.
"""

from __future__ import annotations

import sglang as sgl

import sgl_conveyor
from sgl_conveyor.eval.goals import CALL_EAGER, OVERLAP_CAPTURED
from sgl_conveyor.eval.workload import Workload

# A small repetition penalty: greedy decoding of a 135M model otherwise loops on one line until
# max_tokens in about a third of the tasks (measured on the 25 tasks: 9 runaways without it).
FREQUENCY_PENALTY = 0.3


@sgl.function
def codegen(s, task, mode=None, task_id=None):
    s += sgl.system(sgl_conveyor.tool_prompt(["python"]))
    s += sgl.user(task)
    s += sgl.assistant(
        "```python\n"
        + sgl.partial_tool(
            "python",
            name="code",
            mode=mode,
            stop="```",
            max_tokens=200,
            temperature=0,
            frequency_penalty=FREQUENCY_PENALTY,
        )
    )
    s += sgl.assistant(sgl.gen("answer", max_tokens=40, stop="\n", temperature=0))


WORKLOAD = Workload(
    name="codegen",
    program=codegen,
    tasks_path="tasks/codegen.jsonl",
    trace_path="traces/codegen.jsonl",
    description="a Python script for a data task on the bundled files; each top-level "
    "statement runs in the sandbox as soon as it is written",
    goals=(OVERLAP_CAPTURED, CALL_EAGER),
)
