"""The search service behind the `search` and `plan` tools: BM25 over the bundled corpus (SQLite
FTS5), served over HTTP on loopback with an added, seeded network latency.

Endpoints: GET /search?q=..&k=.., GET /lookup?entity=..&attribute=.., GET /doc?id=.., GET /health.
Run it alone with `python -m sgl_conveyor.tools.builtin.search_service --port P`. It binds only
to loopback unless told otherwise, never writes to disk, and never reaches the network.

Latency: each /search and /lookup answer is delayed by `latency_ms * exp(N(0, sigma))` (median
`latency_ms`). The default, 400 ms median with sigma 0.6 (p95 about 2.7x the median), is an
assumption, not our measurement: it sits in the middle of the p50 figures a search-API vendor
publishes for commercial web-search APIs (Brave 250 ms, Serper 400 ms, Exa 600 ms, Tavily 800 ms,
SerpAPI 1,200 ms; p95 2.7-2.9x p50; scavio.dev glossary "Search API latency budget", 2026,
vendor-reported). Set latency_ms to 0 for none.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import math
import random
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sgl_conveyor.tools.builtin.bundled import data_path, missing_data

CORPUS = "search/corpus.jsonl"
DEFAULT_LATENCY_MS = 400.0
DEFAULT_LATENCY_SIGMA = 0.6
MAX_QUERY_CHARS = 200

_STOPWORDS = frozenset(
    (
        *("a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "did", "for", "from"),
        *("has", "have", "how", "in", "is", "it", "its", "many", "much", "of", "on", "or"),
        *("that", "the", "this", "to", "was", "what", "when", "where", "which", "who", "whom"),
        *("why", "with"),
    )
)
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])")


def _stem(token: str) -> str:
    t = token.lower()
    return t[:-1] if len(t) > 3 and t.endswith("s") else t


_SYMBOL_WORDS = (("c++", "cplusplus"), ("c#", "csharp"), ("f#", "fsharp"))


def _searchable(text: str) -> str:
    """Text as the tokenizer should see it: "C++" and "C#" would otherwise both become "c"."""
    low = text.lower()
    for sym, word in _SYMBOL_WORDS:
        if sym in low:
            low = low.replace(sym, f" {word} ")
    return low


def _norm_title(title: str) -> str:
    return " ".join(_WORD.findall(title.lower()))


# --- the index -------------------------------------------------------------------------------


class SearchIndex:
    """The corpus in an in-memory SQLite FTS5 table (porter stemming, BM25), plus its facts.

    Thread-safe: one connection, used under a lock (a query takes well under a millisecond).
    """

    def __init__(self, corpus: str | Path | None = None):
        path = Path(corpus) if corpus else data_path(CORPUS)
        if not path.exists():
            raise missing_data(path, "sgl_conveyor.eval.data.gen_corpus")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5("
            "title, text, id UNINDEXED, tokenize = 'porter unicode61')"
        )
        self.docs: dict[str, dict[str, Any]] = {}
        self._by_title: dict[str, list[str]] = {}
        rows = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                self.docs[d["id"]] = d
                rows.append((_searchable(d["title"]), _searchable(d["text"]), d["id"]))
                for key in {_norm_title(d["title"]), _norm_title(d["title"].split(" (")[0])}:
                    self._by_title.setdefault(key, []).append(d["id"])
        self._db.executemany("INSERT INTO docs (title, text, id) VALUES (?, ?, ?)", rows)
        self._db.commit()

    def __len__(self) -> int:
        return len(self.docs)

    def search(self, query: str, k: int = 3) -> list[dict[str, Any]]:
        """The k best documents for a free-text query: title, best sentence, score."""
        words = _WORD.findall(_searchable(query))
        tokens = [t for t in words if t not in _STOPWORDS] or words
        if not tokens:
            return []
        match = " OR ".join('"' + t.replace('"', "") + '"' for t in dict.fromkeys(tokens))
        with self._lock:
            found = self._db.execute(
                "SELECT id, bm25(docs, 4.0, 1.0) AS s FROM docs WHERE docs MATCH ? "
                "ORDER BY s LIMIT ?",
                (match, max(1, min(int(k), 20))),
            ).fetchall()
        stems = {_stem(t) for t in tokens}
        hits = []
        for doc_id, score in found:
            d = self.docs[doc_id]
            hits.append(
                {
                    "id": doc_id,
                    "title": d["title"],
                    "snippet": best_sentence(d["text"], stems, d["title"]),
                    "score": round(-score, 3),
                }
            )
        return hits

    def resolve(self, entity: str) -> list[str]:
        """Document ids whose title is `entity` (ignoring case, punctuation, a parenthetical)."""
        return list(self._by_title.get(_norm_title(entity), []))

    def lookup(self, entity: str, attribute: str) -> dict[str, Any]:
        """One fact of one entity. Raises LookupError with what to try instead."""
        ids = self.resolve(entity)
        if not ids:
            hits = self.search(entity, 3)
            close = difflib.get_close_matches(
                _norm_title(entity), list(self._by_title), n=3, cutoff=0.75
            )
            if close:
                ids = self._by_title[close[0]]
            elif hits and _norm_title(entity) in _norm_title(hits[0]["title"]):
                ids = [hits[0]["id"]]
            else:
                raise LookupError(
                    {
                        "error": f"no entity named {entity!r}",
                        "suggestions": [h["title"] for h in hits],
                    }
                )
        d = self.docs[ids[0]]
        key = attribute_key(attribute, d["facts"])
        if key is None:
            raise LookupError(
                {
                    "error": f"{d['title']} has no attribute {attribute!r}",
                    "attributes": sorted(d["facts"]),
                }
            )
        return {"entity": d["title"], "attribute": key, "value": d["facts"][key], "id": d["id"]}


_ATTRIBUTE_SYNONYMS = {
    "market_cap": "market_cap_usd_bn",
    "market_capitalization": "market_cap_usd_bn",
    "market_value": "market_cap_usd_bn",
    "valuation": "market_cap_usd_bn",
    "height": "height_m",
    "elevation": "height_m",
    "altitude": "height_m",
    "length": "length_km",
    "area": "area_km2",
    "size": "area_km2",
    "inhabitants": "population",
    "people": "population",
    "founding_year": "founded",
    "year_founded": "founded",
    "foundation": "founded",
    "founder": "founders",
    "hq": "headquarters",
    "headquarter": "headquarters",
    "created_by": "creator",
    "designer": "creator",
    "inventor": "creator",
    "first_appeared": "year",
    "release_year": "year",
    "atomic_weight": "atomic_mass",
    "mass": "atomic_mass",
    "number": "atomic_number",
    "staff": "employees",
    "workers": "employees",
    "revenue": "revenue_usd_m",
    "version": "latest_version",
    "released": "first_release",
}


def attribute_key(attribute: str, facts: Mapping[str, Any]) -> str | None:
    """The fact key an attribute name means, for this entity's facts (None: no such fact)."""
    a = re.sub(r"[^a-z0-9]+", "_", attribute.lower()).strip("_")
    for cand in (a, _ATTRIBUTE_SYNONYMS.get(a), a.rstrip("s")):
        if cand and cand in facts:
            return cand
    for key in facts:
        if key.startswith(a) and a:
            return key
    close = difflib.get_close_matches(a, list(facts), n=1, cutoff=0.8)
    return close[0] if close else None


