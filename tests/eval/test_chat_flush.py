"""The eval empties a chat server's prefix cache before each run, by whichever route the
server has (SGLang/serve: /flush_cache; vLLM: /reset_prefix_cache), over real HTTP."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sgl_conveyor.eval.chat_runs import ChatBackend


def _server(routes: set[str]) -> tuple[ThreadingHTTPServer, list[str]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(200 if self.path in routes else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, hits


@pytest.mark.parametrize(
    ("routes", "flushed", "second"),
    [
        ({"/flush_cache"}, True, ["/flush_cache"]),
        ({"/reset_prefix_cache"}, True, ["/reset_prefix_cache"]),
        (set(), False, []),  # a provider: nothing to flush, and never asked again
    ],
)
def test_flush_uses_the_route_the_server_has(routes, flushed, second):
    httpd, hits = _server(routes)
    try:
        backend = ChatBackend.parse(f"openai:http://127.0.0.1:{httpd.server_port}", "m")
        assert backend.flush_cache() is flushed
        hits.clear()
        assert backend.flush_cache() is flushed
        assert hits == second
    finally:
        httpd.shutdown()
        httpd.server_close()
