"""The process inside the code sandbox: it confines itself, then runs the statements it is sent.

Started by `sandbox.py` as `python -I -u -B sandbox_child.py CONFIG_JSON`. It imports nothing of
sgl_conveyor (it must start fast and stand alone), and never runs a statement of the user's code
before every confinement it could set up is in place.

Process layout: this script starts as the *supervisor*, which joins the pids cgroup, unshares the
network, mount and PID namespaces, and forks the *REPL*, PID 1 of the new PID namespace. When the
REPL dies the kernel kills everything left in its namespace; the supervisor relays its exit status
and turns SIGTERM into SIGKILL of the REPL and SIGINT into SIGINT of the REPL.

Wire protocol: commands arrive as JSON lines on fd 0; the user's stdout and stderr go to fd 1; the
REPL's replies are JSON lines on a pipe of their own (`reply_fd` in the configuration), so nothing
the user's code prints can pass for a reply. The user's code runs in the REPL's process and can
still write to that pipe on purpose: the host treats every reply as untrusted input (a reply that
is malformed or not for the statement it waits on stops the sandbox with a protocol error).
"""

from __future__ import annotations

import builtins
import ctypes
import itertools
import json
import linecache
import math
import os
import resource
import signal
import sys
import time
import traceback

FILENAME = "<script>"

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
# Root keeps only the right to read (and write where the mount allows) files it does not own:
# the interpreter itself may live in a directory only root can read. Everything else (mount,
# unshare, raising rlimits, moving cgroups, ptrace, raw sockets, module loading) is dropped.
KEEP_CAPS = (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)

_libc = ctypes.CDLL(None, use_errno=True)


class CpuTimeExceeded(BaseException):
    """Raised in the statement when its CPU-time allowance is used up (SIGXCPU)."""


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


MAX_ERROR_CHARS = 65536  # a traceback longer than this is cut (the host caps a reply's size)


def _frame(fd: int, obj: dict) -> None:
    data = json.dumps(obj).encode() + b"\n"
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# --- confinement -----------------------------------------------------------------------------


def _join_cgroup(procs_file: str) -> str | None:
    try:
        with open(procs_file, "w") as f:
            f.write(str(os.getpid()))
        return None
    except OSError as e:
        return f"cannot join the cgroup {procs_file}: {e}"


def _unshare(flags: int) -> str | None:
    if _libc.unshare(flags) != 0:
        return _errno_text()
    return None


def _mount(source: str | None, target: str, fstype: str | None, flags: int) -> str | None:
    rc = _libc.mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        None,
    )
    return None if rc == 0 else f"{target}: {_errno_text()}"


def _mount_points() -> list[tuple[str, list[str]]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            out.append((point, fields[5].split(",")))
    return out


_KEPT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}


def _mount_workdir_tmpfs(workdir: str, size_mb: int) -> str | None:
    """Put a tmpfs of `size_mb` over the working directory (what the host put there is copied
    in first). Its pages are the sandbox's memory, it is gone with the mount namespace, and the
    host never sees, reads or copies anything the user's code writes."""
    try:
        old = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        return f"{workdir}: {e}"
    try:
        rc = _libc.mount(
            b"tmpfs",
            workdir.encode(),
            b"tmpfs",
            ctypes.c_ulong(MS_NOSUID | MS_NODEV),
            f"size={size_mb}m,mode=0700,nr_inodes=65536".encode(),
        )
        if rc != 0:
            return f"tmpfs on {workdir}: {_errno_text()}"
        import shutil

        shutil.copytree(f"/proc/self/fd/{old}", workdir, symlinks=True, dirs_exist_ok=True)
        return None
    except OSError as e:
        return f"copying into the tmpfs: {e}"
    finally:
        os.close(old)


