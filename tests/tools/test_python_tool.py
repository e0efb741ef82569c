"""The `python` tool driven as the runtime drives it: start, a check and a run per statement
(units from the real Python statement splitter), finish, abort, undo, close."""

from __future__ import annotations

import dataclasses
import threading
import time

import psutil
import pytest
from tool_helpers import make_ctx, make_tool, spec_with, text_units, wait_until

from sgl_conveyor.errors import ArgumentRejectedError, CallCancelledError, ScriptError
from sgl_conveyor.tools.registry import ToolRegistry

SCRIPT = """\
import statistics

values = [3, 1, 4, 1, 5, 9, 2, 6]
# a comment between statements
def spread(xs):
    return max(xs) - min(xs)

print("mean", statistics.mean(values))
print("spread", spread(values))
print(values[100])
print("never printed")
"""


@pytest.fixture
def tool():
    t = make_tool("python", statement_timeout_s=5, interrupt_grace_s=0.5)
    yield t
    t.close()


def run_partial(tool, code: str):
    """Every statement as a unit, without early interruption; the script's output (a failed
    script is a ScriptError: its output and traceback)."""
    ctx = make_ctx(tool)
    ctx.interrupt = False
    tool.start(ctx)
    results = []
    for unit in text_units(tool.spec, code):
        tool.check_unit(unit, ctx)
        results.append(tool.run_unit(unit, ctx))
    return _output(lambda: tool.finish({"code": code}, [], ctx)), results


def run_sequential(tool, code: str):
    ctx = make_ctx(tool, mode="sequential")
    tool.start(ctx)
    return _output(lambda: tool.finish({"code": code}, [], ctx))


def _output(finish) -> str:
    try:
        return finish()
    except ScriptError as e:
        assert e.output in e.message
        return e.output


def test_statements_run_one_by_one_and_the_result_is_what_the_script_prints(tool, no_leaks):
    out, results = run_partial(tool, SCRIPT)
    assert [r["status"] for r in results] == ["ok"] * 5 + ["error", "skipped"]
    assert out.startswith("mean 3.875\nspread 8\nTraceback (most recent call last):\n")
    assert 'File "<script>", line 10, in <module>' in out
    assert out.endswith("IndexError: list index out of range\n")
    assert "never printed" not in out
    tool.close()


def test_partial_and_sequential_execution_give_the_same_result(tool, no_leaks):
    partial, _ = run_partial(tool, SCRIPT)
    assert run_sequential(tool, SCRIPT) == partial
    tool.close()


def test_a_syntax_error_is_rejected_by_the_check_before_anything_runs(tool):
    ctx = make_ctx(tool)
    tool.start(ctx)
    units = text_units(tool.spec, "x = 1\nprint(x +)\n")
    tool.check_unit(units[0], ctx)
    with pytest.raises(ArgumentRejectedError, match="SyntaxError at line 2"):
        tool.check_unit(units[1], ctx)
    tool.abort(ctx, None)


def test_the_next_call_gets_a_warm_interpreter_with_no_state_of_the_last(tool, no_leaks):
    run_partial(tool, "secret = 42\nprint(secret)\n")
    assert wait_until(lambda: len(tool.pool._ready) == 1, timeout=20)  # the refill
    ctx = make_ctx(tool)
    tool.start(ctx)
    assert ctx.state["python"].future.done()  # no interpreter start-up on the critical path
    unit = text_units(tool.spec, "print('secret' in globals())\n")[0]
    assert tool.run_unit(unit, ctx)["output"] == "False\n"
    tool.finish({"code": unit.value}, [], ctx)
    tool.close()


def test_a_crash_ends_the_call_with_a_clear_error_and_the_next_call_works(tool, no_leaks):
    out, results = run_partial(tool, "import os\nprint('before', flush=True)\nos._exit(3)\n")
    assert results[-1]["status"] == "crashed"
    assert out.startswith("before\n") and "exit status 3" in out
    again, _ = run_partial(tool, "print('fresh')\n")
    assert again == "fresh\n"
    tool.close()


