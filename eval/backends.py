"""The one place that turns a `--backend` into a model backend: `sgl-conveyor demo` and
`sgl-conveyor eval` both ask here, so a new backend is one module plus one branch below.

Replay is not here: each caller replays its own recorded trace (the demo's, a workload's).
"""

from __future__ import annotations

from typing import Any

LIVE_KINDS = "local, the URL of an SGLang server (http://host:port) or openai:URL with --model"


def live_backend(spec: str, *, model: str | None = None) -> Any:
    """The backend `spec` names: `local` (the embedded model, or `model` as its folder or
    .gguf), an SGLang server's URL, or `openai:URL` (an OpenAI-compatible chat API, asking for
    `model`). ValueError for anything else."""
    if spec == "local":
        from sgl_conveyor.backends.local import default_backend

        return default_backend(model=model) if model else default_backend()
    if spec.startswith(("http://", "https://")):
        from sgl_conveyor.backends.sglang_server import ConveyorEndpoint

        return ConveyorEndpoint(spec)
    if spec.startswith("openai:"):
        from .chat_runs import ChatBackend

        return ChatBackend.parse(spec, model)
    raise ValueError(f"unknown backend {spec!r}: use replay, {LIVE_KINDS}")
