"""validation: a local-news call whose arguments are checked the moment each one is complete.

`get_local_news(location, date, days)` checks the location against the news service's
gazetteer as soon as its closing quote is decoded: a misspelled, ambiguous or unknown place (or
a date outside the feed) is rejected at once, decoding of the doomed call stops, and the model
is shown the rejection ("did you mean ...") to write the call again (`retries=1`). A valid
location's feed is fetched while the date and day count are still being decoded. The program
ends with a short answer: the measurable effect is the early abort.
"""

from __future__ import annotations

import sglang as sgl

import sgl_conveyor
from sgl_conveyor.eval.chat_runs import ChatForm, system_and_request
from sgl_conveyor.eval.goals import CALL_EAGER_WHERE_MEASURED, EARLY_ABORT
from sgl_conveyor.eval.workload import Workload
from sgl_conveyor.lang.prompting import example_turns, tool_turn

# The demo's request: a user's typo that the model copies into the call. The gazetteer rejects
# the place as soon as its closing quote is decoded and suggests the right one.
DEMO_REQUEST = "Show me the local news of Milwaukie on March 5, 2024."

# A worked correction, shown after the spec's examples: a rejected place, the news service's
# "did you mean" message (its exact text), and the call written again with the suggestion.
CORRECTION = (
    "Show me the news of Cleaveland on March 5, 2024.",
    '{"location": "Cleaveland, OH",',
    tool_turn(
        "Error: unknown location 'Cleaveland, OH': write 'City, ST' for US cities (e.g. "
        "'Portland, OR') or 'City, Country' elsewhere. Did you mean: Cleveland, OH?"
    ),
    '{"location": "Cleveland, OH", "date": "2024-03-05", "days": 1}',
)


@sgl.function
def local_news(s, request, mode=None, task_id=None):
    s += sgl.system(sgl_conveyor.tool_prompt(["get_local_news"], examples=0))
    for example, call in example_turns("get_local_news"):
        s += sgl.user(example)
        s += sgl.assistant(call)
    request_x, rejected, error, corrected = CORRECTION
    s += sgl.user(request_x)
    s += sgl.assistant(rejected)
    s += error
    s += sgl.assistant(corrected)
    s += sgl.user(request)
    s += sgl.assistant(
        sgl.partial_tool(
            "get_local_news", name="news", mode=mode, retries=1, max_tokens=64, temperature=0
        )
    )
    s += sgl.user("Summarize the news in one sentence.")
    s += sgl.assistant(sgl.gen("answer", max_tokens=32, stop="\n", temperature=0))


WORKLOAD = Workload(
    name="validation",
    program=local_news,
    tasks_path="tasks/validation.jsonl",
    trace_path="traces/validation.jsonl",
    description="get_local_news with arguments checked as they complete; an invalid place or "
    "date is rejected early and the call is written again once",
    goals=(CALL_EAGER_WHERE_MEASURED, EARLY_ABORT),
    # Through a chat API: a rejected place closes the stream; the model reads the tool
    # message's "did you mean" and calls again once, then summarizes.
    chat=ChatForm(
        tool="get_local_news",
        messages=system_and_request(sgl_conveyor.tool_prompt(["get_local_news"]), "request"),
        followup="Summarize the news in one sentence.",
        retries=1,
        call_options={"max_tokens": 64, "temperature": 0.0},
        answer_options={"max_tokens": 32, "stop": ["\n"], "temperature": 0.0},
    ),
)
