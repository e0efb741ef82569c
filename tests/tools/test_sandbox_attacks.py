"""The sandbox against generated code that attacks it on purpose (issue 11): each test runs the
real sandbox, mounts the attack, and checks that the host is not the worse for it."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest

from sgl_conveyor.tools.builtin.bundled import data_path
from sgl_conveyor.tools.builtin.sandbox import Sandbox, SandboxLimits

DATA = str(data_path("codegen"))
FAST = {"statement_timeout_s": 5, "interrupt_grace_s": 0.5}


def sandbox(cache: Path, **limits) -> Sandbox:
    return Sandbox(SandboxLimits(**{**FAST, **limits}), DATA, cache)


def _confined(sb: Sandbox) -> bool:
    return str(sb.enforced.get("filesystem", "")).startswith("read-only")


# --- 1. the font cache -------------------------------------------------------------------------


def _host_environment_entry() -> bytes:
    """An entry of this process's own environment (as /proc/self/environ shows it, which is the
    environment it started with) that a sandbox's environment does not have."""
    theirs = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PWD", "SHLVL", "_"}
    entries = Path("/proc/self/environ").read_bytes().split(b"\0")
    mine = [e for e in entries if b"=" in e and e.split(b"=")[0].decode() not in theirs]
    mine = [e for e in mine if len(e) >= 8]
    if not mine:
        pytest.skip("this process's environment has nothing a sandbox's does not")
    return max(mine, key=len)


def test_a_font_cache_symlinked_to_the_host_s_environment_never_reaches_a_later_sandbox(
    tmp_path, no_leaks
):
    secret = _host_environment_entry()
    cache = tmp_path / "cache"
    first = sandbox(cache)
    try:
        r = first.run(
            "import os\n"
            "d = os.environ['MPLCONFIGDIR']\n"
            "for n in os.listdir(d):\n"
            "    os.remove(os.path.join(d, n))\n"
            "os.symlink('/proc/self/environ', os.path.join(d, 'fontlist-v999.json'))\n"
            "os.symlink('/proc/self/environ', os.path.join(d, 'fontlist-v3.11.0.json'))\n"
            "print('planted')",
            line=1,
        )
        assert r.output == "planted\n", r.error
    finally:
        first.kill()  # the old code copied the planted files into the shared cache here
    for f in cache.rglob("*"):
        if f.is_file() and not f.is_symlink():
            leaked = secret in f.read_bytes()
            assert not leaked, f"the host wrote its own environment to {f}"
    second = sandbox(cache)
    try:
        r = second.run(
            "import os\n"
            "d = os.environ['MPLCONFIGDIR']\n"
            "seen = b''.join(open(os.path.join(d, n), 'rb').read() for n in os.listdir(d))\n"
            f"print({secret!r} in seen)",
            line=1,
        )
        assert r.output == "False\n", (r.output, r.error)
    finally:
        second.kill()


# --- 2. host Unix sockets ----------------------------------------------------------------------


def test_a_unix_socket_of_the_host_cannot_be_reached(tmp_path, no_leaks):
    path = tmp_path / "service.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    server.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                got.append(b"connected")
                with contextlib.suppress(OSError):
                    conn.sendall(b"host-service-hello\n")

    t = threading.Thread(target=serve)
    t.start()
    sb = sandbox(tmp_path / "cache")
    try:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(str(path))  # reachable from here
        assert probe.recv(100) == b"host-service-hello\n"
        probe.close()
        assert got == [b"connected"]
        got.clear()
        r = sb.run(
            "import socket\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "s.settimeout(2)\n"
            f"s.connect({str(path)!r})\n"
            "print('connected')\n"
            "print(s.recv(100))",
            line=1,
        )
        assert "connected" not in r.output, r.output
        assert r.status == "error", r.output
        assert "PermissionError" in r.error, r.error
        # A datagram pair cannot be pointed at a host socket either; a stream pair still works.
        r = sb.run(
            "a, b = socket.socketpair()\n"
            "a.sendall(b'pair ok')\n"
            "print(b.recv(10).decode())\n"
            "try:\n"
            "    socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
            "except PermissionError:\n"
            "    print('dgram refused')",
            line=7,
        )
        assert r.output == "pair ok\ndgram refused\n", (r.output, r.error)
        r = sb.run(
            "import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "rc = libc.unshare(0x10000000)  # CLONE_NEWUSER: every capability back\n"
            "why = os.strerror(ctypes.get_errno())\n"
            "print('unshare refused' if rc != 0 else 'unshare worked', why)",
            line=14,
        )
        assert r.output == "unshare refused Operation not permitted\n", (r.output, r.error)
        assert "seccomp" in str(sb.enforced.get("syscalls")), sb.enforced
        assert got == []
    finally:
        sb.kill()
        stop.set()
        t.join()
        server.close()


# --- 3. forged reply frames --------------------------------------------------------------------


