"""Opening the stream of a tool call on any backend, in a way that can be stopped.

The partial-tool node stops decoding the moment a call is complete or doomed, by closing the
iterator this returns. Backends of this project stop within one decoding step when their
generator is closed; sglang's own RuntimeEndpoint is routed through a client that sends a
request id and aborts the request on the server (see `sglang_server`). The request id asks
the server to keep the call's prefix hot until the program's next request (see `pinning`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sgl_conveyor.backends.pinning import call_rid


def open_call_stream(backend: Any, exe: Any, sampling_params: Any) -> Iterator[tuple[str, dict]]:
    """An iterator of (text delta, meta info) for the prompt in `exe`, closable at any time."""
    from sglang.lang.backend.runtime_endpoint import RuntimeEndpoint

    if isinstance(backend, RuntimeEndpoint):
        from sgl_conveyor.backends.sglang_server import stream_generate

        return stream_generate(backend, exe, sampling_params, rid=call_rid())
    if getattr(backend, "pins_by_rid", False):
        return iter(backend.generate_stream(exe, sampling_params=sampling_params, rid=call_rid()))
    return iter(backend.generate_stream(exe, sampling_params=sampling_params))
