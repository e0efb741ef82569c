"""The code sandbox: a persistent Python interpreter in a confined child process, and its pool.

`Sandbox` runs top-level statements one at a time in one interpreter state, each under a
wall-clock and a CPU-time limit, with capped output; `SandboxPool` keeps an interpreter spawned
ahead so a call never waits for start-up. User code never runs in this process, and `kill()`
leaves nothing behind: not the interpreter, not a process it started, not its working directory.

What is enforced, and how (each layer reports itself in `Sandbox.enforced`):
- wall clock: per statement and per call, measured here; on expiry the statement gets SIGINT
  (its traceback shows where it was), then the whole sandbox is killed after a short grace.
- CPU time: RLIMIT_CPU; a per-statement soft limit raises an exception in the statement
  (SIGXCPU), the per-call hard limit kills the process.
- memory: RLIMIT_AS (address space) per process, so a large allocation fails with MemoryError;
  and a memory cgroup (v1 or v2, where this process may create one) caps the sandbox as a whole
  at `total_memory_mb` (its processes and its tmpfs together): past it the kernel kills one of
  its processes. Without a memory cgroup, `enforced["memory"]` says that memory adds up across
  the max_processes processes a statement may start.
- processes: a pids cgroup (v1 or v2, where this process may create one) caps the number of
  processes; without one, RLIMIT_NPROC for non-root users, or for root (whom RLIMIT_NPROC does
  not bind) an audit hook that counts forks and spawns (ctypes can get past it). The REPL is PID 1
  of its own PID namespace, so when it dies the kernel kills every process it left; without the
  namespace we kill its process group and the cgroup's processes.
- network: a network namespace with no interface but a down loopback (root only); otherwise an
  audit hook refuses socket connect/bind/send (again, ctypes can get past it).
- system calls: a seccomp filter (x86-64 and aarch64, root or not) allows socket() only for
  AF_INET/AF_INET6 (so no host Unix socket, which a network namespace does not hide, no vsock,
  netlink or AF_ALG) and socketpair() only as a connected AF_UNIX stream pair; it refuses new
  namespaces, mounts, ptrace, bpf, keyrings, io_uring, kernel modules and open_by_handle_at.
- file system: a mount namespace in which every mount is remounted read-only except the
  session's working directory, which is a tmpfs of `max_disk_mb` (root only; the host never sees
  what is written there); RLIMIT_FSIZE caps file sizes everywhere. Without the namespace, total
  disk use is not capped and `enforced["disk"]` says so.
- trust: nothing the sandbox writes is read by this process as trusted data. The matplotlib font
  cache shared by sandboxes is built by a process of our own (`_shared_font_cache`), copied in,
  and never copied back. Replies come on a pipe of their own, apart from the output, and are
  checked as untrusted input: one that is malformed or not for the running statement (the user's
  code can write to that pipe: it runs in the REPL's process) fails that statement with status
  "protocol" and stops the sandbox; the reader thread never dies of it.
- privileges: as root, the REPL drops every capability except reading and writing files it does
  not own (mount permissions still apply), and sets no_new_privs.
- output: the kept output is capped per call; a statement that writes far more is stopped.
- lifetime: a sandbox serves one call. If this process dies, the supervisor notices within
  0.2 s and kills the REPL; working directories left by a process that died are removed by the
  next one, and live sandboxes are killed at interpreter exit.

Not enforced: reading what the file system lets root read (every mount is visible, read-only;
CAP_DAC_READ_SEARCH is kept); the results of a statement are what its own process reports, so
code can lie about its own statements (never about the host's limits). Without root, only the
rlimits, the seccomp filter, the cgroups this user may create, the audit hooks and the
process-group kill apply, and `enforced` says so.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from sgl_conveyor.errors import SandboxError

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")

# Statuses of a statement. Every status but "ok" ends the script: later statements are skipped,
# exactly as `python script.py` stops at the first uncaught exception.
OK = "ok"
STATUS_TEXT = {
    "error": "the statement raised an exception",
    "exit": "the script called sys.exit()",
    "timeout": "the statement ran past its wall-clock limit",
    "cpu": "the statement ran past its CPU-time limit",
    "memory": "the statement ran out of memory",
    "crashed": "the interpreter process died",
    "output_limit": "the statement wrote too much output",
    "cancelled": "the call was cancelled",
    "protocol": "the sandbox broke its reply protocol (a forged or malformed reply)",
    "skipped": "an earlier statement ended the script",
}


_LIVE: weakref.WeakSet[Sandbox] = weakref.WeakSet()
WORKDIR_PREFIX = "sgl-conveyor-sandbox-"
_swept = False
_sweep_lock = threading.Lock()


def _sweep_stale_workdirs() -> None:
    """Once per process: remove working directories left by processes that died uncleanly."""
    global _swept
    with _sweep_lock:
        if _swept:
            return
        _swept = True
    with contextlib.suppress(OSError):
        for d in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
            owner = d.name[len(WORKDIR_PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                shutil.rmtree(d, ignore_errors=True)


@atexit.register
def _kill_all() -> None:
    """At interpreter exit, end every sandbox still alive (and remove its working directory)."""
    for sb in list(_LIVE):
        with contextlib.suppress(Exception):
            sb.kill("exit")


@dataclass(frozen=True)
class SandboxLimits:
    """The limits of one sandbox session (one tool call). Set from a spec's `limits`."""

    statement_timeout_s: float = 15.0
    call_timeout_s: float = 60.0
    statement_cpu_s: float = 10.0
    call_cpu_s: float = 40.0
    memory_mb: int = 2048
    total_memory_mb: int = 4096
    max_processes: int = 32
    max_output_bytes: int = 32768
    output_kill_bytes: int = 8 * 2**20
    max_file_mb: int = 64
    max_disk_mb: int = 256
    max_open_files: int = 256
    isolate_network: bool = True
    readonly_filesystem: bool = True
    pid_namespace: bool = True
    use_cgroup: bool = True
    seccomp: bool = True
    interrupt_grace_s: float = 1.0
    spawn_timeout_s: float = 20.0
    threads: int = 1
    preload: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, limits: Mapping[str, Any]) -> SandboxLimits:
        """Build from a mapping; unknown keys are an error (a typo must not disable a limit)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(limits) - set(known))
        if unknown:
            raise ValueError(
                f"unknown sandbox limit(s): {', '.join(unknown)} (known: {', '.join(known)})"
            )
        values = dict(limits)
        if "preload" in values:
            values["preload"] = tuple(values["preload"])
        return cls(**values)

    def __post_init__(self) -> None:
        # A limit that is not a positive, finite number of its kind would silently disable
        # itself (memory_mb -1 meant no memory limit at all).
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(v, bool):
                    raise ValueError(f"sandbox limit {f.name} must be true or false, not {v!r}")
            elif f.type in ("int", int):
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise ValueError(
                        f"sandbox limit {f.name} must be a positive integer, not {v!r}"
                    )
            elif f.type in ("float", float):
                ok = isinstance(v, (int, float)) and not isinstance(v, bool)
                if not ok or not math.isfinite(v) or v <= 0:
                    raise ValueError(f"sandbox limit {f.name} must be a positive number: {v!r}")


@dataclass
class StatementResult:
    """What one statement did: its output (stdout and stderr interleaved) and how it ended."""

    line: int
    status: str
    output: str = ""
    error: str | None = None
    elapsed_s: float = 0.0
    dropped_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- cgroups -----------------------------------------------------------------------------------


class _Cgroup:
    """A cgroup of our own for one controller ("pids" or "memory"; v1 or v2), where this
    process is allowed to create one. On v2 both controllers live in one directory."""

    _counter = 0
    _lock = threading.Lock()
    _bases: ClassVar[dict[str, Path | None]] = {}  # controller -> base; absent: not probed yet

    def __init__(self, path: Path, controller: str = "pids"):
        self.path = path
        self.controller = controller

    @classmethod
    def _find_base(cls, controller: str) -> Path | None:
        try:
            mounts = Path("/proc/self/mountinfo").read_text().splitlines()
            groups = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return None
        v1_point = v2_point = None
        for line in mounts:
            left, _, right = line.partition(" - ")
            fstype, _, super_opts = ([*right.split(), "", "", ""])[:3]
            point = left.split()[4]
            if fstype == "cgroup" and controller in super_opts.split(","):
                v1_point = point
            elif fstype == "cgroup2" and v2_point is None:
                v2_point = point
        for line in groups:
            hid, controllers, rel = line.split(":", 2)
            if v1_point and controller in controllers.split(","):
                return Path(v1_point + rel.rstrip("/"))
            if hid == "0" and v2_point and not v1_point:
                base = Path(v2_point + rel.rstrip("/"))
                with contextlib.suppress(OSError):
                    if controller in (base / "cgroup.subtree_control").read_text().split():
                        return base
        return None

    @classmethod
    def create(cls, controller: str, settings: dict[str, str]) -> _Cgroup | None:
        """Make one and write `settings` (file name -> value) into it; None where either
        fails. A setting whose file does not exist here (memsw without swap accounting) is
        skipped unless it is the first."""
        with cls._lock:
            if controller not in cls._bases:
                base = cls._bases[controller] = cls._find_base(controller)
                if base is not None:
                    cls._remove_stale(base, controller)
            base = cls._bases[controller]
            cls._counter += 1
            n = cls._counter
        if base is None:
            return None
        path = base / f"sgl-conveyor-{os.getpid()}-{n}"
        try:
            path.mkdir()
        except OSError:
            return None
        group = cls(path, controller)
        for i, (name, value) in enumerate(settings.items()):
            try:
                (path / name).write_text(value)
            except OSError:
                if i == 0 or (path / name).exists():
                    group.remove()
                    return None
        return group

    @classmethod
    def _remove_stale(cls, base: Path, controller: str) -> None:
        """Remove the cgroups of sandboxes whose owner process died without cleaning up."""
        with contextlib.suppress(OSError):
            for p in base.glob("sgl-conveyor-*-*"):
                owner = p.name.split("-")[2]
                if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                    cls(p, controller).remove()

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def remove(self, timeout_s: float = 2.0) -> bool:
        end = time.monotonic() + timeout_s
        while True:
            for pid in self.pids():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError:
                if time.monotonic() > end:
                    return False
                time.sleep(0.01)


def _memory_settings(total_mb: int, v2: bool) -> dict[str, str]:
    limit = str(total_mb * 2**20)
    if v2:
        return {"memory.max": limit, "memory.swap.max": "0"}
    # memsw (memory + swap) must not be below the memory limit, and is set after it.
    return {"memory.limit_in_bytes": limit, "memory.memsw.limit_in_bytes": limit}


# --- the font cache -----------------------------------------------------------------------------

FONT_CACHE_DIR = "matplotlib-fonts"  # not "matplotlib": that one may hold files a sandbox wrote
_font_lock = threading.Lock()
_fonts_built: set[Path] = set()


def _shared_font_cache(cache_dir: Path) -> Path:
    """The shared matplotlib font cache, built by a process of our own (never by a sandbox),
    once per process where it is missing. Nothing a sandbox writes is ever copied back."""
    shared = cache_dir / FONT_CACHE_DIR
    with _font_lock:
        if shared in _fonts_built:
            return shared
        _fonts_built.add(shared)
        if any(_regular_files(shared, "fontlist-*.json")):
            return shared
        try:
            shared.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=shared, prefix=".build-") as tmp:
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MPLCONFIGDIR": tmp}
                env.update({"HOME": tmp, "MPLBACKEND": "Agg", "LC_ALL": "C.UTF-8"})
                done = subprocess.run(
                    [sys.executable, "-I", "-c", "import matplotlib.font_manager"],
                    env=env,
                    cwd=tmp,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=120,
                    check=False,
                )
                if done.returncode == 0:  # else: no matplotlib; each sandbox does without
                    for f in _regular_files(Path(tmp), "fontlist-*.json"):
                        os.replace(f, shared / f.name)
        except (OSError, subprocess.SubprocessError):
            pass
    return shared


def _regular_files(folder: Path, pattern: str) -> list[Path]:
    try:
        return [f for f in folder.glob(pattern) if f.is_file() and not f.is_symlink()]
    except OSError:
        return []


# --- one sandbox -----------------------------------------------------------------------------


class Sandbox:
    """One confined interpreter. Run statements with `run`; end it with `kill`. Thread-safe."""

    def __init__(self, limits: SandboxLimits, data_dir: str | os.PathLike, cache_dir: Path):
        self.limits = limits
        self.data_dir = str(data_dir)
        self._cache_dir = cache_dir
        self.enforced: dict[str, Any] = {}
        self._cond = threading.Condition()
        self._run_lock = threading.Lock()
        self._kill_lock = threading.Lock()
        self._replies: dict[int, dict[str, Any]] = {}
        self._ready = False
        self._eof = False
        self._killed: str | None = None
        self._overflow = False
        self._buf = bytearray()
        self._stmt_bytes = 0
        self._dropped = 0
        self._budget = limits.max_output_bytes
        self._next_id = 0
        self._call_spent: float | None = None  # seconds the call's statements have run
        self._cgroup: _Cgroup | None = None
        self._memory_cgroup: _Cgroup | None = None
        self._protocol_error: str | None = None
        self._waiting_for: int | None = None  # the id of the statement that may reply
        self._reply_r: int | None = None
        self._reader: threading.Thread | None = None
        _sweep_stale_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
        self.spawn_s = 0.0
        try:
            self._proc = self._spawn()
        except BaseException:
            self._cleanup_files()
            raise
        _LIVE.add(self)

    # -- start-up --

    def _spawn(self) -> subprocess.Popen:
        t0 = time.perf_counter()
        lim = self.limits
        self.workdir.chmod(0o700)
        mpl = self.workdir / ".config" / "matplotlib"
        mpl.mkdir(parents=True)
        # Only files this process's own builder made are copied in; none ever comes back out.
        for f in _regular_files(_shared_font_cache(self._cache_dir), "fontlist-*.json"):
            with contextlib.suppress(OSError):
                shutil.copyfile(f, mpl / f.name, follow_symlinks=False)
        cgroups = {}
        if lim.use_cgroup:
            self._cgroup = _Cgroup.create("pids", {"pids.max": str(lim.max_processes)})
            if self._cgroup is not None:
                cgroups["pids"] = self._cgroup.procs_file
            self._memory_cgroup = self._create_memory_cgroup()
            if self._memory_cgroup is not None:
                cgroups["memory"] = self._memory_cgroup.procs_file
        reply_r, reply_w = os.pipe()
        self._reply_r = reply_r
        cfg = {
            "reply_fd": reply_w,
            "workdir": str(self.workdir),
            "data_dir": self.data_dir,
            "cgroup_procs": cgroups,
            "isolate_network": lim.isolate_network,
            "readonly_filesystem": lim.readonly_filesystem,
            "pid_namespace": lim.pid_namespace,
            "memory_mb": lim.memory_mb,
            "total_memory_mb": lim.total_memory_mb,
            "max_disk_mb": lim.max_disk_mb,
            "seccomp": lim.seccomp,
            "use_cgroup": lim.use_cgroup,
            "call_cpu_s": lim.call_cpu_s,
            "max_file_mb": lim.max_file_mb,
            "max_open_files": lim.max_open_files,
            "max_processes": lim.max_processes,
            "preload": list(lim.preload),
        }
        threads = str(lim.threads)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "TMPDIR": str(self.workdir),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(mpl),
            "OPENBLAS_NUM_THREADS": threads,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "DATA_DIR": self.data_dir,
            "CONVEYOR_SANDBOX": "1",
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-u", "-B", str(CHILD_SCRIPT), json.dumps(cfg)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
                close_fds=True,
                pass_fds=(reply_w,),
                bufsize=0,
            )
        except BaseException:
            os.close(reply_r)
            self._reply_r = None
            raise
        finally:
            os.close(reply_w)
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read_loop, name=f"sandbox-output-{proc.pid}", daemon=True
        )
        self._reader.start()
        end = time.monotonic() + lim.spawn_timeout_s
        with self._cond:
            while not self._ready and not self._eof and time.monotonic() < end:
                self._cond.wait(0.05)
            ready, early_output = self._ready, bytes(self._buf)
            self._buf.clear()
        if not ready:
            self.kill()
            detail = early_output.decode(errors="replace").strip()[-2000:]
            if self._protocol_error:
                detail = f"{self._protocol_error} {detail}"
            raise SandboxError(
                f"the Python sandbox did not start (exit status {proc.poll()}): {detail}"
            )
        self.spawn_s = time.perf_counter() - t0
        return proc

    def _create_memory_cgroup(self) -> _Cgroup | None:
        """The sandbox's memory cgroup. On cgroup v2 a process is in one cgroup only: where the
        pids cgroup is a v2 one under the same parent, the memory limit goes into it."""
        lim = self.limits
        pids_base = _Cgroup._bases.get("pids")
        if self._cgroup is not None and pids_base is not None:
            with _Cgroup._lock:
                if "memory" not in _Cgroup._bases:
                    _Cgroup._bases["memory"] = _Cgroup._find_base("memory")
            if _Cgroup._bases["memory"] == pids_base:  # v2, both controllers delegated
                group = _Cgroup(self._cgroup.path, "memory")
                try:
                    for name, value in _memory_settings(lim.total_memory_mb, True).items():
                        if name == "memory.max" or (group.path / name).exists():
                            (group.path / name).write_text(value)
                except OSError:
                    return None
                return None  # the pids cgroup is the memory cgroup: join it once
        v2 = _Cgroup._bases.get("memory") is not None and not _is_v1(_Cgroup._bases["memory"])
        return _Cgroup.create("memory", _memory_settings(lim.total_memory_mb, v2))

    # -- the pipes: output (whatever the user's code writes) and replies (JSON lines) --

    def _read_loop(self) -> None:
        try:
            self._read_pipes()
        except Exception as e:  # the reader must end in a known state
            self._violation(f"the sandbox's reader failed: {type(e).__name__}: {e}")
        finally:
            with contextlib.suppress(OSError):
                os.close(self._reply_r)
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _read_pipes(self) -> None:
        out_fd = self._proc.stdout.fileno()
        reply_fd = self._reply_r
        cap = max(2**20, 4 * self.limits.max_output_bytes, 2 * 65536 + 4096)
        pending = b""
        poller = select.poll()
        mask = select.POLLIN | select.POLLHUP | select.POLLERR
        poller.register(out_fd, mask)
        poller.register(reply_fd, mask)
        open_fds = {out_fd, reply_fd}
        os.set_blocking(out_fd, False)
        while out_fd in open_fds:
            events = poller.poll(200)
            if not events:
                if self._killed and self._proc.poll() is not None:
                    break  # a process we could not kill still holds the pipe: stop reading
                continue
            ready = {fd for fd, _ in events}
            # All the output written before a reply is in the pipe when the reply is: take it
            # first, so that it counts for the statement that wrote it.
            if not self._drain_output(out_fd):
                open_fds.discard(out_fd)
                poller.unregister(out_fd)
            if reply_fd in ready and reply_fd in open_fds:
                chunk = os.read(reply_fd, 65536)
                if not chunk:
                    open_fds.discard(reply_fd)
                    poller.unregister(reply_fd)
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._reply(raw)
                if len(pending) > cap:
                    self._violation(f"a reply of more than {cap} bytes")
                    pending = b""
        if pending:
            self._violation("a reply cut short")

    def _drain_output(self, fd: int) -> bool:
        """Read what the output pipe holds now; False at end-of-file."""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            self._output(chunk)

    def _output(self, data: bytes) -> None:
        with self._cond:
            self._stmt_bytes += len(data)
            kept = data[: max(0, self._budget)]
            self._budget -= len(kept)
            self._buf += kept
            self._dropped += len(data) - len(kept)
            if self._stmt_bytes > self.limits.output_kill_bytes and not self._overflow:
                self._overflow = True
                self._cond.notify_all()

    def _violation(self, what: str) -> None:
        """The reply channel carried something the REPL does not send: the user's code wrote
        to it. The statement fails with a protocol error and the sandbox is stopped."""
        with self._cond:
            if self._protocol_error is None:
                self._protocol_error = what
            self._cond.notify_all()

    def _reply(self, raw: bytes) -> None:
        """One reply line, checked as the untrusted input it is."""
        try:
            frame = json.loads(raw)
        except ValueError:
            self._violation(f"a reply that is not JSON: {raw[:80]!r}")
            return
        with self._cond:
            if self._protocol_error is not None:
                return
            if not self._ready:
                if (
                    isinstance(frame, dict)
                    and frame.get("ready") is True
                    and isinstance(frame.get("enforced"), dict)
                ):
                    self._ready = True
                    self.enforced = frame["enforced"]
                    self._cond.notify_all()
                    return
                self._protocol_error = f"a first reply that is not the ready message: {raw[:80]!r}"
            elif not _valid_reply(frame, self._waiting_for):
                self._protocol_error = (
                    f"a reply that is not one for the running statement "
                    f"(id {self._waiting_for}): {raw[:80]!r}"
                )
            else:
                self._replies[frame["id"]] = frame
                self._waiting_for = None  # one reply per statement
            self._cond.notify_all()

    # -- running statements --

    @property
    def alive(self) -> bool:
        return self._killed is None and not self._eof and self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def begin_call(self) -> None:
        """Start the per-call budget. It counts the statements' own run time, never the gaps
        between them while the model decodes the next one (nor an idle pre-spawned sandbox)."""
        self._call_spent = 0.0

    def run(
        self, code: str, line: int = 1, *, cancelled: threading.Event | None = None
    ) -> StatementResult:
        """Run one top-level statement (or block) whose first line is `line` in the script."""
        with self._run_lock:
            return self._run(code, line, cancelled)

    def _run(self, code: str, line: int, cancelled: threading.Event | None) -> StatementResult:
        lim = self.limits
        if self._call_spent is None:
            self.begin_call()
        if not self.alive:
            return StatementResult(
                line, "crashed", error=self._death_text(line, before=True), dropped_bytes=0
            )
        left = lim.call_timeout_s - (self._call_spent or 0.0)
        per_call = left < lim.statement_timeout_s
        timeout = max(0.0, min(lim.statement_timeout_s, left))
        with self._cond:
            self._next_id += 1
            rid = self._next_id
            self._waiting_for = rid
            self._stmt_bytes = 0
            self._overflow = False
        req = {"id": rid, "code": code, "line": line, "cpu_s": lim.statement_cpu_s}
        t0 = time.monotonic()
        try:
            _write_all(self._proc.stdin.fileno(), json.dumps(req).encode() + b"\n")
        except OSError:
            pass  # the process is gone: the wait below sees end-of-file
        outcome = self._wait(rid, t0 + timeout, cancelled)
        interrupted = None
        if outcome == "timeout":
            # Interrupt first: the traceback tells the model where its code was stuck.
            with contextlib.suppress(OSError):
                os.kill(self._proc.pid, signal.SIGINT)
            if self._wait(rid, time.monotonic() + lim.interrupt_grace_s, None) == "reply":
                with self._cond:
                    interrupted = self._replies.pop(rid, None)
            self.kill("timeout")
        elif outcome == "overflow":
            self.kill("output_limit")
        elif outcome == "protocol":
            self.kill("protocol")
        elif outcome == "cancelled":
            self.kill("cancelled")
        elapsed = time.monotonic() - t0
        self._call_spent = (self._call_spent or 0.0) + elapsed
        with self._cond:
            frame = self._replies.pop(rid, None) if outcome == "reply" else None
            out = bytes(self._buf)
            self._buf.clear()
            dropped, self._dropped = self._dropped, 0
        output = out.decode("utf-8", errors="replace")
        if outcome == "reply":
            status, error = frame["status"], frame.get("error")
            if status == "interrupted":  # a SIGINT that was not ours: plain error
                status = "error"
            if status == "memory" and error:
                error += f"(the sandbox allows {lim.memory_mb} MB of memory)\n"
            return StatementResult(line, status, output, error, frame["elapsed_s"], dropped)
        if outcome == "timeout":
            limit = left if per_call else lim.statement_timeout_s
            which = "the call's" if per_call else "its"
            text = (
                f"TimeoutError: the statement starting at line {line} ran longer than "
                f"{which} wall-clock limit of {limit:.3g} s and was stopped\n"
            )
            tb = (interrupted or {}).get("error") or ""
            tb = tb[: -len("KeyboardInterrupt\n")] if tb.endswith("KeyboardInterrupt\n") else ""
            return StatementResult(line, "timeout", output, tb + text, elapsed, dropped)
        if outcome == "overflow":
            text = (
                f"OutputLimitError: the statement starting at line {line} wrote more than "
                f"{lim.output_kill_bytes} bytes of output and was stopped\n"
            )
            return StatementResult(line, "output_limit", output, text, elapsed, dropped)
        if outcome == "cancelled":
            return StatementResult(line, "cancelled", output, "the call was cancelled\n", elapsed)
        if outcome == "protocol":
            text = (
                f"SandboxProtocolError: while the statement starting at line {line} ran, the "
                f"sandbox's reply channel carried {self._protocol_error} (code that writes to "
                "the sandbox's own pipes); the sandbox was stopped and its state was lost\n"
            )
            return StatementResult(line, "protocol", output, text, elapsed, dropped)
        return StatementResult(
            line, "crashed", output, self._death_text(line), elapsed, dropped_bytes=dropped
        )

    def _wait(self, rid: int, until: float, cancelled: threading.Event | None) -> str:
        with self._cond:
            while True:
                if self._protocol_error is not None:
                    return "protocol"
                if rid in self._replies:
                    return "reply"
                if self._overflow:
                    return "overflow"
                if self._killed:
                    return "cancelled"  # killed from another thread: an abort or an undo
                if self._eof:
                    return "eof"
                if cancelled is not None and cancelled.is_set():
                    return "cancelled"
                left = until - time.monotonic()
                if left <= 0:
                    return "timeout"
                self._cond.wait(min(left, 0.05))

    def _death_text(self, line: int, before: bool = False) -> str:
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self._proc.wait(timeout=2.0)
        if code is None:
            how = "it stopped answering"
        elif code > 128 or code < 0:
            sig = code - 128 if code > 128 else -code
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            how = f"killed by {name}"
            if sig == signal.SIGKILL:
                how += (
                    f" (the call's CPU-time limit of {self.limits.call_cpu_s:g} s, or the "
                    "memory limit, is the usual cause)"
                )
        else:
            how = f"exit status {code}"
        when = "before" if before else "during"
        return (
            f"SandboxCrash: the Python process died {when} the statement starting at line "
            f"{line} ({how}); its state was lost\n"
        )

    # -- the end --

    def kill(self, reason: str = "killed") -> None:
        """Kill the interpreter and everything it started; remove its files. Idempotent."""
        with self._kill_lock:
            if self._killed is not None and self._proc.poll() is not None:
                return
            with self._cond:
                if self._killed is None:
                    self._killed = reason
                self._cond.notify_all()
            proc = self._proc
            if proc.poll() is None:
                # The supervisor turns SIGTERM into SIGKILL of the REPL; the kernel then kills
                # the REPL's whole PID namespace before the supervisor's wait returns.
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass
            # Without a PID namespace, forked children live on in the process group and cgroup.
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2.0)
            if self._cgroup is not None:
                self._cgroup.remove()
            if self._memory_cgroup is not None:
                self._memory_cgroup.remove()
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=5.0)
        with contextlib.suppress(OSError):
            proc.stdout.close()
        self._cleanup_files()

    def _cleanup_files(self) -> None:
        # Nothing in the working directory is read or kept: the sandbox's code wrote it.
        shutil.rmtree(self.workdir, ignore_errors=True)


def _valid_reply(frame: Any, expected: int | None) -> bool:
    return (
        isinstance(frame, dict)
        and set(frame) == {"id", "status", "error", "elapsed_s"}
        and expected is not None
        and type(frame["id"]) is int
        and frame["id"] == expected
        and frame["status"] in _REPL_STATUSES
        and (frame["error"] is None or isinstance(frame["error"], str))
        and type(frame["elapsed_s"]) in (int, float)
        and 0 <= frame["elapsed_s"] < 1e9
    )


_REPL_STATUSES = frozenset({"ok", "error", "exit", "cpu", "interrupted", "memory"})


def _is_v1(base: Path) -> bool:
    return not (base / "cgroup.controllers").exists()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# --- the pool --------------------------------------------------------------------------------


@dataclass
class SandboxPool:
    """Keeps `size` sandboxes spawned ahead. `acquire` hands one out and spawns a replacement.

    A sandbox serves one call and is then killed: no state leaks from one call to the next.
    """

    limits: SandboxLimits
    data_dir: str
    cache_dir: Path
    size: int = 1
    _ready: deque = field(default_factory=deque, init=False)
    _pending: list = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _executor: ThreadPoolExecutor | None = field(default=None, init=False)
    _closed: bool = field(default=False, init=False)

    def _spawn(self) -> Sandbox:
        return Sandbox(self.limits, self.data_dir, self.cache_dir)

    def acquire(self) -> Future:
        """A future of a fresh sandbox: already resolved when one was waiting in the pool."""
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(2, thread_name_prefix="sandbox-spawn")
            fut: Future | None = None
            while self._ready:
                sb = self._ready.popleft()
                if sb.alive:
                    fut = Future()
                    fut.set_result(sb)
                    break
                sb.kill()
            if fut is None and self._pending:
                fut = self._pending.pop(0)  # a replacement already on its way
            if fut is None:
                fut = self._executor.submit(self._spawn)
            self._refill()
        return fut

    def warm(self) -> None:
        """Spawn the pool's sandboxes now, in the background."""
        with self._lock:
            if self._closed:
                return
            if self._executor is None:
                self._executor = ThreadPoolExecutor(2, thread_name_prefix="sandbox-spawn")
            self._refill()

    def _refill(self) -> None:
        while len(self._ready) + len(self._pending) < self.size:
            f = self._executor.submit(self._spawn)
            self._pending.append(f)
            f.add_done_callback(self._refilled)

    def _refilled(self, f: Future) -> None:
        with self._lock:
            if f not in self._pending:
                return  # claimed by a call, which owns the sandbox now
            self._pending.remove(f)
            if f.exception() is not None:
                return
            if self._closed:
                f.result().kill()
            else:
                self._ready.append(f.result())

    def close(self) -> None:
        """Kill the waiting sandboxes and stop the spawner thread."""
        with self._lock:
            self._closed = True
            ready, self._ready = list(self._ready), deque()
            pending, self._pending = list(self._pending), []
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        for f in pending:
            if f.exception() is None:
                f.result().kill()
        for sb in ready:
            sb.kill()