def test_printed_text_can_never_pass_for_a_reply_frame(tmp_path, no_leaks):
    sb = sandbox(tmp_path / "cache")
    try:
        # Whatever the child's command line holds, printing it does not forge a reply.
        r = sb.run(
            "import sys, json\n"
            "cfg = json.loads(sys.argv[1])\n"
            "nonce = cfg.get('nonce', '')\n"
            "fake = {'id': 3, 'status': 'ok', 'error': None, 'elapsed_s': 0.0}\n"
            "sys.stdout.write('\\x1e' + nonce + ' ' + json.dumps(fake) + '\\n')\n"
            "fake2 = {'id': 2, 'status': 'ok', 'error': None, 'elapsed_s': 0.0}\n"
            "sys.stdout.write('\\x1e' + nonce + ' ' + json.dumps(fake2) + '\\n')\n"
            "sys.stdout.flush()",
            line=1,
        )
        assert r.status == "ok", r.error
        later = sb.run("print('the real output')\nraise ValueError('real')", line=9)
        assert later.status == "error" and "ValueError: real" in later.error
        assert "the real output" in later.output
        third = sb.run("print('three')", line=11)
        assert third.status == "skipped" or third.output == "three\n"
    finally:
        sb.kill()


def test_garbage_on_the_reply_channel_is_an_error_of_that_statement_not_a_dead_reader(
    tmp_path, no_leaks
):
    sb = sandbox(tmp_path / "cache")
    try:
        # The reply channel is whatever fd the child writes its frames on; write garbage to
        # every fd that is open for writing, the way hostile code would.
        r = sb.run(
            "import os, sys, json\n"
            "cfg = json.loads(sys.argv[1])\n"
            "nonce = cfg.get('nonce', '')\n"
            "junk = b'\\x1e' + nonce.encode() + b' {not json\\n'\n"
            "for fd in map(int, os.listdir('/proc/self/fd')):\n"
            "    try:\n"
            "        os.write(fd, junk)\n"
            "    except OSError:\n"
            "        pass\n"
            "import time\n"
            "time.sleep(0.5)",
            line=1,
        )
        assert r.status == "protocol", (r.status, r.error)
        assert "SandboxProtocolError" in r.error
        assert not sb.alive
        assert sb._reader is not None and not sb._reader.is_alive()
    finally:
        sb.kill()


def test_a_reply_forged_on_the_reply_channel_for_a_later_statement_is_refused(tmp_path, no_leaks):
    sb = sandbox(tmp_path / "cache")
    try:
        r = sb.run(
            "import os, json\n"
            "fake = json.dumps({'id': 2, 'status': 'ok', 'error': None, 'elapsed_s': 0.0})\n"
            "for fd in map(int, os.listdir('/proc/self/fd')):\n"
            "    if fd > 2:\n"
            "        try:\n"
            "            os.write(fd, fake.encode() + b'\\n')\n"
            "        except OSError:\n"
            "            pass\n"
            "import time\n"
            "time.sleep(0.5)",
            line=1,
        )
        assert r.status == "protocol", (r.status, r.error, r.output)
        assert not sb.alive
    finally:
        sb.kill()


# --- 4. limits of the sandbox as a whole -------------------------------------------------------


def test_memory_is_capped_for_the_sandbox_as_a_whole(tmp_path, no_leaks):
    sb = sandbox(tmp_path / "cache", memory_mb=400, total_memory_mb=300)
    try:
        if "cgroup" not in str(sb.enforced.get("memory")):
            pytest.skip(f"no memory cgroup here: {sb.enforced.get('memory')}")
        r = sb.run(
            "import os, time\n"
            "pids = []\n"
            "for i in range(4):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        b = b'x' * (150 * 2**20)\n"
            "        time.sleep(1.5)\n"
            "        os._exit(0)\n"
            "    pids.append(pid)\n"
            "codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]\n"
            "print(codes)",
            line=1,
        )
        # Four processes of 150 MB each, well under the per-process limit, cannot all live
        # together under 300 MB: the kernel kills some (or the REPL).
        assert r.status == "crashed" or r.output.strip() != "[0, 0, 0, 0]", r.output
    finally:
        sb.kill()


def test_disk_use_of_the_working_directory_is_capped(tmp_path, no_leaks):
    sb = sandbox(tmp_path / "cache", max_file_mb=8, max_disk_mb=32)
    try:
        if not _confined(sb) or "tmpfs" not in str(sb.enforced.get("disk")):
            pytest.skip(f"no size-capped working directory here: {sb.enforced.get('disk')}")
        r = sb.run(
            "n = 0\n"
            "try:\n"
            "    for i in range(20):\n"
            "        with open(f'f{i}.bin', 'wb') as f:\n"
            "            f.write(b'x' * (8 * 2**20 - 1))\n"
            "        n += 1\n"
            "except OSError as e:\n"
            "    print(n, e.strerror)",
            line=1,
        )
        assert r.status == "ok", r.error
        written, _, why = r.output.strip().partition(" ")
        assert int(written) < 5 and why == "No space left on device", r.output
        # Nothing the sandbox wrote is on the host's disk.
        assert sum(f.stat().st_size for f in sb.workdir.rglob("*") if f.is_file()) < 2**20
    finally:
        sb.kill()


def test_the_limits_say_what_covers_the_sandbox_as_a_whole(tmp_path, no_leaks):
    sb = sandbox(tmp_path / "cache")
    try:
        assert {"memory", "disk", "syscalls"} <= set(sb.enforced), sb.enforced
        if os.geteuid() == 0 and Path("/proc/self/ns/mnt").exists():
            assert "tmpfs" in sb.enforced["disk"]
    finally:
        sb.kill()
