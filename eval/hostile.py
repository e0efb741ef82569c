"""The soak's hostile mode: generated code that attacks the sandbox, clients that attack `serve`.

Each attack is judged from the host's side, never from what the attacker reports about itself:
it is *contained* when it got a clear error or nothing, and an *escape* when the host read,
wrote, connected to or followed what it must not, or stopped answering. The sandbox attacks run
as partial-tool programs through the soak's `run_batch`; the `serve` attacks are real HTTP
clients on loopback against a real `serve` (see `serve_attacks`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgl_conveyor.paths import cache_root

# The sandbox limits of the soak's python tool in hostile mode: small enough that the memory
# and disk attacks hit them at once, and nothing near the machine's own size.
HOSTILE_LIMITS = {"total_memory_mb": 600, "max_disk_mb": 32, "memory_mb": 1024}


@dataclass
class Attack:
    """One attack: the generated code, and how the host tells containment from an escape."""

    name: str
    code: str
    judge: Callable[[Any], tuple[bool, str]]  # result of the call -> (contained, detail)


@dataclass
class AttackLog:
    contained: list[str] = field(default_factory=list)
    escapes: list[str] = field(default_factory=list)

    def add(self, name: str, contained: bool, detail: str) -> None:
        (self.contained if contained else self.escapes).append(f"{name}: {detail}")


class SandboxAttacks:
    """The attacks on the sandbox, with what the host sets up to catch them (a Unix socket it
    listens on, a scan of the caches it shares with later sandboxes)."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="conveyor-hostile-"))
        self.socket_path = str(self._dir / "host.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.socket_path)
        self._server.listen(8)
        self._server.settimeout(0.2)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hostile-unix", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1  # any connection from a sandbox is an escape
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._server.close()
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
            self._dir.rmdir()

    def attacks(self) -> list[Attack]:
        def printed(marker: str) -> Callable[[Any], tuple[bool, str]]:
            def judge(result: Any) -> tuple[bool, str]:
                text = str(result)
                return marker not in text, text.strip().splitlines()[-1][:120] if text else ""

            return judge

        return [
            Attack(
                "font cache symlinked to the host's environment",
                "import os\n"
                "d = os.environ.get('MPLCONFIGDIR', '.')\n"
                "for n in ('fontlist-v390.json', 'fontlist-v3.11.0.json', 'fontlist-v330.json'):\n"
                "    p = os.path.join(d, n)\n"
                "    try:\n"
                "        os.remove(p)\n"
                "    except OSError:\n"
                "        pass\n"
                "    os.symlink('/proc/self/environ', p)\n"
                "print('planted')\n",
                lambda result: (True, "judged after the batch, from the host's caches"),
            ),
            Attack(
                "connect to a host Unix socket",
                "import socket\n"
                "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                f"s.connect({self.socket_path!r})\n"
                "print('ESCAPED-UNIX')\n",
                lambda result: (
                    "ESCAPED-UNIX" not in str(result),
                    "judged by the host's listener too",
                ),
            ),
            Attack(
                "forge the reply of a later statement",
                "import sys, json\n"
                "guess = [a for a in sys.argv if len(a) > 8]\n"
                "for n in guess + ['x' * 16]:\n"
                "    for i in range(1, 6):\n"
                "        f = {'id': i, 'status': 'ok', 'error': None, 'elapsed_s': 0}\n"
                "        sys.stdout.write('\\x1e' + n + ' ' + json.dumps(f) + '\\n')\n"
                "sys.stdout.flush()\n"
                "raise ValueError('the real outcome of this statement')\n",
                lambda result: (
                    "ValueError" in str(result),
                    "the raising statement was reported as it ran"
                    if "ValueError" in str(result)
                    else "a forged frame hid the error",
                ),
            ),
            Attack(
                "memory across processes",
                "import os\n"
                "kids = []\n"
                "for _ in range(4):\n"
                "    pid = os.fork()\n"
                "    if pid == 0:\n"
                "        b = bytearray(250 * 2**20)\n"
                "        for i in range(0, len(b), 4096):\n"
                "            b[i] = 1\n"
                "        os._exit(0)\n"
                "    kids.append(pid)\n"
                "codes = [os.waitpid(p, 0)[1] for p in kids]\n"
                "print('ALL-LIVED' if codes == [0, 0, 0, 0] else 'capped', codes)\n",
                printed("ALL-LIVED"),
            ),
            Attack(
                "fill the disk",
                "n = 0\n"
                "try:\n"
                "    for i in range(12):\n"
                "        with open(f'fill{i}.bin', 'wb') as f:\n"
                "            f.write(b'x' * 8 * 2**20)\n"
                "        n += 1\n"
                "except OSError as e:\n"
                "    print('capped', n, type(e).__name__)\n"
                "print('ALL-WRITTEN' if n == 12 else 'stopped', n)\n",
                printed("ALL-WRITTEN"),
            ),
        ]

    def judge_host(self, log: AttackLog) -> None:
        """What only the host can see: connections it accepted, and whether any cache it shares
        with later sandboxes holds a line of its own environment."""
        if self.accepted:
            log.add("connect to a host Unix socket (host)", False, f"{self.accepted} accepted")
        environ = Path("/proc/self/environ").read_bytes().split(b"\0")
        marks = [e for e in environ if len(e) > 24]
        leaked = []
        root = cache_root()
        for p in root.rglob("fontlist-*.json") if root.exists() else ():
            with contextlib.suppress(OSError):
                if p.is_file() and not p.is_symlink():
                    data = p.read_bytes()[: 4 * 2**20]
                    if any(m in data for m in marks):
                        leaked.append(str(p.relative_to(root)))
        log.add(
            "font cache symlinked to the host's environment (host)",
            not leaked,
            f"host environment in {leaked}" if leaked else "no shared cache holds it",
        )


# --- serve ------------------------------------------------------------------------------------


def _raw(port: int, payload: bytes, *, read: bool = True, timeout: float = 10.0) -> bytes:
    """Send `payload` (as a hostile client does: all of it, whatever the server says) and read
    what comes back. A server that answers and closes early resets the rest of the send: what
    it answered before that still counts."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        chunks = []
        try:
            for i in range(0, len(payload), 2**20):
                s.sendall(payload[i : i + 2**20])
        except OSError:
            pass  # refused mid-body: read the answer that came before the reset
        if not read:
            return b""
        with contextlib.suppress(TimeoutError, OSError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _status(response: bytes) -> int | None:
    try:
        return int(response.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def _post(path: str, body: bytes, port: int, extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode()
    return _raw(port, head + body)


def serve_attacks(url: str, log: AttackLog, health_within_s: float = 5.0) -> None:
    """Hostile HTTP clients against a running `serve`: each must get a 4xx (never a 500 or a
    hang), and `/health` must answer within `health_within_s` after each."""
    port = int(url.rsplit(":", 1)[1])

    def healthy() -> tuple[bool, float]:
        t0 = time.monotonic()
        try:
            ok = (
                _status(
                    _raw(
                        port,
                        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        timeout=health_within_s,
                    )
                )
                == 200
            )
        except OSError:
            ok = False
        return ok, time.monotonic() - t0

    def expect_4xx(name: str, response: bytes) -> None:
        code = _status(response)
        ok, took = healthy()
        contained = code is not None and 400 <= code < 500 and ok
        log.add(
            f"serve: {name}",
            contained,
            f"status {code}, /health {'ok' if ok else 'DOWN'} in {took:.2f} s",
        )

    big = b'{"text": "' + b"a" * (50 * 2**20) + b'", "sampling_params": {"max_new_tokens": 1}}'
    expect_4xx("a 50 MB prompt", _post("/generate", big, port))
    for name, body in [
        ("sampling_params as a list", {"text": "hi", "sampling_params": [1, 2]}),
        ("stop as a number", {"text": "hi", "sampling_params": {"stop": 5}}),
        ("n as text", {"text": "hi", "sampling_params": {"n": "x"}}),
        ("a dict as rid", {"text": "hi", "rid": {"a": 1}}),
        ("input_ids out of the vocabulary", {"input_ids": [10**9, -1]}),
        ("max_new_tokens of 1e9", {"text": "hi", "sampling_params": {"max_new_tokens": 10**9}}),
        ("n of a million", {"text": "hi", "sampling_params": {"n": 10**6}}),
        (
            "a self-referencing schema",
            {"text": "hi", "sampling_params": {"json_schema": json.dumps({"$ref": "#"})}},
        ),
        ("an impossible regex", {"text": "hi", "sampling_params": {"regex": "(("}}),
    ]:
        expect_4xx(name, _post("/generate", json.dumps(body).encode(), port))
    deep = b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    expect_4xx("a body nested 100k deep", _post("/generate", deep, port))
    expect_4xx("not JSON", _post("/generate", b"{not json", port))

    # A client that sends half a body and goes away; one that sends half and then idles.
    head = (
        b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    _raw(port, head + b'{"text": "half', read=False)
    ok, _ = healthy()
    log.add("serve: a body cut by a disconnect", ok, f"/health {'ok' if ok else 'DOWN'}")
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(head + b'{"text": "slow')
        s.settimeout(120)
        try:
            closed = s.recv(65536) is not None
        except OSError:
            closed = True
    waited = time.monotonic() - t0
    log.add(
        "serve: a client that sends half a body and idles",
        closed and waited < 30,
        f"the server closed it after {waited:.1f} s",
    )
