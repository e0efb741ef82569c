"""The code sandbox on its own: a real child interpreter, real limits, real kills."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from tool_helpers import live_children, statements

from sgl_conveyor.tools.builtin.bundled import cache_root, data_path
from sgl_conveyor.tools.builtin.sandbox import Sandbox, SandboxLimits, SandboxPool

DATA = str(data_path("codegen"))
FAST = {"statement_timeout_s": 1.5, "interrupt_grace_s": 0.5}


def sandbox(**limits) -> Sandbox:
    return Sandbox(SandboxLimits(**{**FAST, **limits}), DATA, cache_root())


def run_script(sb: Sandbox, code: str):
    return [sb.run(text, line) for text, line in statements(code)]


def test_statements_share_one_interpreter_and_report_their_own_output(no_leaks):
    sb = sandbox()
    try:
        res = run_script(sb, "x = 20\nx += 1\nprint('x is', x)\nprint(x * 2)\n")
        assert [r.status for r in res] == ["ok"] * 4
        assert [r.output for r in res] == ["", "", "x is 21\n", "42\n"]
    finally:
        sb.kill()


def test_an_error_has_the_script_s_line_numbers_and_source(no_leaks):
    sb = sandbox()
    try:
        res = run_script(sb, "a = 1\nb = 0\nprint(a / b)\n")
        assert res[-1].status == "error"
        assert 'File "<script>", line 3, in <module>' in res[-1].error
        assert "print(a / b)" in res[-1].error
        assert res[-1].error.rstrip().endswith("ZeroDivisionError: division by zero")
        assert "sandbox_child" not in res[-1].error  # the REPL's own frames are hidden
    finally:
        sb.kill()


def test_a_runaway_loop_is_stopped_at_its_wall_clock_limit_with_its_location(no_leaks):
    sb = sandbox()
    t0 = time.monotonic()
    r = sb.run("n = 0\nwhile True:\n    n += 1", line=4)
    assert time.monotonic() - t0 < 1.5 + 0.5 + 3.0
    assert r.status in ("timeout", "cpu")
    assert "line 4" in r.error or "line 5" in r.error
    assert not sb.alive
    sb.kill()


def test_a_cpu_bound_statement_is_stopped_by_its_cpu_time_limit():
    sb = sandbox(statement_timeout_s=20, statement_cpu_s=1)
    try:
        t0 = time.monotonic()
        r = sb.run("while True:\n    pass", line=1)
        assert time.monotonic() - t0 < 6
        assert r.status == "cpu"
        assert "CpuTimeExceeded" in r.error and "1 s of CPU time" in r.error
    finally:
        sb.kill()


def test_allocating_20_gib_fails_with_a_memory_error_and_the_interpreter_survives(no_leaks):
    sb = sandbox(memory_mb=1024)
    try:
        r = sb.run("big = bytearray(20 * 2**30)", line=1)
        assert r.status == "memory"
        assert "MemoryError" in r.error and "1024 MB" in r.error
        assert sb.run("print('still here')", line=2).output == "still here\n"
    finally:
        sb.kill()


def test_os_exit_ends_the_session_with_a_clear_error(no_leaks):
    sb = sandbox()
    r = sb.run("import os\nos._exit(3)", line=1)
    assert r.status == "crashed"
    assert "exit status 3" in r.error and "state was lost" in r.error
    assert not sb.alive
    after = sb.run("print(1)", line=3)
    assert after.status == "crashed" and "before the statement" in after.error
    sb.kill()


def test_a_fork_bomb_is_contained_and_every_process_it_made_is_killed(no_leaks):
    sb = sandbox(max_processes=16)
    before = {p.pid for p in live_children()}
    t0 = time.monotonic()
    r = sb.run("import os\nwhile True:\n    os.fork()", line=1)
    assert time.monotonic() - t0 < 1.5 + 0.5 + 5.0
    assert r.status != "ok"
    sb.kill()
    assert not [p for p in live_children() if p.pid not in before]


def test_output_is_capped_and_a_flood_is_stopped(no_leaks):
    sb = sandbox(max_output_bytes=1000, output_kill_bytes=200_000)
    try:
        r = sb.run("print('y' * 5000)", line=1)
        assert r.status == "ok" and len(r.output) == 1000 and r.dropped_bytes == 4001
        flood = sb.run("while True:\n    print('z' * 1000)", line=2)
        assert flood.status == "output_limit" and "OutputLimitError" in flood.error
    finally:
        sb.kill()


def test_the_network_is_unreachable_even_on_loopback(no_leaks):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    sb = sandbox()
    try:
        assert socket.create_connection(("127.0.0.1", port), timeout=2)  # reachable from here
        r = sb.run(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)", line=1
        )
        assert r.status == "error"
        assert "Network is unreachable" in r.error or "network access is disabled" in r.error
        assert sb.enforced["network"] != "open"
    finally:
        sb.kill()
        server.close()


def test_the_file_system_is_read_only_outside_the_working_directory(tmp_path, no_leaks):
    sb = sandbox()
    try:
        if not sb.enforced.get("filesystem", "").startswith("read-only"):
            pytest.skip(f"file system not confined here: {sb.enforced}")
        target = tmp_path / "escaped.txt"
        r = sb.run(f"open({str(target)!r}, 'w').write('x')", line=1)
        assert r.status == "error" and "Read-only file system" in r.error
        assert not target.exists()
        ok = sb.run("open('mine.txt', 'w').write('fine')\nprint(open('mine.txt').read())", 2)
        assert ok.output == "fine\n"
    finally:
        sb.kill()
    assert not sb.workdir.exists()


def test_data_dir_is_predefined_and_readable(no_leaks):
    sb = sandbox()
    try:
        r = sb.run(
            "import csv, os\n"
            "rows = list(csv.DictReader(open(os.path.join(DATA_DIR, 'sales.csv'))))\n"
            "print(len(rows), DATA_DIR == os.environ['DATA_DIR'])",
            line=1,
        )
        assert r.output == "480 True\n", r.error
    finally:
        sb.kill()


def test_kill_from_another_thread_ends_a_running_statement_at_once(no_leaks):
    sb = sandbox(statement_timeout_s=60)
    result = {}

    def run():
        result["r"] = sb.run("import time\ntime.sleep(60)", line=1)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    sb.kill("cancelled")
    t.join(timeout=10)
    assert not t.is_alive() and time.monotonic() - t0 < 5
    assert result["r"].status == "cancelled"


def test_a_cancelled_event_stops_the_statement(no_leaks):
    sb = sandbox(statement_timeout_s=60)
    cancelled = threading.Event()
    threading.Timer(0.3, cancelled.set).start()
    t0 = time.monotonic()
    r = sb.run("import time\ntime.sleep(60)", line=1, cancelled=cancelled)
    assert r.status == "cancelled" and time.monotonic() - t0 < 5
    assert not sb.alive
    sb.kill()


def test_the_pool_hands_out_a_prespawned_interpreter_and_replaces_it(no_leaks):
    pool = SandboxPool(SandboxLimits(**FAST), DATA, cache_root(), size=1)
    try:
        pool.warm()
        first = pool.acquire().result(timeout=20)
        assert first.alive
        second_future = pool.acquire()  # the replacement spawned in the background
        second = second_future.result(timeout=20)
        assert second.alive and second.pid != first.pid
        first.kill()
        second.kill()
    finally:
        pool.close()


def test_limits_with_a_typo_are_refused():
    with pytest.raises(ValueError, match="statment_timeout_s"):
        SandboxLimits.from_mapping({"statment_timeout_s": 3})


def test_enforcement_is_reported(no_leaks):
    sb = sandbox()
    try:
        e = sb.enforced
        assert {"network", "filesystem", "processes", "rlimits"} <= set(e)
        assert e["rlimits"]["RLIMIT_AS"] == SandboxLimits().memory_mb * 2**20
        if os.geteuid() == 0 and Path("/proc/self/ns/net").exists():
            assert e["pid_namespace"] is True
    finally:
        sb.kill()
