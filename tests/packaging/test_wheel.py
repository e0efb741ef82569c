"""The wheel carries what the package needs. It is built from a copy of the checkout (offline:
`pip wheel --no-build-isolation`), installed into a fresh virtual environment, and run from an
empty folder outside the checkout: the README's ten-line example with the bundled search tool,
`sgl-conveyor demo` and `sgl-conveyor eval` on the replay backend, and `sgl-conveyor serve`.

The new environment takes the dependencies from this one through a .pth file naming this
interpreter's site-packages folders. Python does not process the .pth files inside a folder that
a .pth line adds, so the checkout's editable install does not leak in: every test checks that
sgl_conveyor comes from the new environment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
# Repository folder -> its name in the wheel (pyproject.toml: package-dir).
INSTALLED_AS = {
    "sgl_conveyor": "sgl_conveyor",
    "eval": "sgl_conveyor/eval",
    "programs": "sgl_conveyor/programs",
    "tool_specs": "sgl_conveyor/tool_specs",
}
# Not copied into the build: the checkout's environments, outputs and caches.
NOT_SOURCE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.egg-info", ".*", "build", "dist", "out"
)
TEN_LINES_BACKEND = "backend = sgl_conveyor.default_backend()  # or sgl.RuntimeEndpoint(url)"
TEN_LINES_QUESTION = "How tall are Mont Blanc and the Matterhorn?"


@dataclass
class Installed:
    wheel: Path
    venv: Path
    python: Path
    cli: Path
    site: Path
    env: dict[str, str]
    tmp: Path

    def workdir(self, name: str) -> Path:
        """An empty folder outside the checkout to run from."""
        d = self.tmp / name
        d.mkdir()
        return d

    def run(self, args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
        done = subprocess.run(
            args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done


def _run(args: list[str], **kw) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, f"{args}:\n{done.stdout}{done.stderr}"


def _copy_source(dest: Path) -> None:
    """The checkout's source as `pip install .` would see it (without environments, outputs)."""
    dest.mkdir()
    for item in ROOT.iterdir():
        if item.name.startswith(".") or item.name in ("build", "dist", "out", "tests", "docs"):
            continue
        if item.is_dir():
            shutil.copytree(item, dest / item.name, ignore=NOT_SOURCE)
        elif item.is_file():
            shutil.copy2(item, dest / item.name)


def _dependency_paths() -> list[str]:
    """This interpreter's site-packages folders (the project's dependencies)."""
    return [
        p
        for p in sys.path
        if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()
    ]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    import setuptools

    major = int(setuptools.__version__.split(".")[0])
    assert major >= 68, (
        f"setuptools {setuptools.__version__} cannot build this project offline (pyproject.toml "
        "asks for >= 68; requirements.lock pins it): run `make install`"
    )
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist, venv = tmp / "src", tmp / "dist", tmp / "venv"
    _copy_source(src)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)])
    (wheel,) = dist.glob("sgl_conveyor-*.whl")

    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "_sgl_conveyor_test_deps.pth").write_text("\n".join(_dependency_paths()) + "\n")

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "CONVEYOR_TOOL_SPECS", "CONVEYOR_DATA", "VIRTUAL_ENV"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONNOUSERSITE="1",
        OMP_WAIT_POLICY="PASSIVE",
    )
    return Installed(wheel, venv, python, venv / "bin" / "sgl-conveyor", site, env, tmp)


# --- what the wheel holds -----------------------------------------------------------------------


def _expected_files() -> set[str]:
    """Every file of the checkout the wheel must carry, by its name in the wheel: the code, the
    tool specs, every file under eval/data (whatever the tools read), tasks and traces."""
    files = set()
    for folder, installed_as in INSTALLED_AS.items():
        for p in (ROOT / folder).rglob("*"):
            rel = p.relative_to(ROOT / folder)
            if not p.is_file() or "__pycache__" in rel.parts or p.suffix == ".pyc":
                continue
            if (
                p.suffix == ".py"
                or folder == "tool_specs"
                or (folder == "eval" and rel.parts[0] in ("data", "tasks", "traces"))
                or (folder == "sgl_conveyor" and p.suffix in (".json", ".jinja"))
            ):
                files.add(f"{installed_as}/{rel.as_posix()}")
    return files


