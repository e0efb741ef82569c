"""A real peer server for the chat path: vLLM's CPU build serving the embedded model.

It starts `python -m vllm.entrypoints.openai.api_server` from vLLM's own environment (never
this one: vLLM brings its own torch and transformers) on the converted SmolLM2 folder, with
the hermes tool-call parser, prefix caching and cached-token reporting, and stops it again. Its
scratch files (compile cache, sockets) stay in a temporary folder, removed at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

SERVED_NAME = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeerError(RuntimeError):
    """The peer server could not be started or did not become ready."""


class VllmServer:
    """`with VllmServer(python, model_dir, template) as server:` then `server.base_url`."""

    def __init__(
        self,
        python: str | os.PathLike[str],
        model_dir: str | os.PathLike[str],
        chat_template: str | os.PathLike[str],
        *,
        port: int | None = None,
        ready_timeout_s: float = 420.0,
        max_model_len: int = 2048,
    ):
        self.python = str(python)
        self.model_dir = str(model_dir)
        self.chat_template = str(chat_template)
        self.port = port or free_port()
        self.ready_timeout_s = ready_timeout_s
        self.max_model_len = max_model_len
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._proc: subprocess.Popen[bytes] | None = None
        self._scratch: Path | None = None
        self.log_path: Path | None = None
        self.ready_s: float | None = None

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_dir,
            "--served-model-name",
            SERVED_NAME,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-model-len",
            str(self.max_model_len),
            "--dtype",
            "float32",
            "--enforce-eager",  # torch.compile takes minutes, again on every start
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "hermes",
            "--chat-template",
            self.chat_template,
            "--enable-prefix-caching",
            "--enable-prompt-tokens-details",
        ]

    def __enter__(self) -> VllmServer:
        self._scratch = Path(tempfile.mkdtemp(prefix="sgl-conveyor-vllm-"))
        for sub in ("cache", "tmp"):
            (self._scratch / sub).mkdir()
        env = dict(os.environ)
        env.update(
            VLLM_CPU_KVCACHE_SPACE="1",
            VLLM_CACHE_ROOT=str(self._scratch / "cache"),
            TMPDIR=str(self._scratch / "tmp"),
            HF_HUB_OFFLINE="1",
            VLLM_SERVER_DEV_MODE="1",  # POST /reset_prefix_cache: each eval run starts cold
            TRANSFORMERS_OFFLINE="1",
        )
        env.pop("PYTHONPATH", None)
        self.log_path = self._scratch / "vllm.log"
        log = open(self.log_path, "wb")  # the child writes to it until stop
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.ready_s = time.monotonic() - t0
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        url = f"http://127.0.0.1:{self.port}/v1/models"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PeerError(f"vLLM exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(1.0)
        raise PeerError(f"vLLM was not ready within {self.ready_timeout_s:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
