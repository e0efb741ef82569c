"""`make peer-check`: the chat path against two real OpenAI-compatible servers, side by side.

It starts `sgl-conveyor serve` (our own) and then vLLM's CPU build (a peer we did not write,
from its own venv: `eval/peer.py`), each on the embedded SmolLM2 with the same hermes template,
and runs the bundled search and planning tasks through `sgl_conveyor.chat` on each, in the
three modes interleaved (`sgl-conveyor eval --backend openai:URL`). It prints, per server,
workload and mode: the runs that succeeded, the median latency, how many units were dispatched
before the stream ended, and the follow-up request's cache hit as the server reported it.
The servers run one after the other, never at once: they would share the two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .peer import SERVED_NAME, PeerError, VllmServer, free_port
from .records import RunRecord

MODES = ("sequential", "call-eager", "partial")


class ServeServer:
    """`sgl-conveyor serve` in a child process of this interpreter, on a free port."""

    def __init__(self, ready_timeout_s: float = 300.0):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None

    def __enter__(self) -> ServeServer:
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "sgl_conveyor.cli", "serve", "--port", str(self.port)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = t0 + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise PeerError(f"serve exited with {self._proc.returncode}: {err[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        self.ready_s = time.monotonic() - t0
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise PeerError(f"serve was not ready within {self.ready_timeout_s:g} s")

    def model_name(self) -> str:
        with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as r:
            return json.load(r)["data"][0]["id"]

    def __exit__(self, *exc: Any) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _eval(base_url: str, model: str, args: argparse.Namespace, out: Path) -> list[RunRecord]:
    """The workloads through the chat API on one server: `sgl-conveyor eval`, in a child
    process (its exit status and output are its own), then its results.jsonl."""
    cmd = [
        sys.executable,
        "-m",
        "sgl_conveyor.eval.cli",
        "--workload",
        args.workloads,
        "--backend",
        f"openai:{base_url}",
        "--model",
        model,
        "--modes",
        ",".join(MODES),
        "--tasks",
        str(args.tasks),
        "--repeats",
        str(args.repeats),
        "--out",
        str(out),
    ]
    print("   $", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=False)
    results = out / "results.jsonl"
    if not results.exists():
        raise PeerError(f"the eval wrote no {results}")
    return [RunRecord.from_dict(json.loads(line)) for line in results.open() if line.strip()]


def _units_before_end(record: RunRecord) -> tuple[int, int]:
    """(units dispatched before their call's stream ended, units) over the run's calls."""
    early = total = 0
    for call in record.calls or ():
        end = call.get("stream_end_s")
        for unit in call.get("units", ()):
            total += 1
            dispatched = unit.get("dispatched_s")
            if dispatched is not None and end is not None and dispatched < end:
                early += 1
    return early, total


def summarize(server: str, records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """One row per workload and mode: what the check prints and writes."""
    rows = []
    by_key: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        if r.position is not None:  # warm-up runs are not placed, and not counted
            by_key.setdefault((r.workload, r.mode), []).append(r)
    for (workload, mode), runs in sorted(by_key.items()):
        ok = [r for r in runs if r.ok]
        early = [_units_before_end(r) for r in ok]
        rows.append(
            {
                "server": server,
                "workload": workload,
                "mode": mode,
                "runs": len(runs),
                "ok": len(ok),
                "median_latency_s": statistics.median(r.latency_s for r in ok) if ok else None,
                "units_early": sum(e for e, _ in early),
                "units": sum(t for _, t in early),
                "followup_cached_tokens": [r.cached_tokens for r in ok],
                "followup_prompt_tokens": [r.prompt_tokens for r in ok],
                "errors": sorted({r.error for r in runs if r.error})[:3],
            }
        )
    return rows


def _print(rows: Sequence[dict[str, Any]]) -> None:
    print(
        f"{'server':8} {'workload':10} {'mode':11} {'ok':>5} {'median s':>9} "
        f"{'early/units':>12}  follow-up cached/prompt"
    )
    for row in rows:
        lat = row["median_latency_s"]
        hits = ", ".join(
            f"{c}/{p}"
            for c, p in zip(
                row["followup_cached_tokens"], row["followup_prompt_tokens"], strict=True
            )
        )
        print(
            f"{row['server']:8} {row['workload']:10} {row['mode']:11} "
            f"{row['ok']:>2}/{row['runs']:<2} {'-' if lat is None else f'{lat:.2f}':>9} "
            f"{row['units_early']:>5}/{row['units']:<6}  {hits}"
        )
        for error in row["errors"]:
            print(f"{'':31}error: {error[:110]}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sgl_conveyor.eval.peer_check", description=__doc__)
    p.add_argument("--python", required=True, help="the python of vLLM's venv (.venv-vllm)")
    p.add_argument("--workloads", default="search,planning")
    p.add_argument("--tasks", type=int, default=3, help="tasks of each workload (default 3)")
    p.add_argument("--repeats", type=int, default=1, help="runs per task and mode (default 1)")
    p.add_argument("--out", default="eval/out/peer-check")
    p.add_argument("--servers", default="serve,vllm", help="comma list of serve, vllm")
    args = p.parse_args(argv)

    from sgl_conveyor.backends.chat_templates import tool_chat_template_path
    from sgl_conveyor.backends.local.model_store import ensure_converted

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for name in servers:
        t0 = time.monotonic()
        try:
            if name == "serve":
                print("== sgl-conveyor serve (embedded engine)", flush=True)
                with ServeServer() as server:
                    print(f"   ready in {server.ready_s:.0f} s at {server.base_url}", flush=True)
                    records = _eval(server.base_url, server.model_name(), args, out / name)
            elif name == "vllm":
                print("== vLLM (CPU build, hermes parser, prefix caching)", flush=True)
                if not os.path.exists(args.python):
                    raise PeerError(f"no python at {args.python}: run `make peer-check`")
                with VllmServer(args.python, ensure_converted(), tool_chat_template_path()) as vs:
                    print(f"   ready in {vs.ready_s:.0f} s at {vs.base_url}", flush=True)
                    records = _eval(vs.base_url, SERVED_NAME, args, out / name)
            else:
                raise PeerError(f"unknown server {name!r}: use serve or vllm")
        except PeerError as e:
            print(f"peer-check: {name}: {e}", file=sys.stderr)
            return 1
        print(f"   {name}: {time.monotonic() - t0:.0f} s in all", flush=True)
        rows += summarize(name, records)
    print()
    _print(rows)
    (out / "peer_check.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\nwritten: {out / 'peer_check.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
