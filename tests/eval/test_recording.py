"""Recording a program's generations and replaying them gives the program the same outputs;
the wrapper delegates everything, including closing a stream early."""

from __future__ import annotations

import json

import sglang as sgl
from tiny_workload import TRACE, make_program, make_registry, make_workload

from sgl_conveyor.backends.recording import RecordingBackend
from sgl_conveyor.backends.replay import ReplayBackend
from sgl_conveyor.eval.runner import EvalConfig, record_traces


def replay(rows, tps=2000.0):
    return ReplayBackend(rows, tokens_per_second=tps, ttft_s=0.0)


def run_all(program, backend, mode="partial"):
    states = {}
    for row in TRACE:
        st = program.run(
            backend=backend, task_id=row["id"], mode=mode, temperature=0.0, **row["input"]
        )
        st.stream_executor.sync()
        assert st.error() is None
        states[row["id"]] = st
    return states


def test_recording_then_replaying_gives_the_program_the_same_outputs():
    program = make_program(make_registry())
    recorder = RecordingBackend(replay(TRACE))  # the replay backend stands in for a live model
    seen = run_all(program, recorder)
    rows = [
        recorder.trace_row(st.stream_executor.arguments, workload="tiny") for st in seen.values()
    ]
    assert [r["id"] for r in rows] == ["cities", "rivers", "bad"]
    assert rows[0]["input"] == {"question": "Populations of three cities?"}

    replayed = run_all(program, replay(rows))
    for tid, st in seen.items():
        again = replayed[tid]
        assert again.text() == st.text()
        assert again["call"] == st["call"] and again["answer"] == st["answer"]
        assert again["call_result"] == st["call_result"]


def test_a_stream_closed_early_records_only_what_was_delivered():
    program = make_program(make_registry())
    recorder = RecordingBackend(replay(TRACE))
    st = program.run(backend=recorder, task_id="bad", question="News from nowhere?")
    st.stream_executor.sync()
    args = st.stream_executor.arguments
    gens = recorder.generations(args)
    assert [g.kind for g in gens] == ["stream", "stream", "gen"]
    first = gens[0]
    original = TRACE[2]["outputs"][0]
    # the call was rejected at "nowhere": decoding stopped, the rest was never delivered
    assert first.closed_early and original.startswith(first.text) and first.text != original
    assert '"local news' not in first.text
    assert recorder.outputs(args)[1:] == TRACE[2]["outputs"][1:]
    assert gens[2].meta["prompt_tokens"] > 0 and gens[0].ended >= gens[0].started


class Streams:
    """A minimal backend whose stream says whether it was closed."""

    def __init__(self):
        self.closed = False
        self.chat_template = None

    def generate_stream(self, s, sampling_params):
        def gen():
            try:
                for piece in ("one ", "two ", "three"):
                    yield piece, {"completion_tokens": 1}
            finally:
                self.closed = True

        return gen()


class Exe:
    sid = "exe-1"

    def __init__(self):
        self.arguments = {"task_id": "x"}


def test_closing_the_wrappers_stream_closes_the_inner_one():
    inner = Streams()
    recorder = RecordingBackend(inner)
    exe = Exe()
    stream = recorder.generate_stream(exe, sampling_params=None)
    assert next(stream) == ("one ", {"completion_tokens": 1})
    assert not inner.closed
    stream.close()
    assert inner.closed
    assert recorder.outputs(exe.arguments) == ["one "]
    assert recorder.trace_row(exe.arguments) == {
        "id": "x",
        "workload": "",
        "input": {},
        "outputs": ["one "],
    }


def test_forks_record_into_their_programs_lineage():
    registry = make_registry()
    trace = [
        {
            "id": "f",
            "input": {"question": "q"},
            "outputs": ['{"queries": ["a", "b"]}', "left", "right"],
        }
    ]

    @sgl.function
    def forked(s, question, mode="partial", task_id=None):
        s += sgl.user(question)
        s += sgl.assistant(sgl.partial_tool("lookup", name="call", mode=mode, registry=registry))
        forks = s.fork(2)
        forks += sgl.assistant(sgl.gen("answer", max_tokens=8))
        forks.join()

    recorder = RecordingBackend(replay(trace))
    st = forked.run(backend=recorder, question="q", task_id="f")
    st.stream_executor.sync()
    args = st.stream_executor.arguments
    outputs = recorder.outputs(args)
    assert outputs[0] == trace[0]["outputs"][0]
    assert sorted(outputs[1:]) == ["left", "right"]
    assert len(recorder.executors(args)) == 3  # the program and its two forks
    again = forked.run(backend=replay([recorder.trace_row(args)]), question="q", task_id="f")
    assert sorted(again["answer"]) == ["left", "right"]


def test_the_runner_records_a_trace_per_workload(tmp_path):
    wl = make_workload(tmp_path / "wl")
    config = EvalConfig(
        backend="replay",
        record=str(tmp_path / "traces" / "{workload}.jsonl"),
        tokens_per_second=2000.0,
        ttft_s=0.0,
        progress=False,
    )
    written = record_traces(config, [wl], log=lambda msg: None)
    path = tmp_path / "traces" / "tiny.jsonl"
    assert list(written) == [str(path)]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["cities", "rivers", "bad"]
    assert rows[2]["invalid_first"] is True and rows[2]["workload"] == "tiny"
    for row, original in zip(rows[:2], TRACE[:2], strict=True):
        assert row["outputs"] == original["outputs"] and row["input"] == original["input"]
    assert rows[2]["outputs"][1:] == TRACE[2]["outputs"][1:]  # the rejected call was cut