def best_sentence(text: str, stems: set[str], title: str = "") -> str:
    """The sentence of `text` that best matches the query (the first on ties).

    Query words that are not in the title count double: the title is shown with the hit anyway,
    and "Paris population" asks for the sentence about the population.
    """
    named = {_stem(t) for t in _WORD.findall(_searchable(title))}
    sentences = _SENTENCE_END.split(text)
    best, best_n = sentences[0], -1
    for s in sentences:
        words = {_stem(t) for t in _WORD.findall(_searchable(s))} & stems
        n = 2 * len(words - named) + len(words & named)
        if n > best_n:
            best, best_n = s, n
    return best


# --- latency ---------------------------------------------------------------------------------


@dataclass
class Latency:
    """Added response delay: median `ms`, lognormal spread `sigma`, seeded.

    The delay of a request is a function of (seed, request): the same query always waits the
    same time, so runs of one task in different modes meet identical tool times (a paired
    comparison), while different queries still spread like a real API's latencies.
    """

    ms: float = DEFAULT_LATENCY_MS
    sigma: float = DEFAULT_LATENCY_SIGMA
    seed: int = 0

    def sample(self, key: str = "") -> float:
        """The delay of the request identified by `key`, in seconds."""
        if self.ms <= 0:
            return 0.0
        z = 0.0
        if self.sigma > 0:
            digest = hashlib.sha256(f"{self.seed}\0{key}".encode()).digest()
            z = random.Random(int.from_bytes(digest[:8], "big")).gauss(0.0, 1.0)
        return self.ms * math.exp(self.sigma * z) / 1000.0