def _confine_filesystem(workdir: str, fresh_proc: bool, disk_mb: int | None) -> list[str]:
    """Make every mount read-only except the session's working directory (a tmpfs of `disk_mb`
    where it can be mounted, else a bind mount of the host's folder). Returns failures."""
    failures = []
    err = _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if err:
        return [err]
    if disk_mb:
        err = _mount_workdir_tmpfs(workdir, disk_mb)
        if err:
            failures.append(err)
    else:
        err = "no disk limit"
    if err:
        err = _mount(workdir, workdir, None, MS_BIND | MS_REC)
        if err:
            return [*failures, err]
    if fresh_proc:
        # A /proc of our own PID namespace: the sandbox sees only its own processes.
        err = _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        if err:
            failures.append(err)
    for point, opts in _mount_points():
        if point == workdir or point.startswith(workdir + "/"):
            continue
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for name, bit in _KEPT_FLAGS.items():
            if name in opts:
                flags |= bit
        err = _mount(None, point, None, flags)
        if err:
            failures.append(err)
    return failures


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities() -> str | None:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        dropped = cap in KEEP_CAPS or _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0
        if not dropped and ctypes.get_errno() != 22:  # EINVAL: a cap this kernel does not know
            return f"cannot drop capability {cap} from the bounding set: {_errno_text()}"
    mask = sum(1 << c for c in KEEP_CAPS)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)(_CapData(mask, mask, 0), _CapData(0, 0, 0))
    if _libc.capset(ctypes.byref(header), data) != 0:
        return f"capset failed: {_errno_text()}"
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    return None


# --- seccomp ----------------------------------------------------------------------------------

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM = 1
ENOSYS = 38
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
SOCK_STREAM = 1
# clone() flags that make namespaces: a new user namespace would give back every capability.
CLONE_NS_FLAGS = 0x7E020000

# Per architecture: its AUDIT_ARCH value and the numbers of the system calls the filter names.
_COMMON = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "clone3": 435}
_SYSCALLS = {
    "x86_64": (
        0xC000003E,
        {
            "socket": 41,
            "socketpair": 53,
            "clone": 56,
            "unshare": 272,
            "setns": 308,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "ptrace": 101,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "bpf": 321,
            "perf_event_open": 298,
            "userfaultfd": 323,
            "init_module": 175,
            "finit_module": 313,
            "delete_module": 176,
            "kexec_load": 246,
            "open_by_handle_at": 304,
            "fsopen": 430,
            "fsmount": 432,
            "move_mount": 429,
            "open_tree": 428,
            **_COMMON,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "socket": 198,
            "socketpair": 199,
            "clone": 220,
            "unshare": 97,
            "setns": 268,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "ptrace": 117,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "bpf": 280,
            "perf_event_open": 241,
            "userfaultfd": 282,
            "init_module": 105,
            "finit_module": 273,
            "delete_module": 106,
            "kexec_load": 104,
            "open_by_handle_at": 265,
            "fsopen": 430,
            "fsmount": 432,
            "move_mount": 429,
            "open_tree": 428,
            **_COMMON,
        },
    ),
}
_DENIED = [
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "ptrace",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "open_by_handle_at",
    "fsopen",
    "fsmount",
    "move_mount",
    "open_tree",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
]


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_program(arch: int, nr: dict[str, int], x32: bool) -> list[tuple]:
    """The filter, as (code, jump-if-true label, jump-if-false label, k); labels are resolved
    by `_assemble`. Offsets in struct seccomp_data: nr 0, arch 4, args[i] 16 + 8 * i (low word
    on a little-endian machine, which both architectures are)."""
    ld, jeq, jge, jset, ret, and_ = 0x20, 0x15, 0x35, 0x45, 0x06, 0x54
    p: list[tuple] = [
        (ld, None, None, 4),
        (jeq, None, "kill", arch),  # another ABI (i386, x32 on x86-64): not ours, kill
        (ld, None, None, 0),
    ]
    if x32:
        p.append((jge, "kill", None, 0x40000000))
    p += [
        (jeq, "socket", None, nr["socket"]),
        (jeq, "socketpair", None, nr["socketpair"]),
        (jeq, "clone", None, nr["clone"]),
        (jeq, "enosys", None, nr["clone3"]),  # its flags cannot be inspected: libc falls back
    ]
    p += [(jeq, "eperm", None, nr[name]) for name in _DENIED]
    p += [
        (ret, None, None, SECCOMP_RET_ALLOW),
        # socket(): IPv4 and IPv6 only (the network namespace has no interface). AF_UNIX would
        # reach the host's socket files, AF_VSOCK the hypervisor, AF_NETLINK/AF_ALG the kernel.
        ("socket", ld, None, None, 16),
        (jeq, "allow", None, AF_INET),
        (jeq, "allow", "eperm", AF_INET6),
        # socketpair(): a connected AF_UNIX stream pair only (a datagram one could be pointed
        # at a host socket with connect or sendto; a connected stream socket cannot).
        ("socketpair", ld, None, None, 16),
        (jeq, None, "eperm", AF_UNIX),
        (ld, None, None, 24),
        (and_, None, None, 0xF),
        (jeq, "allow", "eperm", SOCK_STREAM),
        ("clone", ld, None, None, 16),
        (jset, "eperm", "allow", CLONE_NS_FLAGS),
        ("allow", ret, None, None, SECCOMP_RET_ALLOW),
        ("eperm", ret, None, None, SECCOMP_RET_ERRNO | EPERM),
        ("enosys", ret, None, None, SECCOMP_RET_ERRNO | ENOSYS),
        ("kill", ret, None, None, SECCOMP_RET_KILL_PROCESS),
    ]
    return p


