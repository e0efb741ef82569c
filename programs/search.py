"""search: answer a question with one call that lists several search queries.

Each query goes to the search service (SQLite FTS5 over HTTP, with web-API-like latency) the
moment its closing quote is decoded; the hits are reinjected as a tool message and the model
answers from them.
"""

from __future__ import annotations

import sglang as sgl

import sgl_conveyor


@sgl.function
def research(s, question, mode=None, task_id=None):
    s += sgl.system(sgl_conveyor.tool_prompt(["search"]))
    s += sgl.user(question)
    s += sgl.assistant(
        sgl.partial_tool("search", name="call", mode=mode, max_tokens=96, temperature=0)
    )
    s += sgl.user("Answer the question in one sentence using the search results.")
    s += sgl.assistant(sgl.gen("answer", max_tokens=48, temperature=0))


DEMO_QUESTION = "Compare the populations of Paris, Berlin and Rome."
