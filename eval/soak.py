"""The soak test: many programs with faulty tools, cut streams and broken calls, all at once.

200 programs go through sglang's `run_batch` on the replay backend. Their calls hang, raise,
time out, get rejected, return results too big or impossible to render, are cut by max_tokens
or are malformed, in every mode and effect class; a few run runaway code in the sandbox. In
hostile mode (the default of `make soak`) some programs' generated code attacks the sandbox
(symlinks into the shared caches, a host Unix socket, forged reply frames, memory across
processes, the disk), and with `--serve` hostile HTTP clients attack a real `serve` (see
`hostile.py`). The soak passes when no program hangs, no thread or process outlives its call, no
unit runs twice, every program ends with a result or a clear, typed error, and no attack
escapes. It prints one line:
`soak: 200 programs, 0 hangs, 0 leaked, 0 double executions, 117 clear errors, 10 attacks
contained, 0 escapes`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil
import sglang as sgl

import sgl_conveyor
from sgl_conveyor.backends.replay import ReplayBackend
from sgl_conveyor.tools.builtin.faulty import LEDGER, FaultyTool, faulty_spec
from sgl_conveyor.tools.registry import BUNDLED_SPECS, ToolRegistry

from .hostile import HOSTILE_LIMITS, AttackLog, SandboxAttacks, serve_attacks

MODES = ("partial", "sequential", "call-eager")
EFFECTS = ("pure", "idempotent", "reversible", "irreversible")
ORDERS = ("parallel", "serial")
# op -> weight; "hang" only ends by the unit timeout (or by cancellation).
OPS = {"ok": 10, "sleep": 6, "raise": 2, "hang": 1, "reject": 1, "big": 1, "unserializable": 1}
RUNAWAY_CODE = [
    "while True:\n    pass",
    "x = bytearray(20 * 1024 ** 3)",
    "import os\nos._exit(3)",
    "print('ok')\ntotal = sum(range(1000))\nprint(total)",
]


@dataclass
class Outcome:
    """What the soak saw of one program."""

    task_id: str
    kind: str
    finished: bool = False
    result: Any = None
    call_text: str = ""


@dataclass
class Soak:
    programs: int
    seed: int = 0
    unit_timeout_s: float = 0.4
    deadline_s: float = 240.0
    include_sandbox: bool = True
    hostile: bool = False  # generated code that attacks the sandbox
    attack_serve: bool = False  # hostile clients against a real serve (loads the model)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    attack_names: dict[str, str] = field(default_factory=dict)  # task id -> attack

    def registry(self) -> ToolRegistry:
        reg = ToolRegistry()
        for effect in EFFECTS:
            for order in ORDERS:
                spec = faulty_spec(
                    effect,
                    order,
                    name=f"faulty_{effect}_{order}",
                    unit_timeout_s=self.unit_timeout_s,
                    timeout_s=10,
                    result_max_chars=2000,
                )
                reg.add(spec, FaultyTool(spec))
        if self.include_sandbox:
            data = json.loads((BUNDLED_SPECS / "python.json").read_text())
            conv = data["conveyor"]
            conv["limits"].update(statement_timeout_s=1.0, call_timeout_s=4.0, statement_cpu_s=2)
            if self.hostile:
                conv["limits"].update(HOSTILE_LIMITS)
            conv.update(unit_timeout_s=3.0, timeout_s=8.0)
            conv["units"][0]["timeout_s"] = 3.0
            reg.add(data)  # its own PythonTool instance: closed with this registry
        return reg

    def tasks(self, rng: random.Random, attacks: list | None = None) -> list[dict[str, Any]]:
        tasks = []
        for i in range(self.programs):
            task_id = f"soak-{i:04d}"
            if attacks and i % 20 == 12:
                attack = attacks[(i // 20) % len(attacks)]
                self.attack_names[task_id] = attack.name
                tasks.append(
                    {
                        "id": task_id,
                        "input": {"tool": "python", "mode": rng.choice(MODES)},
                        "outputs": [attack.code, "done"],
                        "kind": "attack",
                        "max_tokens": 512,
                    }
                )
                continue
            if self.include_sandbox and i % 25 == 7:
                code = rng.choice(RUNAWAY_CODE)
                tasks.append(
                    {
                        "id": task_id,
                        "input": {"tool": "python", "mode": rng.choice(MODES)},
                        "outputs": [code, "done"],
                        "kind": "sandbox",
                        "max_tokens": 256,
                    }
                )
                continue
            n = rng.randint(1, 6)
            ops = rng.choices(list(OPS), weights=list(OPS.values()), k=n)
            steps = []
            for op in ops:
                step: dict[str, Any] = {"op": op}
                if op in ("sleep", "ok"):
                    step["ms"] = rng.choice([0, 5, 20, 60])
                if op == "big":
                    step["size"] = 50_000
                steps.append(step)
            call = json.dumps({"steps": steps})
            kind = "faults"
            roll = rng.random()
            max_tokens = 512
            if roll < 0.12:  # cut by max_tokens
                kind, max_tokens = "cut", rng.randint(2, 12)
            elif roll < 0.22:  # malformed JSON
                kind = "malformed"
                pos = rng.randint(1, len(call) - 1)
                call = call[:pos] + rng.choice(["]", ",,", "}", "tru"]) + call[pos:]
            effect, order = rng.choice(EFFECTS), rng.choice(ORDERS)
            outputs = [call]
            retries = 0
            if "reject" in ops and rng.random() < 0.5:
                retries = 1
                outputs.append(json.dumps({"steps": [{"op": "ok"}]}))
            outputs.append("done")
            tasks.append(
                {
                    "id": task_id,
                    "input": {"tool": f"faulty_{effect}_{order}", "mode": rng.choice(MODES)},
                    "outputs": outputs,
                    "kind": kind,
                    "max_tokens": max_tokens,
                    "retries": retries,
                }
            )
        return tasks

    def run(self) -> dict[str, Any]:
        rng = random.Random(self.seed)
        registry = self.registry()
        sandbox_attacks = SandboxAttacks() if self.hostile and self.include_sandbox else None
        attacks = sandbox_attacks.attacks() if sandbox_attacks else []
        judges = {a.name: a.judge for a in attacks}
        tasks = self.tasks(rng, attacks)
        backend = ReplayBackend(tasks, tokens_per_second=400.0, ttft_s=0.005)
        outcomes = self.outcomes
        for t in tasks:
            outcomes[t["id"]] = Outcome(t["id"], t["kind"])

        # sglang traces a batch's program with placeholder arguments to pre-cache its prefix:
        # the body must not look arguments up before its first generation.
        @sgl.function
        def program(s, task_id, tool, mode, max_tokens, retries):
            s += sgl.user("Run the steps.")
            s += sgl.assistant(
                sgl.partial_tool(
                    tool,
                    name="call",
                    mode=mode,
                    registry=registry,
                    max_tokens=max_tokens,
                    retries=retries,
                )
            )
            s += sgl.assistant(sgl.gen("after", max_tokens=8))
            out = outcomes[task_id]
            out.result = s["call_result"]
            out.call_text = s["call"]
            s["after"]  # the program goes on after the call, whatever happened
            out.finished = True

        base_threads = {t.ident for t in threading.enumerate()}
        base_children = {p.pid for p in psutil.Process().children(recursive=True)}
        LEDGER.reset()
        batch = [
            {
                "task_id": t["id"],
                **t["input"],
                "max_tokens": t["max_tokens"],
                "retries": t.get("retries", 0),
            }
            for t in tasks
        ]
        errors: list[BaseException] = []

        def go() -> None:
            try:
                program.run_batch(batch, backend=backend, num_threads=32)
            except BaseException as e:  # reported, never swallowed
                errors.append(e)

        started = time.perf_counter()
        runner = threading.Thread(target=go, name="soak-batch", daemon=True)
        runner.start()
        runner.join(self.deadline_s)
        elapsed = time.perf_counter() - started

        # Tools keep process-wide resources between calls (the sandbox keeps one interpreter
        # warm for the next call): close them as a program would at exit, then count what is
        # left. Everything a call started must be gone by now.
        registry.close()
        log = AttackLog()
        if sandbox_attacks is not None:
            for task_id, name in self.attack_names.items():
                out = outcomes[task_id]
                if out.finished:
                    log.add(name, *judges[name](out.result))
            sandbox_attacks.judge_host(log)
            sandbox_attacks.close()
        if self.attack_serve:
            _attack_a_real_serve(log)
        time.sleep(0.5)
        left_threads = [
            t.name
            for t in threading.enumerate()
            if t.ident not in base_threads
            and t.is_alive()
            and t.name != "soak-batch"
            and not t.name.startswith(("Thread-", "ThreadPoolExecutor"))
        ]
        left_children = [
            p.pid
            for p in psutil.Process().children(recursive=True)
            if p.pid not in base_children and p.is_running() and p.status() != "zombie"
        ]
        hangs = [o.task_id for o in outcomes.values() if not o.finished]
        doubles = LEDGER.duplicates()
        kinds = Counter()
        unclear = []
        for o in outcomes.values():
            if not o.finished:
                continue
            if isinstance(o.result, sgl_conveyor.ToolCallError):
                kinds[o.result.kind] += 1
                if not str(o.result):
                    unclear.append(o.task_id)
            elif o.kind == "attack":
                pass  # judged above, from the host's side
            elif o.kind == "sandbox":
                if any(m in str(o.result) for m in ("Error", "exit status", "killed")):
                    kinds["error_in_script_output"] += 1
            elif not _valid_json(o.call_text):
                unclear.append(o.task_id)  # a broken or cut call must never give a result
        return {
            "programs": self.programs,
            "hangs": len(hangs),
            "hung": hangs[:10],
            "leaked_threads": left_threads,
            "leaked_processes": left_children,
            "leaked": len(left_threads) + len(left_children),
            "double_executions": len(doubles),
            "clear_errors": sum(kinds.values()),
            "errors_by_kind": dict(kinds),
            "unclear": unclear,
            "batch_error": repr(errors[0]) if errors else None,
            "elapsed_s": round(elapsed, 2),
            "hostile": self.hostile or self.attack_serve,
            "attacks_contained": len(log.contained),
            "escapes": len(log.escapes),
            "escaped": log.escapes,
            "contained": log.contained,
        }


def _attack_a_real_serve(log: AttackLog) -> None:
    """Start `sgl-conveyor serve` on the embedded model as its own process on a free loopback
    port (as it is deployed), attack it, stop it. Its default limits, but a slow body or
    header is given up after 3 s instead of 30 and 10 (a soak waits for it)."""
    import socket
    import subprocess

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "sgl_conveyor.cli", "serve", "--port", str(port)]
    cmd += ["--body-timeout", "3", "--header-timeout", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            log.add("serve: start", False, "the server did not start")
            return
        serve_attacks(f"http://127.0.0.1:{port}", log)
        if proc.poll() is not None:
            log.add("serve: survived the attacks", False, f"exited with {proc.returncode}")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def summary_line(report: dict[str, Any]) -> str:
    line = (
        f"soak: {report['programs']} programs, {report['hangs']} hangs, "
        f"{report['leaked']} leaked, {report['double_executions']} double executions, "
        f"{report['clear_errors']} clear errors"
    )
    if report.get("hostile"):
        line += f", {report['attacks_contained']} attacks contained, {report['escapes']} escapes"
    return line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sgl_conveyor.eval.soak", description=__doc__)
    p.add_argument("--programs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-sandbox", action="store_true", help="skip the runaway-code programs")
    p.add_argument("--hostile", action="store_true", help="generated code attacks the sandbox")
    p.add_argument(
        "--serve", action="store_true", help="hostile clients attack a real serve (loads the model)"
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON too")
    args = p.parse_args(argv)
    report = Soak(
        args.programs,
        seed=args.seed,
        include_sandbox=not args.no_sandbox,
        hostile=args.hostile,
        attack_serve=args.serve,
    ).run()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(f"errors by kind: {report['errors_by_kind']}; took {report['elapsed_s']} s")
        for key in ("hung", "leaked_threads", "leaked_processes", "unclear", "escaped"):
            if report[key]:
                print(f"{key}: {report[key]}")
        if report["batch_error"]:
            print(f"run_batch raised: {report['batch_error']}")
    print(summary_line(report))
    ok = (
        report["hangs"] == 0
        and report["leaked"] == 0
        and report["double_executions"] == 0
        and not report["unclear"]
        and report["batch_error"] is None
        and report["escapes"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