def _assemble(program: list[tuple]) -> list[tuple[int, int, int, int]]:
    labels, body = {}, []
    for ins in program:
        if isinstance(ins[0], str):
            labels[ins[0]] = len(body)
            ins = ins[1:]
        body.append(ins)
    out = []
    for i, (code, jt, jf, k) in enumerate(body):

        def off(label, i=i):
            if label is None:
                return 0
            d = labels[label] - i - 1
            if not 0 <= d < 256:
                raise ValueError(f"seccomp jump out of range: {label}")
            return d

        out.append((code, off(jt), off(jf), k))
    return out


def _install_seccomp() -> str:
    """A seccomp filter on the REPL and everything it starts (it cannot be removed). Returns
    what it enforces, or why it is not there."""
    import platform

    machine = platform.machine()
    if machine not in _SYSCALLS:
        return f"none: no seccomp filter for the architecture {machine}"
    arch, nr = _SYSCALLS[machine]
    try:
        body = _assemble(_seccomp_program(arch, nr, x32=machine == "x86_64"))
    except (KeyError, ValueError) as e:
        return f"none: {e}"
    insns = (_SockFilter * len(body))(*[_SockFilter(*ins) for ins in body])
    prog = _SockFprog(len(body), ctypes.cast(insns, ctypes.POINTER(_SockFilter)))
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"none: no_new_privs failed: {_errno_text()}"
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"none: seccomp failed: {_errno_text()}"
    return (
        "seccomp: socket() only for AF_INET/AF_INET6, socketpair() only AF_UNIX stream; "
        "no namespaces, mounts, ptrace, bpf, keyrings, io_uring, kernel modules, "
        "open_by_handle_at"
    )


def _set_rlimits(cfg: dict) -> dict:
    applied = {}
    mem = cfg["memory_mb"] * 2**20
    pairs = {
        "RLIMIT_AS": (resource.RLIMIT_AS, mem),
        "RLIMIT_CPU": (resource.RLIMIT_CPU, math.ceil(cfg["call_cpu_s"])),
        "RLIMIT_FSIZE": (resource.RLIMIT_FSIZE, cfg["max_file_mb"] * 2**20),
        "RLIMIT_NOFILE": (resource.RLIMIT_NOFILE, cfg["max_open_files"]),
        "RLIMIT_CORE": (resource.RLIMIT_CORE, 0),
    }
    for name, (which, value) in pairs.items():
        try:
            resource.setrlimit(which, (value, value))
            applied[name] = value
        except (ValueError, OSError) as e:
            applied[name] = f"not set: {e}"
    if os.geteuid() != 0:
        # RLIMIT_NPROC counts every process of the user, and does not bind root at all.
        try:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
            running = _count_user_tasks(os.getuid())
            want = running + cfg["max_processes"]
            if hard != resource.RLIM_INFINITY:
                want = min(want, hard)
            resource.setrlimit(resource.RLIMIT_NPROC, (want, want))
            applied["RLIMIT_NPROC"] = want
        except (ValueError, OSError) as e:
            applied["RLIMIT_NPROC"] = f"not set: {e}"
    return applied


