"""Throughput of `sgl-conveyor serve`: 1 stream vs 8 concurrent streams, over loopback HTTP.

Starts the server in this process on the embedded model, then measures aggregate decoded tokens
per second of 1 and of 8 concurrent `/generate` streams (sglang's RuntimeEndpoint protocol),
interleaved over rounds so machine drift hits both alike. Prints a table; `--out` writes JSON.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
from typing import Any

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stream(url: str, prompt: str, tokens: int) -> int:
    body = {
        "text": prompt,
        "sampling_params": {"max_new_tokens": tokens, "temperature": 0, "ignore_eos": True},
        "stream": True,
    }
    done = 0
    with requests.post(url + "/generate", json=body, stream=True, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith(b"data:") and line != b"data: [DONE]":
                done = json.loads(line[5:])["meta_info"]["completion_tokens"]
    return done


def _round(url: str, streams: int, tokens: int) -> float:
    counts = [0] * streams

    def one(i: int) -> None:
        counts[i] = _stream(url, f"Story {i}: once upon a time", tokens)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sgl_conveyor.eval.bench_serve", description=__doc__)
    p.add_argument("--tokens", type=int, default=64, help="tokens per stream")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    from sgl_conveyor.backends.local import LocalBackend
    from sgl_conveyor.backends.server import serve

    backend = LocalBackend(dtype=args.dtype)
    port = _free_port()
    ready = threading.Event()
    threading.Thread(
        target=serve, args=(backend, "127.0.0.1", port), kwargs={"ready": ready}, daemon=True
    ).start()
    ready.wait(60)
    url = f"http://127.0.0.1:{port}"
    _round(url, 1, 8)  # warm-up

    results: dict[int, list[float]] = {1: [], 8: []}
    for _ in range(args.rounds):
        for streams in (1, 8):
            results[streams].append(_round(url, streams, args.tokens))
    one, eight = statistics.median(results[1]), statistics.median(results[8])
    loaded = backend.engine.loaded
    report: dict[str, Any] = {
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).replace("torch.", ""),
        "tokens_per_stream": args.tokens,
        "rounds": args.rounds,
        "tok_s_1_stream": round(one, 1),
        "tok_s_8_streams": round(eight, 1),
        "speedup_8_vs_1": round(eight / one, 2),
        "all": {str(k): [round(v, 1) for v in vs] for k, vs in results.items()},
    }
    print(f"serve on {report['device']} ({report['dtype']}), {args.tokens} tokens per stream")
    print(f"  1 stream   {one:7.1f} tok/s")
    print(f"  8 streams  {eight:7.1f} tok/s aggregate  ({eight / one:.2f}x)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    backend.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
