"""`sgl-conveyor eval --backend openai:URL --model M`: the options, and one bundled workload run
through the chat API against the loopback server replaying the workload's recorded outputs
as chat chunks; its records have the fields of every other backend's."""

from __future__ import annotations

import json
import random

import pytest
from chat_chunks import Piece, chunk, content_script, usage

from sgl_conveyor import resources
from sgl_conveyor.eval.chat_runs import ChatBackend
from sgl_conveyor.eval.cli import build_parser, main
from sgl_conveyor.eval.records import _MEASURED_KEYS, _OPTIONAL_KEYS, _PLACE_KEYS, _RUN_KEYS


def test_the_openai_backend_options(capsys):
    args = build_parser().parse_args(["--backend", "openai:http://127.0.0.1:9/v1", "--model", "m"])
    assert args.backend == "openai:http://127.0.0.1:9/v1" and args.model == "m"
    assert ChatBackend.parse("openai:http://h:1", "m").base_url == "http://h:1/v1"
    assert ChatBackend.parse("openai:https://api.example/v1/", "m").base_url == (
        "https://api.example/v1"
    )
    assert main(["--backend", "openai:http://127.0.0.1:9/v1", "--workload", "search"]) == 2
    assert "--model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="http"):
        ChatBackend.parse("openai:127.0.0.1:9", "m")
    assert main(["--backend", "openai:http://h:9", "--model", "m", "--workload", "sql"]) == 2
    assert "no chat form for sql" in capsys.readouterr().err


def replayed(row: dict):
    """The recorded outputs of one task as the chat stream a server would send: the call's
    arguments in small fragments, then (for the follow-up) the answer."""

    def on_request(request: dict):
        rng = random.Random(len(request["messages"]))
        if request.get("tool_choice", "none") != "none":
            text = row["outputs"][0]
            pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
            return [
                chunk([Piece(0, id="call_r", name="search", arguments="")]),
                *(chunk([Piece(0, arguments=p)]) for p in pieces),
                chunk(finish_reason="stop"),  # vLLM's finish reason for a named choice
                chunk(usage=usage(prompt=300, cached=0), choices=False),
            ]
        return [
            *content_script(row["outputs"][1], rng),
            chunk(usage=usage(prompt=360, cached=296), choices=False),
        ]

    return on_request


def test_a_workload_runs_through_the_chat_api(sse_server, tmp_path):
    trace = resources.eval_path("traces/search.jsonl")
    row = json.loads(trace.read_text().splitlines()[0])
    sse_server.on_request = replayed(row)
    out = tmp_path / "out"
    backend = f"openai:{sse_server.base_url}"
    argv = ["--workload", "search", "--backend", backend, "--model", "smol", "--tasks", "1"]
    argv += ["--repeats", "1", "--modes", "sequential,partial", "--no-warmup", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0

    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["mode"] for r in rows) == ["partial", "sequential"]
    queries = json.loads(row["outputs"][0])["queries"]
    for r in rows:
        assert list(r) == [*_RUN_KEYS, *_MEASURED_KEYS, *_PLACE_KEYS, *_OPTIONAL_KEYS]
        assert r["error"] is None and r["backend"] == backend
        assert r["task_id"] == row["id"] and r["n_calls"] == 1
        assert r["n_units"] == len(queries) and r["latency_s"] > 0
        assert [u["path"] for u in r["calls"][0]["units"]] == [
            f"/queries/{i}" for i in range(len(queries))
        ]
        assert all(u["ok"] for u in r["calls"][0]["units"])
        # The follow-up's usage: the answer request, after the results went in.
        assert (r["prompt_tokens"], r["cached_tokens"]) == (360, 296)
        assert [g["kind"] for g in r["generations"]] == ["tool_call", "gen"]
    requests = sse_server.requests
    assert requests[0]["model"] == "smol"
    assert requests[0]["tool_choice"] == {"type": "function", "function": {"name": "search"}}
    assert requests[1]["messages"][-1]["content"].startswith("Answer the question")
    assert requests[1]["messages"][-2]["role"] == "tool"
    # The answer offers the same tools, not to be called: its prompt starts like the call's.
    assert requests[1]["tool_choice"] == "none" and requests[1]["tools"] == requests[0]["tools"]
    summary = json.loads((out / "summary.json").read_text())
    assert "openai-compatible server" in summary["environment"]["backend"]


DEMO_KEYS = {
    "backend", "workload", "mode", "latency_s", "sequential_latency_s", "latency_spread_s",
    "sequential_spread_s", "latencies_s", "gain", "stream_start_s", "stream_end_s",
    "result_injected_s", "units", "attempts", "prompt_tokens", "cached_tokens", "call",
    "answer", "error",
}  # fmt: skip


def test_the_demo_runs_through_the_chat_api(sse_server):
    from sgl_conveyor.demo import run_demo

    row = {"outputs": ['{"queries": ["carbon atomic mass", "neon atomic mass"]}', "About 12."]}
    sse_server.on_request = replayed(row)
    printed: list[str] = []
    backend = f"openai:{sse_server.base_url}"
    report = run_demo(
        backend, workload="search", as_json=True, model="smol", repeats=1, out=printed.append
    )
    assert set(report) == DEMO_KEYS and json.loads(printed[-1]) == report
    assert report["backend"] == backend and report["error"] is None
    assert [u["path"] for u in report["units"]] == ["/queries/0", "/queries/1"]
    assert report["call"] == row["outputs"][0] and report["answer"] == "About 12."
    assert (report["prompt_tokens"], report["cached_tokens"]) == (360, 296)
    assert len(report["latencies_s"]["partial"]) == len(report["latencies_s"]["sequential"]) == 1
    assert len(sse_server.requests) == 6  # warm-up, sequential, partial: a call and an answer each