def _count_user_tasks(uid: int) -> int:
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                pass
    return n


_SPAWN_EVENTS = frozenset(
    {"os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen"}
)
_NET_EVENTS = frozenset(
    {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"}
)


def _install_audit_guards(block_network: bool, max_spawns: int | None) -> None:
    """Fallbacks where the kernel could not help: refuse sockets and cap process creation.

    Audit hooks see what Python code does; code that calls libc through ctypes gets past them.
    """
    spawned = [0]

    def hook(event: str, args: tuple) -> None:
        if block_network and event in _NET_EVENTS:
            if event.startswith("socket.") and event != "socket.getaddrinfo":
                sock = args[0]
                if getattr(sock, "family", None) == getattr(__import__("socket"), "AF_UNIX", -1):
                    return
            raise PermissionError(f"network access is disabled in the sandbox ({event})")
        if max_spawns is not None and event in _SPAWN_EVENTS:
            spawned[0] += 1
            if spawned[0] > max_spawns:
                raise BlockingIOError(
                    11, f"process limit of the sandbox reached ({max_spawns} processes)"
                )

    sys.addaudithook(hook)


# --- the two processes -----------------------------------------------------------------------


def _supervise(child: int, reply_fd: int | None) -> None:
    """Wait for the REPL, forward SIGINT, turn SIGTERM into SIGKILL, kill it if our parent
    dies; exit with its status."""

    def kill(_sig, _frame):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def interrupt(_sig, _frame):
        try:
            os.kill(child, signal.SIGINT)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, kill)
    signal.signal(signal.SIGHUP, kill)
    signal.signal(signal.SIGINT, interrupt)
    # Only the REPL may hold the pipes, so that its death is seen as end-of-file at once.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if reply_fd is not None:
        os.close(reply_fd)
    parent = os.getppid()
    while True:
        try:
            pid, status = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            os._exit(1)
        if pid:
            break
        if os.getppid() != parent:
            # The tool's process died (we were re-parented): a statement that sleeps would
            # otherwise outlive it. PR_SET_PDEATHSIG cannot do this: it fires when the parent
            # *thread* that spawned us ends, and the pool spawns from short-lived threads.
            kill(None, None)
        time.sleep(0.2)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    reply_fd = cfg["reply_fd"]
    enforced: dict = {"notes": []}
    notes = enforced["notes"]

    in_cgroup = False
    in_memory_cgroup = False
    for kind, procs_file in (cfg.get("cgroup_procs") or {}).items():
        err = _join_cgroup(procs_file)
        if err:
            notes.append(err)
        elif kind == "pids":
            in_cgroup = True
        elif kind == "memory":
            in_memory_cgroup = True

    flags = 0
    if cfg["isolate_network"]:
        flags |= CLONE_NEWNET
    if cfg["readonly_filesystem"]:
        flags |= CLONE_NEWNS
    if cfg["pid_namespace"]:
        flags |= CLONE_NEWPID
    got = 0
    if flags:
        if _unshare(flags) is None:
            got = flags
        else:
            # Try one namespace at a time: some may be allowed where others are not.
            for bit in (CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID):
                if flags & bit:
                    err = _unshare(bit)
                    if err is None:
                        got |= bit
                    else:
                        notes.append(f"unshare {hex(bit)}: {err}")

    supervisor = os.getpid()
    pid = os.fork()
    if pid:
        _supervise(pid, reply_fd)
        return
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # PID 1 of a new namespace sees its parent as 0; any other parent means it already died.
    if os.getppid() not in (0, supervisor):
        os._exit(1)

    workdir = cfg["workdir"]
    disk_mb = cfg.get("max_disk_mb")
    file_mb = cfg["max_file_mb"]
    enforced["disk"] = (
        f"not capped as a whole: RLIMIT_FSIZE caps each file at {file_mb} MB "
        "(no mount namespace for a tmpfs)"
    )
    if got & CLONE_NEWNS:
        failures = _confine_filesystem(workdir, bool(got & CLONE_NEWPID), disk_mb)
        notes.extend(failures)
        enforced["filesystem"] = (
            "read-only except the working directory (mount namespace)"
            if not failures
            else "partly read-only (some remounts failed; see notes)"
        )
        if disk_mb and not any(f.startswith(("tmpfs", "copying", workdir)) for f in failures):
            enforced["disk"] = (
                f"the working directory is a tmpfs of {disk_mb} MB in the sandbox's mount "
                f"namespace (counted in its memory); RLIMIT_FSIZE caps each file at {file_mb} MB"
            )
    else:
        enforced["filesystem"] = "not confined"
    mem_mb = cfg["memory_mb"]
    why = (
        "no memory cgroup could be made here"
        if cfg.get("use_cgroup", True)
        else "cgroups are off (use_cgroup)"
    )
    enforced["memory"] = (
        f"memory cgroup: {cfg.get('total_memory_mb')} MB for the whole sandbox; "
        f"RLIMIT_AS: {mem_mb} MB per process"
        if in_memory_cgroup
        else (
            f"RLIMIT_AS only: {mem_mb} MB per process, not capped for the sandbox as a whole "
            f"({why}; "
            f"up to {cfg['max_processes']} processes)"
        )
    )
    enforced["network"] = (
        "none: own network namespace without interfaces"
        if got & CLONE_NEWNET
        else ("audit hook refuses socket connect/bind/send" if cfg["isolate_network"] else "open")
    )
    enforced["pid_namespace"] = bool(got & CLONE_NEWPID)
    enforced["rlimits"] = _set_rlimits(cfg)

    if os.geteuid() == 0:
        err = _drop_capabilities()
        enforced["capabilities"] = (
            err or "dropped all but CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH; no_new_privs"
        )
    if in_cgroup:
        enforced["processes"] = f"pids cgroup: at most {cfg['max_processes']} processes"
    elif os.geteuid() != 0:
        enforced["processes"] = f"RLIMIT_NPROC: {enforced['rlimits'].get('RLIMIT_NPROC')}"
    else:
        enforced["processes"] = (
            f"audit hook: at most {cfg['max_processes']} spawns (ctypes can bypass it)"
        )
    _install_audit_guards(
        block_network=cfg["isolate_network"] and not got & CLONE_NEWNET,
        max_spawns=None if in_cgroup or os.geteuid() != 0 else cfg["max_processes"],
    )
    enforced["syscalls"] = _install_seccomp() if cfg.get("seccomp", True) else "none: disabled"

    os.chdir(workdir)
    _link_data_files(cfg.get("data_dir"))
    cmd_fd = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
        except (AttributeError, ValueError):
            pass

    user_globals = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "DATA_DIR": cfg["data_dir"],
    }
    preload_errors = []
    for name in cfg.get("preload", ()):
        try:
            __import__(name)
        except Exception as e:
            preload_errors.append(f"{name}: {e}")
    if preload_errors:
        notes.append("preload failed: " + "; ".join(preload_errors))

    _frame(reply_fd, {"ready": True, "enforced": enforced})
    _repl(cmd_fd, reply_fd, user_globals, cfg)


