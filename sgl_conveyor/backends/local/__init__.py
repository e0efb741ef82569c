"""The embedded default backend: a real small model (SmolLM2-135M-Instruct) run in-process.

    from sgl_conveyor.backends.local import default_backend
    state = program.run(backend=default_backend())

`LocalBackend` is an sglang frontend backend; `Engine` is the scheduler it runs on (the API an
HTTP server builds on); `RadixCache` is the prefix cache; `load_tokenizer` gives the model's
tokenizer without loading the model. Importing this package loads neither torch nor the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sgl_conveyor.backends.local.model_store import load_tokenizer
from sgl_conveyor.backends.local.radix_cache import RadixCache

if TYPE_CHECKING:
    from sgl_conveyor.backends.local.backend import LocalBackend
    from sgl_conveyor.backends.local.engine import Engine, Event, RequestHandle
    from sgl_conveyor.backends.local.sampling import SamplingParams

__all__ = [
    "Engine",
    "Event",
    "LocalBackend",
    "RadixCache",
    "RequestHandle",
    "SamplingParams",
    "default_backend",
    "load_tokenizer",
]

_LAZY = {
    "LocalBackend": "sgl_conveyor.backends.local.backend",
    "Engine": "sgl_conveyor.backends.local.engine",
    "Event": "sgl_conveyor.backends.local.engine",
    "RequestHandle": "sgl_conveyor.backends.local.engine",
    "SamplingParams": "sgl_conveyor.backends.local.sampling",
}


def default_backend(**options: Any) -> LocalBackend:
    """The process-wide `LocalBackend` (one per distinct set of options)."""
    from sgl_conveyor.backends.local.backend import default_backend as _default

    return _default(**options)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