def test_the_wheel_holds_the_code_specs_data_tasks_and_traces_inside_sgl_conveyor(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"sgl_conveyor"}, tops
    assert not {"eval", "programs", "tool_specs"} & tops
    missing = sorted(_expected_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    for must in (
        "sgl_conveyor/tool_specs/search.json",
        "sgl_conveyor/eval/data/search/corpus.jsonl",
        "sgl_conveyor/eval/data/news/gazetteer.json",
        "sgl_conveyor/eval/data/codegen/server.log",
        "sgl_conveyor/eval/data/sql/company.sql",
        "sgl_conveyor/eval/tasks/search.jsonl",
        "sgl_conveyor/eval/traces/demo.jsonl",
        "sgl_conveyor/programs/search.py",
        "sgl_conveyor/tools/meta_schema.json",
        "sgl_conveyor/backends/templates/hermes_chatml.jinja",
    ):
        assert must in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_package_imports_from_the_new_environment_not_the_checkout(installed):
    code = (
        "import importlib.util, json, sgl_conveyor, sgl_conveyor.eval, sgl_conveyor.programs\n"
        "from sgl_conveyor import resources as r\n"
        "print(json.dumps({'files': [sgl_conveyor.__file__, sgl_conveyor.eval.__file__,\n"
        "    sgl_conveyor.programs.__file__, str(r.tool_specs_dir()), str(r.data_dir())],\n"
        "    'top': [n for n in ('eval', 'programs', 'tool_specs')\n"
        "            if importlib.util.find_spec(n) is not None],\n"
        "    'tools': sgl_conveyor.default_registry().names()}))\n"
    )
    out = json.loads(
        installed.run([str(installed.python), "-c", code], installed.workdir("imp")).stdout
    )
    for f in out["files"]:
        assert Path(f).is_relative_to(installed.site), f
    assert out["top"] == []
    assert {"search", "sql", "python", "get_local_news", "plan", "calculator"} <= set(out["tools"])


# --- what runs from it --------------------------------------------------------------------------


def _ten_lines() -> str:
    """The README's "Ten lines" example, as written there."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Ten lines", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under the README's 'Ten lines'"
    return match.group(1)


def test_the_readme_example_runs_with_the_bundled_search_tool(installed):
    """On the replay backend (the model's two outputs, recorded), so the search tool, its
    service and its corpus are the installed ones and nothing else is slow."""
    work = installed.workdir("ten_lines")
    code = _ten_lines()
    assert TEN_LINES_BACKEND in code and TEN_LINES_QUESTION in code
    call = {"queries": ["Mont Blanc height", "Matterhorn height"]}
    row = {
        "id": "ten-lines",
        "input": {"question": TEN_LINES_QUESTION},
        "outputs": [json.dumps(call), "Mont Blanc is 4,806 m high and the Matterhorn 4,478 m."],
    }
    (work / "trace.jsonl").write_text(json.dumps(row) + "\n")
    replay = (
        "from sgl_conveyor.backends.replay import ReplayBackend\n"
        "backend = ReplayBackend('trace.jsonl', tokens_per_second=200.0, ttft_s=0.0)"
    )
    check = (
        "\nimport json\n"
        "report = sgl_conveyor.call_report(state, 'call')\n"
        "json.dump({'result': state['call_result'], 'error': report['error'],\n"
        "           'units': [u['path'] for u in report['calls'][0]['units']]},\n"
        "          open('check.json', 'w'), default=str)\n"
        # Stop the search service: its keep-alive threads would hold the exit for 30 s.
        "sgl_conveyor.default_registry().close()\n"
    )
    (work / "ten_lines.py").write_text(code.replace(TEN_LINES_BACKEND, replay) + check)
    installed.run([str(installed.python), "ten_lines.py"], work)
    out = json.loads((work / "check.json").read_text())
    assert out["error"] is None and out["units"] == ["/queries/0", "/queries/1"]
    hits = {r["query"]: r["hits"][0]["snippet"] for r in out["result"]["results"]}
    assert "4,806 metres" in hits["Mont Blanc height"]  # from the installed corpus
    assert "4,478 metres" in hits["Matterhorn height"]


def test_the_demo_replays_its_recorded_run(installed):
    done = installed.run(
        [str(installed.cli), "demo", "--backend", "replay", "--json", "--repeats", "1"],
        installed.workdir("demo"),
    )
    report = json.loads(done.stdout)
    assert report["error"] is None and report["backend"] == "replay"
    assert report["workload"] == "news" and len(report["attempts"]) == 2
    assert json.loads(report["call"])["location"]
    assert all(u["dispatched_s"] is not None for u in report["units"])


def test_the_eval_runs_a_bundled_workload_on_its_trace(installed):
    work = installed.workdir("eval")
    installed.run(
        [
            str(installed.cli),
            *("eval", "--workload", "search", "--backend", "replay", "--tasks", "2"),
            *("--repeats", "1", "--no-warmup", "--tokens-per-second", "100", "--quiet"),
            *("--out", "out"),
        ],
        work,
    )
    records = [json.loads(x) for x in (work / "out" / "results.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 3  # two tasks, three modes
    assert [r["error"] for r in records] == [None] * 6
    assert {r["workload"] for r in records} == {"search"}
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert summary["environment"]["commit"] is None  # an installed copy is not a checkout
    assert (work / "out" / "report.md").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.model
def test_serve_starts_and_answers_health(installed):
    """`sgl-conveyor serve` loads the embedded model (a few seconds once it is converted)."""
    port = _free_port()
    work = installed.workdir("serve")
    log = (work / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(installed.cli), "serve", "--port", str(port)],
        cwd=work,
        env=installed.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (work / "serve.log").read_text()
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, (work / "serve.log").read_text()
                time.sleep(0.3)
        assert health.status_code == 200
        deadline = time.monotonic() + 10  # the announcement follows the startup at once
        while "listening on" not in (work / "serve.log").read_text():
            assert time.monotonic() < deadline, (work / "serve.log").read_text()
            time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