def _repl(cmd_fd: int, reply_fd: int, user_globals: dict, cfg: dict) -> None:
    main_pid = os.getpid()
    lines: list[str] = []
    # The signal handlers raise into the user's statement at most once, and only while it runs:
    # a signal that lands in the REPL's own code must not kill the REPL.
    armed = {"cpu": False, "int": False, "cpu_s": 0.0}
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]

    def on_xcpu(_sig, _frame):
        if armed["cpu"]:
            armed["cpu"] = False
            raise CpuTimeExceeded(
                f"the statement used more than its {armed['cpu_s']:g} s of CPU time"
            )

    def on_int(_sig, _frame):
        if armed["int"]:
            armed["int"] = False
            raise KeyboardInterrupt

    signal.signal(signal.SIGXCPU, on_xcpu)
    signal.signal(signal.SIGINT, on_int)
    commands = os.fdopen(cmd_fd, "rb", buffering=0)
    reader = _LineReader(commands)
    while True:
        raw = reader.readline()
        if not raw:
            os._exit(0)
        req = json.loads(raw)
        code, line = req["code"], req["line"]
        # The traceback shows the user's lines: keep the script so far in linecache.
        new = code.splitlines(keepends=True)
        if len(lines) < line - 1:
            lines.extend(["\n"] * (line - 1 - len(lines)))
        lines[line - 1 : line - 1 + len(new)] = new
        linecache.cache[FILENAME] = (sum(map(len, lines)), None, lines, FILENAME)

        cpu_s = req.get("cpu_s")
        if cpu_s and hard_cpu != resource.RLIM_INFINITY:
            # RLIMIT_CPU counts whole seconds: the allowance is cpu_s rounded to a second.
            ru = resource.getrusage(resource.RUSAGE_SELF)
            used = ru.ru_utime + ru.ru_stime
            soft = max(math.floor(used + cpu_s), math.floor(used) + 1)
            resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard_cpu), hard_cpu))
            armed["cpu_s"] = cpu_s
        status, error = "ok", None
        t0 = time.perf_counter()
        try:
            try:
                armed["cpu"] = armed["int"] = True
                exec(compile("\n" * (line - 1) + code, FILENAME, "exec"), user_globals)
            finally:
                armed["cpu"] = armed["int"] = False
        except SystemExit as e:
            status = "exit"
            if e.code not in (None, 0):
                status, error = "error", f"SystemExit: {e.code}\n"
        except BaseException as e:
            status = "error"
            if isinstance(e, CpuTimeExceeded):
                status = "cpu"
            elif isinstance(e, KeyboardInterrupt):
                status = "interrupted"
            elif isinstance(e, MemoryError):
                status = "memory"
            error = _format_error(e)
        finally:
            if os.getpid() != main_pid:
                # A process forked by the statement fell through to here: it must not reply.
                os._exit(0 if status in ("ok", "exit") else 1)
        elapsed = time.perf_counter() - t0
        if cpu_s and hard_cpu != resource.RLIM_INFINITY:
            resource.setrlimit(resource.RLIMIT_CPU, (hard_cpu, hard_cpu))
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS // 2] + "\n[...]\n" + error[-MAX_ERROR_CHARS // 2 :]
        _frame(reply_fd, {"id": req["id"], "status": status, "error": error, "elapsed_s": elapsed})


