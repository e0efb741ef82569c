"""search: answer a question with one call that lists several search queries.

Each query goes to the search service (SQLite FTS5 over HTTP, with web-API-like latency) the
moment its closing quote is decoded; the hits are reinjected as a tool message and the model
answers from them.
"""

from __future__ import annotations

import sglang as sgl

import sgl_conveyor
from sgl_conveyor.eval.chat_runs import ChatForm, system_and_request
from sgl_conveyor.eval.goals import CALL_EAGER, OVERLAP_CAPTURED
from sgl_conveyor.eval.workload import Workload
from sgl_conveyor.lang.prompting import worked_example

INTRO = (
    "You are a helpful assistant that calls tools. Answer with the search call only: its JSON "
    "arguments. Write one short query per name in the question: the name, then the fact asked "
    'for (for example "Paris population").'
)


# Two more worked examples after the spec's three: calls of four queries, one per name (or per
# fact), which is the shape of most questions here.
MORE_EXAMPLES = (
    (
        "Who founded Adobe, Oracle, Cisco and IBM?",
        {"queries": ["Adobe founders", "Oracle founders", "Cisco founders", "IBM founders"]},
    ),
    (
        "What are the symbols and atomic masses of lead and tin?",
        {"queries": ["lead symbol", "lead atomic mass", "tin symbol", "tin atomic mass"]},
    ),
)
SYSTEM = "\n".join(
    [sgl_conveyor.tool_prompt(["search"], intro=INTRO)]
    + [worked_example("search", request, call) for request, call in MORE_EXAMPLES]
)


@sgl.function
def research(s, question, mode=None, task_id=None):
    s += sgl.system(SYSTEM)
    s += sgl.user(question)
    s += sgl.assistant(
        sgl.partial_tool("search", name="call", mode=mode, max_tokens=96, temperature=0)
    )
    s += sgl.user("Answer the question in one sentence using the search results.")
    s += sgl.assistant(sgl.gen("answer", max_tokens=48, temperature=0))


DEMO_QUESTION = "What are the atomic masses of carbon, sulfur and neon?"

WORKLOAD = Workload(
    name="search",
    program=research,
    tasks_path="tasks/search.jsonl",
    trace_path="traces/search.jsonl",
    description="one search call with several queries (one per fact), then a one-sentence "
    "answer; each query is sent the moment it is decoded",
    goals=(OVERLAP_CAPTURED, CALL_EAGER),
    # The same conversation through a chat API: the search call chosen by name (the server
    # constrains it to the schema), then the answer.
    chat=ChatForm(
        tool="search",
        messages=system_and_request(SYSTEM, "question"),
        followup="Answer the question in one sentence using the search results.",
        call_options={"max_tokens": 96, "temperature": 0.0},
        answer_options={"max_tokens": 48, "temperature": 0.0},
    ),
)
