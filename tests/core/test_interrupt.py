"""Early interruption of a streaming script on a runtime error, and its repair (`retries=`):
the bundled `python` tool on the replay backend, the same program in each mode."""

from __future__ import annotations

import time

import pytest
import sglang as sgl

from sgl_conveyor import ScriptError
from sgl_conveyor.backends.replay import ReplayBackend
from sgl_conveyor.tools.registry import default_registry

# The first script fails at line 4; 40 statements follow it. The repair checks that it starts
# from a fresh interpreter: `value` (set by the failed attempt) must not exist any more.
FAILING = (
    "import math\nvalue = 41\nprint('before')\nprint(undefined_name)\n"
    + "".join(f"z{i} = math.sqrt({i})\n" for i in range(40))
    + "print('end')\n```"
)
REPAIR = "print('value' in globals())\nprint('fresh')\n```"
TRACE = [{"id": "t", "input": {"task": "t"}, "outputs": [FAILING, REPAIR, "done"]}]


@sgl.function
def codegen(s, task, mode=None, interrupt=None, task_id=None):
    s += sgl.system("Write Python.")
    s += sgl.user(task)
    s += sgl.assistant(
        "```python\n"
        + sgl.partial_tool(
            "python",
            name="code",
            mode=mode,
            interrupt=interrupt,
            retries=1,
            stop="```",
            max_tokens=600,
            temperature=0,
        )
    )
    s += sgl.assistant(sgl.gen("answer", max_tokens=8))


@pytest.fixture(scope="module")
def backend():
    # A sandbox ready in the pool: the failing statement then runs in milliseconds, long before
    # the 40 statements after it are streamed (about 2 s at 200 tokens/s).
    pool = default_registry().tool("python").pool
    pool.warm()
    deadline = time.monotonic() + 30
    while not pool._ready and time.monotonic() < deadline:
        time.sleep(0.05)
    return ReplayBackend(TRACE, tokens_per_second=200, ttft_s=0.0)


def _run(backend, **kw):
    st = codegen.run(task="t", backend=backend, task_id="t", **kw)
    meta = st.get_meta_info("code")["conveyor"]
    return st, meta["timelines"]


def test_a_runtime_error_stops_decoding_and_the_retry_starts_clean(backend):
    st, (failed, repaired) = _run(backend, mode="partial")
    full = len(backend.tokenizer().encode(FAILING[: FAILING.index("```")]).ids)
    # Decoding stopped at the failing statement, not at the end of the script.
    assert failed.completion_tokens is not None and failed.completion_tokens < full // 2
    assert failed.aborted is not None and "NameError" in failed.abort_reason
    # The traceback was shown to the model, and the retry's turn opens with the same fence.
    text = st.text()
    assert "NameError: name 'undefined_name' is not defined" in text
    assert text.rstrip().count("```python\n") == 2
    assert st["code_result"] == "False\nfresh\n"  # a fresh interpreter: `value` is gone
    assert repaired.aborted is None


def test_sequential_decodes_the_whole_script_then_repairs_it(backend):
    st, (failed, repaired) = _run(backend, mode="sequential")
    full = len(backend.tokenizer().encode(FAILING[: FAILING.index("```")]).ids)
    assert failed.completion_tokens == full and failed.aborted is not None
    assert st["code_result"] == "False\nfresh\n" and repaired.aborted is None


def test_partial_without_interruption_decodes_on_and_fails_at_the_end(backend):
    trace = [{"id": "t", "input": {"task": "t"}, "outputs": [FAILING, FAILING, "done"]}]
    replay = ReplayBackend(trace, tokens_per_second=1e6, ttft_s=0.0)
    st, (first, second) = _run(replay, mode="partial", interrupt=False)
    full = len(replay.tokenizer().encode(FAILING[: FAILING.index("```")]).ids)
    assert first.completion_tokens == full and second.completion_tokens == full
    err = st["code_result"]  # the retry failed too: the error is the result
    assert isinstance(err, ScriptError) and err.line == 4
    assert err.output.startswith("before\nTraceback")