def _format_error(e: BaseException) -> str:
    """The traceback as Python prints it, without the sandbox's own frames."""
    own = os.path.abspath(__file__)

    def strip(exc: BaseException | None, seen: set[int]) -> None:
        if exc is None or id(exc) in seen:
            return
        seen.add(id(exc))
        tb, kept = exc.__traceback__, []
        while tb is not None:
            if os.path.abspath(tb.tb_frame.f_code.co_filename) != own:
                kept.append(tb)
            tb = tb.tb_next
        for a, b in itertools.pairwise(kept):
            a.tb_next = b
        if kept:
            kept[-1].tb_next = None
        exc.__traceback__ = kept[0] if kept else None
        strip(exc.__cause__, seen)
        strip(exc.__context__, seen)

    try:
        strip(e, set())
        return "".join(traceback.format_exception(type(e), e, e.__traceback__))
    except Exception:
        return f"{type(e).__name__}: {e}\n"


class _LineReader:
    """Reads JSON lines from the command pipe without Python-level buffering surprises."""

    def __init__(self, f):
        self.f = f
        self.buf = b""

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.f.read(65536)
            if not chunk:
                rest, self.buf = self.buf, b""
                return rest
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def _link_data_files(data_dir: str | None) -> None:
    """The task's files, by name, in the working folder (read-only links): generated code
    opens `sales.csv` as often as `os.path.join(DATA_DIR, "sales.csv")`."""
    if not data_dir or not os.path.isdir(data_dir):
        return
    for name in sorted(os.listdir(data_dir)):
        try:
            os.symlink(os.path.join(data_dir, name), name)
        except OSError:
            pass  # a name taken or a file system without links: DATA_DIR still works


if __name__ == "__main__":
    main()
