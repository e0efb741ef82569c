"""agent: a multi-round tool-using program (choose an action, call, observe, ..., answer).

Each round the model picks its next action with `sgl.select` among the tools and "answer";
a tool action is one `sgl.partial_tool` call, whose units (search queries, the news call's
arguments, an expression) run while it is decoded; the result is reinjected as a tool message
before the next round. Every task needs two tools (a fact, then arithmetic on it; or news, then
a fact): two tool rounds, a third if the model wants it, then the answer.
"""

from __future__ import annotations

import json
from typing import Any

import sglang as sgl
from sglang.lang.choices import greedy_token_selection

import sgl_conveyor
from sgl_conveyor.eval.goals import CALL_EAGER_WHERE_MEASURED
from sgl_conveyor.eval.workload import Workload
from sgl_conveyor.lang.prompting import tool_turn
from sgl_conveyor.lang.render import Render

# Action names as the model writes them, and the tool each one calls. Short names with distinct
# first tokens: the choice is made by greedy token selection (token-length-normalized scoring
# favours a long name whose later tokens are predictable: "get_local_news" won every time).
ACTIONS = {"search": "search", "calculator": "calculator", "news": "get_local_news"}
TOOLS = tuple(ACTIONS.values())
MAX_TOKENS = {"search": 80, "calculator": 40, "news": 48}
MIN_TOOL_ROUNDS = 2
MAX_TOOL_ROUNDS = 3


def brief(result: Any) -> str:
    """A short observation for a small model: the top hit of each query, `expr = value`, or
    the news titles; anything else as compact JSON."""
    if isinstance(result, dict) and "results" in result:
        lines = []
        for r in result["results"]:
            hits = r.get("hits") or []
            top = f"{hits[0]['title']}: {hits[0]['snippet']}" if hits else "no result"
            lines.append(f"{r.get('query')} -> {top}")
        return "\n".join(lines)
    if isinstance(result, dict) and "expression" in result and "result" in result:
        return f"{result['expression']} = {result['result']}"
    if isinstance(result, dict) and "items" in result and "location" in result:
        titles = [f"{i['date']}: {i['title']}" for i in result["items"]] or ["no news"]
        return f"News of {result['location']}:\n" + "\n".join(titles)
    return json.dumps(result, ensure_ascii=False, default=str)


RENDER = Render(formatter=brief, max_chars=600)

INTRO = (
    "You are an assistant that solves a task in steps. Each step, write 'Action: ' and one of "
    "search, calculator, news (the get_local_news tool) or answer. For a tool, write its JSON "
    "arguments on the next line; you will see its result. When you know enough, write "
    "'Action: answer' and the answer in one sentence."
)

# Worked runs: (request, [(action, text of the call or the answer, observation or None)]).
# The observations are what the tools return for these calls, rendered by `brief`.
EXAMPLES = (
    (
        "What is the total population of Oslo and Helsinki?",
        [
            (
                "search",
                '{"queries": ["Oslo population", "Helsinki population"]}',
                "Oslo population -> Oslo: Its population is about 700,000 people.\n"
                "Helsinki population -> Helsinki: Its population is about 660,000 people.",
            ),
            ("calculator", '{"expression": "700000 + 660000"}', "700000 + 660000 = 1360000"),
            ("answer", "Oslo and Helsinki have about 1,360,000 people together.", None),
        ],
    ),
    (
        "What happened in Dallas, TX on April 1, 2024?",
        [
            (
                "news",
                '{"location": "Dallas, TX", "date": "2024-04-01", "days": 1}',
                "News of Dallas, TX:\n2024-04-01: Dallas team wins the regional cup",
            ),
            ("answer", "On April 1, 2024 a Dallas team won the regional cup.", None),
        ],
    ),
)


@sgl.function
def agent(s, question, mode=None, task_id=None):
    s += sgl.system(sgl_conveyor.tool_prompt(list(TOOLS), examples=1, intro=INTRO))
    for request, steps in EXAMPLES:
        s += sgl.user(request)
        for action, text, observation in steps:
            s += sgl.assistant(f"Action: {action}\n{text}")
            if observation is not None:
                s += tool_turn(observation)
    s += sgl.user(question)
    previous = None
    for round_ in range(MAX_TOOL_ROUNDS + 1):
        # Every task needs two tools: the first MIN_TOOL_ROUNDS steps are tools (the first one
        # gathers facts: nothing is known yet to compute with), later ones may answer. A step
        # never offers the tool just used (a 135M model otherwise repeats the same call until
        # the last round); after MAX_TOOL_ROUNDS the only action is "answer".
        if round_ == MAX_TOOL_ROUNDS:
            choices = ["answer"]
        elif round_ == 0:
            choices = ["search", "news"]
        else:
            choices = [a for a in ACTIONS if a != previous]
            choices += ["answer"] if round_ >= MIN_TOOL_ROUNDS else []
        s += sgl.assistant_begin()
        s += "Action: " + sgl.select(
            f"action_{round_}",
            choices=choices,
            temperature=0,
            choices_method=greedy_token_selection,
        )
        action = s[f"action_{round_}"]
        if action == "answer":
            s += "\n" + sgl.gen("answer", max_tokens=40, stop="\n", temperature=0)
            s += sgl.assistant_end()
            break
        s += "\n" + sgl.partial_tool(
            ACTIONS[action],
            name=f"call_{round_}",
            mode=mode,
            render=RENDER,
            max_tokens=MAX_TOKENS[action],
            temperature=0,
        )
        s += sgl.assistant_end()  # the observation is reinjected here, as a tool message
        previous = action


WORKLOAD = Workload(
    name="agent",
    program=agent,
    tasks_path="tasks/agent.jsonl",
    trace_path="traces/agent.jsonl",
    description="a multi-round agent: select the next action (search, calculator, news or "
    "answer), call the tool, observe; up to three tool rounds",
    goals=(CALL_EAGER_WHERE_MEASURED,),
)
