"""A loopback HTTP server that speaks the streaming `/v1/chat/completions` protocol (`data:
{json}` events, then `data: [DONE]`) and replays scripted chunks: the test double for a server
that cannot run here, speaking the real protocol to the real `openai` client.

A script is a list of steps: an SDK chunk (sent as its JSON), `Gate(event)` (wait until a test
event is set before going on: proves what the client did before the rest was sent),
`AwaitDisconnect()` (wait until the client closes the connection, and record it), `Cut()`
(close the connection without `[DONE]`), `ErrorEvent(...)` (an error in the stream) or, as the
whole script, `HttpError(status, message)`. Every step sent is logged with an order number
shared with the test's own log, so tests assert order, never timing.
"""

from __future__ import annotations

import itertools
import json
import select
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openai.types.chat import ChatCompletionChunk

WAIT_S = 15.0  # a gate or a disconnect that never comes fails the test, never hangs it


@dataclass
class Gate:
    event: threading.Event
    name: str = "gate"


@dataclass
class AwaitDisconnect:
    pass


@dataclass
class Cut:
    pass


@dataclass
class ErrorEvent:
    message: str = "the server failed mid-stream"


@dataclass
class HttpError:
    status: int
    message: str


class EventLog:
    """An ordered log shared by the server thread, the tools and the test."""

    def __init__(self) -> None:
        self._n = itertools.count()
        self._lock = threading.Lock()
        self.entries: list[tuple[int, str, Any]] = []

    def add(self, kind: str, value: Any = None) -> int:
        with self._lock:
            n = next(self._n)
            self.entries.append((n, kind, value))
            return n

    def first(self, kind: str, value: Any = None) -> int | None:
        for n, k, v in self.entries:
            if k == kind and (value is None or v == value):
                return n
        return None

    def kinds(self) -> list[str]:
        return [k for _, k, _ in self.entries]


@dataclass
class ScriptedChatServer:
    """Serves the scripts in order, one per request; records each request's JSON body."""

    log: EventLog = field(default_factory=EventLog)
    scripts: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnected: list[bool] = field(default_factory=list)
    on_request: Callable[[dict[str, Any]], Any] | None = None  # request -> script (optional)

    def __post_init__(self) -> None:
        self._ended = threading.Condition()
        handler = _handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def push(self, *scripts: Sequence[Any] | HttpError) -> None:
        self.scripts.extend(scripts)

    def next_script(self, request: dict[str, Any]) -> Any:
        if self.on_request is not None:
            return self.on_request(request)
        if not self.scripts:
            return HttpError(500, "the test gave no script for this request")
        return self.scripts.pop(0)

    def ended(self, n: int) -> list[bool]:
        """Whether the client had disconnected, for each of the first `n` streamed responses,
        once the server has finished them (a client that closes its end returns before the
        server's thread notices)."""
        with self._ended:
            if not self._ended.wait_for(lambda: len(self.disconnected) >= n, WAIT_S):
                raise TimeoutError(f"{len(self.disconnected)} of {n} responses ended")
            return self.disconnected[:n]

    def _record_end(self, disconnected: bool) -> None:
        with self._ended:
            self.disconnected.append(disconnected)
            self._ended.notify_all()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: ScriptedChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._json(404, {"error": {"message": f"no route {self.path}"}})
            request = json.loads(body or b"{}")
            server.requests.append(request)
            server.log.add("request", len(server.requests) - 1)
            script = server.next_script(request)
            if isinstance(script, HttpError):
                err = {"message": script.message, "type": "invalid_request_error", "code": None}
                return self._json(script.status, {"error": err})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            disconnected = False
            try:
                for step in script:
                    if isinstance(step, Gate):
                        server.log.add("gate_wait", step.name)
                        opened = step.event.wait(WAIT_S)
                        server.log.add("gate_open" if opened else "gate_timeout", step.name)
                    elif isinstance(step, AwaitDisconnect):
                        disconnected = self._await_disconnect()
                        server.log.add("disconnected" if disconnected else "still_connected")
                        if disconnected:
                            break
                    elif isinstance(step, Cut):
                        server.log.add("cut")
                        break
                    elif isinstance(step, ErrorEvent):
                        self._event({"error": {"message": step.message, "type": "server_error"}})
                        server.log.add("error_event")
                    else:
                        self._event(_wire(step))
                        server.log.add("sent", _describe(step))
                else:
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    server.log.add("done")
            except (BrokenPipeError, ConnectionResetError):
                disconnected = True
                server.log.add("disconnected")
            server._record_end(disconnected)

        def _await_disconnect(self) -> bool:
            """True once the client closed the connection (EOF or reset on our side)."""
            sock = self.connection
            readable, _, _ = select.select([sock], [], [], WAIT_S)
            if not readable:
                return False
            try:
                return sock.recv(1) == b""
            except OSError:
                return True

        def _event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _wire(step: ChatCompletionChunk | dict[str, Any]) -> dict[str, Any]:
    if isinstance(step, ChatCompletionChunk):
        return step.model_dump(mode="json", exclude_unset=True)
    return step


def _describe(step: Any) -> Any:
    """What the log says of a sent chunk: its finish reason, if it has one."""
    if isinstance(step, ChatCompletionChunk) and step.choices:
        return step.choices[0].finish_reason or "chunk"
    return "chunk"
