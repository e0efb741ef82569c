"""The `search` tool: each query of a call goes to the search service as soon as its string
closes; the call's result lists the hits of every query, in query order.

Also the HTTP client the `plan` tool shares. It finds the service at the spec's `limits.url` or
$CONVEYOR_SEARCH_URL, else starts one in this process on a free loopback port (shared by every
tool of the process, stopped when the last one closes). It never sends a query anywhere else.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from sgl_conveyor.errors import ArgumentRejectedError, ToolExecutionError, ToolTimeoutError
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.tools.builtin.search_service import (
    DEFAULT_LATENCY_MS,
    DEFAULT_LATENCY_SIGMA,
    SearchServer,
)
from sgl_conveyor.tools.spec import ToolSpec
from sgl_conveyor.units.base import Unit

URL_ENV = "CONVEYOR_SEARCH_URL"
LATENCY_ENV = "CONVEYOR_SEARCH_LATENCY_MS"


# --- the shared in-process service -----------------------------------------------------------

_local_lock = threading.Lock()
_local: dict[tuple[float, float, int], tuple[SearchServer, int]] = {}


def _acquire_local(latency_ms: float, sigma: float, seed: int) -> SearchServer:
    key = (latency_ms, sigma, seed)
    with _local_lock:
        server, refs = _local.get(key, (None, 0))
        if server is None:
            server = SearchServer(latency_ms=latency_ms, latency_sigma=sigma, seed=seed).start()
        _local[key] = (server, refs + 1)
        return server


def _release_local(server: SearchServer) -> None:
    with _local_lock:
        for key, (s, refs) in list(_local.items()):
            if s is server:
                if refs > 1:
                    _local[key] = (s, refs - 1)
                    return
                del _local[key]
                break
        else:
            return
    server.stop()


class SearchClient:
    """An HTTP client of the search service, with connection reuse. Thread-safe.

    `url=None` starts (or shares) an in-process service with the given latency.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        latency_ms: float = DEFAULT_LATENCY_MS,
        latency_sigma: float = DEFAULT_LATENCY_SIGMA,
        seed: int = 0,
        timeout_s: float = 10.0,
        connections: int = 8,
    ):
        self._server: SearchServer | None = None
        if url is None:
            self._server = _acquire_local(latency_ms, latency_sigma, seed)
            url = self._server.url
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=connections)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.trust_env = False  # a proxy must never see loopback queries

    @classmethod
    def from_limits(cls, limits: Mapping[str, Any], connections: int = 8) -> SearchClient:
        """The client a tool spec's limits ask for (url, latency_ms, latency_sigma, seed...)."""
        url = limits.get("url") or os.environ.get(URL_ENV) or None
        latency = limits.get("latency_ms", DEFAULT_LATENCY_MS)
        if os.environ.get(LATENCY_ENV):
            latency = float(os.environ[LATENCY_ENV])
        return cls(
            url,
            latency_ms=float(latency),
            latency_sigma=float(limits.get("latency_sigma", DEFAULT_LATENCY_SIGMA)),
            seed=int(limits.get("latency_seed", 0)),
            timeout_s=float(limits.get("request_timeout_s", 10.0)),
            connections=connections,
        )

    def _get(self, path: str, params: Mapping[str, Any]) -> requests.Response:
        try:
            return self._session.get(self.url + path, params=params, timeout=self.timeout_s)
        except requests.Timeout as e:
            raise ToolTimeoutError(
                f"the search service did not answer in {self.timeout_s} s"
            ) from e
        except requests.RequestException as e:
            raise ToolExecutionError(f"cannot reach the search service at {self.url}: {e}") from e

    def warm(self) -> None:
        """Open a connection now, so the first query does not pay for it."""
        r = self._get("/health", {})
        r.raise_for_status()

    def search(self, query: str, k: int = 3) -> list[dict[str, Any]]:
        r = self._get("/search", {"q": query, "k": k})
        if r.status_code != 200:
            raise ToolExecutionError(f"search failed ({r.status_code}): {r.text[:200]}")
        return r.json()["hits"]

    def lookup(self, entity: str, attribute: str) -> dict[str, Any]:
        """One fact; raises LookupError(body) with the service's suggestions when unknown."""
        r = self._get("/lookup", {"entity": entity, "attribute": attribute})
        if r.status_code == 404:
            raise LookupError(r.json())
        if r.status_code != 200:
            raise ToolExecutionError(f"lookup failed ({r.status_code}): {r.text[:200]}")
        return r.json()

    def close(self) -> None:
        self._session.close()
        server, self._server = self._server, None
        if server is not None:
            _release_local(server)


# --- the tool --------------------------------------------------------------------------------


class SearchTool(Tool):
    """`{"queries": [...]}`: each query is a unit, searched as soon as it is complete.

    limits: `top_k` (hits per query), `url`, `latency_ms`, `latency_sigma`, `latency_seed`
    (for the in-process service), `request_timeout_s`.
    """

    def __init__(self, spec: ToolSpec | None = None):
        super().__init__(spec)
        self._client: SearchClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> SearchClient:
        with self._lock:
            if self._client is None:
                self._client = SearchClient.from_limits(
                    self.spec.limits, connections=max(4, self.spec.max_concurrency)
                )
            return self._client

    @property
    def top_k(self) -> int:
        return int(self.spec.limits.get("top_k", 3))

    def start(self, ctx: CallContext) -> None:
        self.client.warm()

    def check_unit(self, unit: Unit, ctx: CallContext) -> None:
        if unit.path.startswith("/queries/") and not str(unit.value).strip():
            raise ArgumentRejectedError(
                "a search query must not be empty", tool=self.spec.name, unit=unit.path
            )

    def run_unit(self, unit: Unit, ctx: CallContext) -> dict[str, Any] | None:
        if not unit.path.startswith("/queries/"):
            return None
        ctx.check()
        return self._search(str(unit.value))

    def _search(self, query: str) -> dict[str, Any]:
        hits = self.client.search(query, self.top_k)
        return {
            "query": query,
            "hits": [{k: h[k] for k in ("title", "snippet", "score")} for h in hits],
        }

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> Any:
        queries = list(arguments["queries"])
        done: dict[int, dict[str, Any]] = {}
        for r in results:
            if r.ok and isinstance(r.value, Mapping) and r.unit.path.startswith("/queries/"):
                i = int(r.unit.path.rsplit("/", 1)[1])
                if i < len(queries) and r.value.get("query") == queries[i]:
                    done[i] = dict(r.value)
        missing = [i for i in range(len(queries)) if i not in done]
        if missing:
            # Queries no unit ran (sequential mode): all at once, as any search client would.
            ctx.check()
            with ThreadPoolExecutor(min(len(missing), 8), thread_name_prefix="search") as pool:
                found = pool.map(self._search, [queries[i] for i in missing])
                for i, res in zip(missing, found, strict=True):
                    done[i] = res
        return {"results": [done[i] for i in range(len(queries))]}

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