# --- HTTP ------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connection
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 30  # an idle keep-alive connection is closed after this many seconds

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the service runs inside test and eval processes

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        index = self.server.index
        try:
            if url.path == "/health":
                self._send(200, {"ok": True, "documents": len(index)})
                return
            if url.path == "/doc":
                d = index.docs.get(q.get("id", ""))
                self._delay()
                self._send(200 if d else 404, d or {"error": "no such document"})
                return
            if url.path == "/search":
                query = q.get("q", "")[:MAX_QUERY_CHARS]
                t0 = time.perf_counter()
                hits = index.search(query, int(q.get("k", "3")))
                took = (time.perf_counter() - t0) * 1000
                self._delay()
                self._send(200, {"query": query, "hits": hits, "took_ms": round(took, 3)})
                return
            if url.path == "/lookup":
                try:
                    body = index.lookup(q.get("entity", ""), q.get("attribute", ""))
                    status = 200
                except LookupError as e:
                    body, status = e.args[0], 404
                self._delay()
                self._send(status, body)
                return
            self._send(404, {"error": f"unknown path {url.path}"})
        except (ValueError, sqlite3.Error) as e:
            self._send(400, {"error": str(e)})

    def _delay(self) -> None:
        self.server.stopping.wait(self.server.latency.sample(self.path))

    def _send(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    # Daemon request threads: a program that never stops the service must not wait out its
    # clients' keep-alive at exit. server_close() still joins them (block_on_close).
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], index: SearchIndex, latency: Latency):
        super().__init__(address, _Handler)
        self.index = index
        self.latency = latency
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


class SearchServer:
    """The search service on a loopback port, in this process. `start()`, then `stop()`.

    Usable as a context manager. Port 0 picks a free port; `url` says where it listens.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = DEFAULT_LATENCY_MS,
        latency_sigma: float = DEFAULT_LATENCY_SIGMA,
        seed: int = 0,
        corpus: str | Path | None = None,
        index: SearchIndex | None = None,
    ):
        self.host = host
        self.port = port
        self.latency = Latency(latency_ms, latency_sigma, seed)
        self._corpus = corpus
        self._index = index
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the search server is not running")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> SearchServer:
        if self._server is not None:
            return self
        index = self._index or SearchIndex(self._corpus)
        self._server = _Server((self.host, self.port), index, self.latency)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"search-service-{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close client connections, and join every server thread."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> SearchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS)
    p.add_argument("--latency-sigma", type=float, default=DEFAULT_LATENCY_SIGMA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus", default=None, help="a corpus.jsonl (default: the bundled one)")
    args = p.parse_args(argv)
    server = SearchServer(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        latency_sigma=args.latency_sigma,
        seed=args.seed,
        corpus=args.corpus,
    ).start()
    print(f"search service on {server.url} ({len(server._server.index)} documents)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
