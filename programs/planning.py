"""planning: an LLMCompiler-style plan whose steps run as soon as each line is written.

The model writes a numbered plan (`1. lookup("Tokyo", "population")`, `3. ratio($1, $2)`, ...);
each step is dispatched the moment its line is complete and the steps it names (`$k`) have
finished, so the searches of the first steps run while the later steps are still decoded. The
step results are reinjected and the model states the answer.
"""

from __future__ import annotations

import sglang as sgl

import sgl_conveyor
from sgl_conveyor.eval.chat_runs import ChatForm, system_and_request
from sgl_conveyor.eval.goals import CALL_EAGER, OVERLAP_CAPTURED
from sgl_conveyor.eval.workload import Workload
from sgl_conveyor.lang.prompting import example_turns, worked_example


# The plan's shape, enforced by constrained decoding (as JSON tools get their schema): first
# two to four look-ups (or searches), numbered 1..n, then one step that combines their results
# ($1..$n), then optionally one step that rounds or formats it. What goes inside the quotes is
# the model's own.
def _plan_regex(most_fetches: int = 4, *, escaped: bool = False) -> str:
    """The plan's shapes. `escaped`: over the plan's JSON-encoded text (`\\"` for a quote,
    `\\n` for a line break), for a server whose grammar applies a JSON Schema `pattern` to
    the string as written (xgrammar does, in `serve` and vLLM alike)."""
    quote, newline = (r'\\"', r"\\n") if escaped else ('"', r"\n")
    inside = r'[^"\\\n]' if escaped else r'[^"\n]'  # escaped: no backslash but the escapes
    text = rf"{quote}{inside}{{1,48}}{quote}"
    fetch = rf"(lookup\({text}, {text}\)|search\({text}\))"
    shapes = []
    for n in range(2, most_fetches + 1):
        ref = rf"\$[1-{n}]"
        combine = (
            rf"((ratio|percent|diff)\({ref}, {ref}\)"
            rf"|(sum|mean|max|min|product)\({ref}(, {ref}){{1,{n - 1}}}\))"
        )
        last = rf"\${n + 1}"
        finish = rf"(round\({last}, [0-9]\)|format\({text}, {last}\))"
        fetches = "".join(rf"{k}\. {fetch}{newline}" for k in range(1, n + 1))
        shapes.append(rf"{fetches}{n + 1}\. {combine}({newline}{n + 2}\. {finish})?")
    return "(" + "|".join(shapes) + (rf")({newline})?" if escaped else r")\n?")


PLAN_REGEX = _plan_regex(3)

INTRO = (
    "You are a helpful assistant that answers with a plan: one numbered step per line, each a "
    "call of the plan tool's functions, with $k for the result of step k. Look up each fact in "
    "its own step, then combine the results. Write the plan only."
)


# Two more worked plans after the spec's three (a mean of three look-ups, a percentage): the
# model copies the shape of the examples, and the spec's alone made it sum everything.
MORE_EXAMPLES = (
    (
        "What is the average length of the Rhine, the Elbe and the Seine?",
        '1. lookup("Rhine River", "length")\n2. lookup("Elbe River", "length")\n'
        '3. lookup("Seine River", "length")\n4. mean($1, $2, $3)',
    ),
    (
        "What percentage of Italy's population lives in Rome?",
        '1. lookup("Rome", "population")\n2. lookup("Italy", "population")\n3. percent($1, $2)',
    ),
)


CHAT_SYSTEM = "\n".join(
    [sgl_conveyor.tool_prompt(["plan"], intro=INTRO)]
    + [worked_example("plan", request, {"plan": plan}) for request, plan in MORE_EXAMPLES]
)


@sgl.function
def planning(s, question, mode=None, task_id=None):
    s += sgl.system(sgl_conveyor.tool_prompt(["plan"], examples=0, intro=INTRO))
    for request, call in [*example_turns("plan"), *MORE_EXAMPLES]:
        s += sgl.user(request)
        s += sgl.assistant(call.rstrip("\n"))
    s += sgl.user(question)
    s += sgl.assistant(
        sgl.partial_tool(
            "plan",
            name="plan",
            mode=mode,
            max_tokens=160,
            regex=PLAN_REGEX,
            temperature=0,
        )
    )
    s += sgl.user("Give the answer in one sentence.")
    s += sgl.assistant(sgl.gen("answer", max_tokens=40, stop="\n", temperature=0))


WORKLOAD = Workload(
    name="planning",
    program=planning,
    tasks_path="tasks/planning.jsonl",
    trace_path="traces/planning.jsonl",
    description="an LLMCompiler-style plan (look-ups, then arithmetic on $k); each step runs "
    "as soon as its line is complete and its dependencies are done",
    goals=(OVERLAP_CAPTURED, CALL_EAGER),
    # Through a chat API the plan is the `plan` argument of a call chosen by name; the worked
    # plans go into the system prompt (the spec's and these).
    chat=ChatForm(
        tool="plan",
        messages=system_and_request(CHAT_SYSTEM, "question"),
        followup="Give the answer in one sentence.",
        call_options={"max_tokens": 160, "temperature": 0.0},
        answer_options={"max_tokens": 40, "stop": ["\n"], "temperature": 0.0},
        # The program's regex, as the call's pattern (over the string as JSON writes it).
        patterns={"plan": "^" + _plan_regex(3, escaped=True) + "$"},
    ),
)