def test_abort_kills_the_call_s_interpreter_mid_statement(tool, no_leaks):
    ctx = make_ctx(tool)
    tool.start(ctx)
    (unit,) = text_units(tool.spec, "import time; time.sleep(30)\n")
    sandbox = ctx.state["python"].future.result(timeout=20)
    errors = []

    def run():
        try:
            tool.run_unit(unit, ctx)
        except CallCancelledError as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    ctx.cancelled.set()
    tool.abort(ctx, None)
    t.join(timeout=10)
    assert not t.is_alive() and time.monotonic() - t0 < 5
    assert errors
    assert not psutil.pid_exists(sandbox.pid) or psutil.Process(sandbox.pid).status() == "zombie"
    tool.close()


def test_undo_discards_the_interpreter(tool, no_leaks):
    ctx = make_ctx(tool)
    tool.start(ctx)
    unit = text_units(tool.spec, "x = 1\n")[0]
    result = tool.run_unit(unit, ctx)
    sandbox = ctx.state["python"].future.result()
    tool.undo_unit(unit, result, ctx)
    assert wait_until(lambda: not sandbox.alive)
    tool.abort(ctx, None)
    tool.close()


def test_a_plot_with_matplotlib_runs_and_saves_a_file(tool, no_leaks):
    code = (
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "import os\n"
        "x = np.linspace(0, 2 * np.pi, 100)\n"
        "plt.plot(x, np.sin(x))\n"
        "plt.savefig('sine.png')\n"
        "print(os.path.getsize('sine.png') > 1000)\n"
    )
    out, _ = run_partial(tool, code)
    assert out == "True\n", out
    tool.close()


def test_close_leaves_no_process_or_thread(no_leaks):
    tool = make_tool("python")
    tool.warm()
    assert wait_until(lambda: len(tool.pool._ready) == 1, timeout=20)
    tool.close()


def test_with_interruption_the_failing_statement_fails_the_call_at_once(tool, no_leaks):
    ctx = make_ctx(tool)  # partial, and the bundled spec asks for interruption
    assert tool.spec.interrupt_on_error and ctx.interrupts
    tool.start(ctx)
    units = text_units(tool.spec, SCRIPT)
    ran = []
    with pytest.raises(ScriptError) as info:
        for unit in units:
            tool.check_unit(unit, ctx)
            ran.append(tool.run_unit(unit, ctx))
    assert [r["status"] for r in ran] == ["ok"] * 5  # the sixth raised: nothing after it ran
    err = info.value
    assert err.line == 10 and err.output.startswith("mean 3.875\nspread 8\nTraceback")
    assert err.output.endswith("IndexError: list index out of range\n")
    tool.abort(ctx, err)  # what the runtime does next: the interpreter is discarded
    tool.close()


def test_without_the_spec_flag_a_failed_script_is_a_result_as_before(no_leaks):
    reg = ToolRegistry()
    reg.add(
        dataclasses.replace(spec_with("python", statement_timeout_s=5), interrupt_on_error=False)
    )
    t = reg.tool("python")
    try:
        ctx = make_ctx(t)
        assert not ctx.interrupts
        t.start(ctx)
        out = t.finish({"code": "print('a')\n1 / 0\n"}, [], ctx)
        assert out.startswith("a\nTraceback") and "ZeroDivisionError" in out
    finally:
        t.close()


def test_pandas_and_the_bundled_files_are_there(tool, no_leaks):
    code = (
        "import pandas as pd\n"
        "df = pd.read_csv('sales.csv')\n"
        "same = pd.read_csv(DATA_DIR + '/sales.csv')\n"
        "print(len(df) == len(same) > 0, sorted(df['region'].unique())[0])\n"
    )
    out, _ = run_partial(tool, code)
    assert out == "True East\n", out
    tool.close()
