"""SGLang's own router in front of `sgl-conveyor serve` workers, on loopback: start and stop.

Each worker is a separate `sgl-conveyor serve` process on the embedded model; the router is
`python -m sglang_router.launch_router` from the `sglang-router` package (the `router` extra),
exactly as it runs in front of SGLang servers. Used by the router test and the scale-out
benchmarks. Everything started here is stopped by `Cluster.close()`, and only that.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def router_available() -> bool:
    """Whether the `sglang-router` package (with the launcher's imports) is installed."""
    try:
        import sglang_router.launch_router  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Cluster:
    """Worker processes and at most one router process, with their URLs and logs."""

    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sgl-router-")))
    workers: list[str] = field(default_factory=list)
    router: str | None = None
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _router_proc: subprocess.Popen[bytes] | None = None

    def start_workers(
        self,
        n: int,
        *,
        serve_args: Sequence[str] = (),
        threads: int | None = None,
        timeout: float = 180.0,
    ) -> list[str]:
        """Start `n` `sgl-conveyor serve` workers; returns their URLs once they answer.
        `threads`: torch threads per worker (None: torch's default, all cores)."""
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        urls = []
        for _ in range(n):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log = open(self.log_dir / f"worker-{port}.log", "wb")  # noqa: SIM115 (kept open)
            cmd = [sys.executable, "-m", "sgl_conveyor.cli", "serve", "--port", str(port)]
            proc = subprocess.Popen([*cmd, *serve_args], stdout=log, stderr=log, env=env)
            self._procs.append(proc)
            urls.append(url)
        for url, proc in zip(urls, self._procs[-n:], strict=True):
            _wait(lambda u=url: requests.get(u + "/health", timeout=2).ok, proc, timeout, url)
        self.workers.extend(urls)
        return urls

    def start_router(
        self,
        worker_urls: Sequence[str],
        policy: str = "cache_aware",
        *,
        router_args: Sequence[str] = (),
        timeout: float = 60.0,
    ) -> str:
        """Start the router in front of `worker_urls`; returns its URL once every worker is
        registered and healthy. (Its Prometheus exporter gets a free port of its own: the
        default, 29000, cannot be shared by two routers.)"""
        if self._router_proc is not None:
            raise RuntimeError("this cluster already runs a router: stop_router() first")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(self.log_dir / f"router-{port}.log", "wb")  # noqa: SIM115 (kept open)
        cmd = [
            sys.executable,
            "-m",
            "sglang_router.launch_router",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--worker-urls",
            *worker_urls,
            "--policy",
            policy,
            "--prometheus-port",
            str(free_port()),
            "--log-level",
            "warn",
            *router_args,
        ]
        self._router_proc = subprocess.Popen(cmd, stdout=log, stderr=log)

        def ready() -> bool:
            listed = requests.get(url + "/workers", timeout=2).json().get("workers", [])
            healthy = {w["url"] for w in listed if w.get("is_healthy")}
            return healthy == set(worker_urls)

        _wait(ready, self._router_proc, timeout, url)
        self.router = url
        return url

    def stop_router(self) -> None:
        if self._router_proc is not None:
            _stop(self._router_proc)
        self._router_proc = None
        self.router = None

    def close(self) -> None:
        self.stop_router()
        for proc in self._procs:
            _stop(proc)
        self._procs.clear()
        self.workers.clear()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that a terminated benchmark still stops what it started
    (Python's default for SIGTERM skips every `finally`)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def worker_stats(url: str) -> dict[str, Any]:
    """A worker's engine counters (requests, tokens, aborts, pins...), from its /server_info
    (asked of the worker itself: the router answers /get_server_info on its own)."""
    return requests.get(url + "/server_info", timeout=10).json()["internal_states"][0]


def wait_idle(urls: Sequence[str], timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every worker's stats once none runs or queues a request."""
    deadline = time.monotonic() + timeout
    while True:
        stats = [worker_stats(u) for u in urls]
        if all(s["running"] == 0 and s["waiting"] == 0 for s in stats):
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers still busy: {stats}")
        time.sleep(0.05)


def _wait(check: Any, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready")
        try:
            if check():
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} was not ready within {timeout:g} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
