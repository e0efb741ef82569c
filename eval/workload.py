"""What a bundled workload is: a program, its tasks, its tools and its recorded trace, and how
the eval finds the workloads in `programs/` (installed as the package `sgl_conveyor.programs`).

A workload module in `programs/` exports `WORKLOAD = Workload(...)` (or a list of them). This
module only describes and loads; it never runs a program or times anything.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgl_conveyor import resources
from sgl_conveyor.sampling import RUN_PARAMETERS

from .goals import DEFAULT_GOALS, Goal
from .metrics import MODES

# Keyword arguments of SglFunction.run: a task input must not use them as names.
_RUN_PARAMETERS = RUN_PARAMETERS  # run options of program.run, never task inputs


class WorkloadError(Exception):
    """A workload or its tasks cannot be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class Task:
    """One task of a workload: `input` becomes the program's keyword arguments; `extra` keeps
    the rest of the JSONL row (an expected answer, `invalid_first`, notes)."""

    id: str
    input: Mapping[str, Any]
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def invalid_first(self) -> bool:
        """The task's first tool call is expected to be rejected (validation workloads)."""
        return bool(self.extra.get("invalid_first") or self.input.get("invalid_first"))


@dataclass(frozen=True)
class Workload:
    """A bundled workload, as a module in `programs/` exports it.

    name:        short name used on the command line and in reports (`codegen`, `search`...).
    program:     the `@sgl.function`. It takes the task input as keyword arguments, plus `mode`
                 (passed to every `sgl.partial_tool(..., mode=mode)`) and `task_id`.
    tasks_path:  JSONL of tasks, one `{"id", "input": {...}, ...}` per line (relative paths are
                 relative to the bundled eval folder, `eval/` in the repository, which holds
                 `tasks/` and `traces/`; a workload of your own passes absolute paths).
    trace_path:  JSONL replay trace of the tasks (`{"id", "workload", "input", "outputs"}`), used
                 by `--backend replay`; None if the workload has none yet.
    tools:       the ToolRegistry the program's partial_tool calls use (None: the default
                 registry); the eval reads tool specs from it (order, effects, concurrency).
    description: one line for the report.
    make_args:   `(task, mode) -> program kwargs`; default: the task input (keys the program
                 does not take are left out) plus `mode` and `task_id`.
    run_options: keyword arguments of `program.run` (sampling defaults); greedy by default.
    goals:       the bars its summary must clear (eval.goals), checked in this order; default:
                 the call-eager bar where it has calls of several units.
    modes:       the eval modes it runs: the three runtime modes, plus `partial+interrupt`
                 where its make_args maps it (eval.metrics.ALL_MODES).
    chat:        the same task as a chat conversation (eval.chat_runs.ChatForm), for
                 `--backend openai:URL`; None: the workload runs only as a program.
    """

    name: str
    program: Any
    tasks_path: str | Path
    trace_path: str | Path | None = None
    tools: Any = None
    description: str = ""
    make_args: Callable[[Task, str], Mapping[str, Any]] | None = None
    run_options: Mapping[str, Any] = field(default_factory=lambda: {"temperature": 0.0})
    goals: Sequence[Goal] = DEFAULT_GOALS
    modes: Sequence[str] = MODES  # `partial+interrupt` is opt-in
    chat: Any = None

    def tasks(self, limit: int | None = None) -> list[Task]:
        """The workload's tasks, in file order (the first `limit` of them)."""
        tasks = load_tasks(_resolve(self.tasks_path))
        return tasks[:limit] if limit is not None else tasks

    def trace(self) -> Path | None:
        return _resolve(self.trace_path) if self.trace_path is not None else None

    def args_for(self, task: Task, mode: str) -> dict[str, Any]:
        """The keyword arguments of one run of the program on `task` in `mode`."""
        if self.make_args is not None:
            args = dict(self.make_args(task, mode))
        else:
            accepted = _parameters(self.program)
            args = {k: v for k, v in task.input.items() if accepted is None or k in accepted}
            args["mode"] = mode
            args["task_id"] = task.id
        clash = sorted(_RUN_PARAMETERS & set(args))
        if clash:
            raise WorkloadError(
                f"workload {self.name}: task {task.id} passes {clash} to the program, but "
                "program.run() takes those names itself; rename them in the task input"
            )
        return args

    def registry(self) -> Any:
        from sgl_conveyor.tools.registry import ToolRegistry, default_registry

        return self.tools if isinstance(self.tools, ToolRegistry) else default_registry()


def _parameters(program: Any) -> set[str] | None:
    """Names the program's function takes (None: it takes any keyword)."""
    func = getattr(program, "func", program)
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {name for name in list(sig.parameters)[1:]}  # the first one is the state `s`


def _resolve(path: str | Path) -> Path:
    return resources.eval_path(path)


def load_tasks(path: str | Path) -> list[Task]:
    """Read a JSONL task file: one `{"id", "input": {...}, ...}` object per line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise WorkloadError(f"cannot read tasks: {e}") from e
    tasks: list[Task] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise WorkloadError(f"{path}:{n}: not valid JSON: {e.msg}") from e
        if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("input"), dict):
            raise WorkloadError(f'{path}:{n}: a task needs "id" and an object "input"')
        tid = str(row["id"])
        if tid in seen:
            raise WorkloadError(f"{path}:{n}: task id {tid!r} appears twice")
        seen.add(tid)
        extra = {k: v for k, v in row.items() if k not in ("id", "input")}
        tasks.append(Task(tid, dict(row["input"]), extra))
    return tasks


@dataclass
class Discovery:
    """The bundled workloads found, and the modules that failed to import (with why)."""

    workloads: dict[str, Workload]
    errors: dict[str, str]


def _module_names(programs_dir: str | Path | None) -> list[str]:
    """The workload modules to import: the bundled `sgl_conveyor.programs.*`, or the `*.py` of
    another folder, imported as the package named after it (its parent goes on `sys.path`)."""
    if programs_dir is None:
        package = importlib.import_module(resources.PROGRAMS_PACKAGE)
        stems = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.ispkg)
        prefix = resources.PROGRAMS_PACKAGE
    else:
        directory = Path(programs_dir)
        if str(directory.parent) not in sys.path:
            sys.path.insert(0, str(directory.parent))
        stems = sorted(p.stem for p in directory.glob("*.py"))
        prefix = directory.name
    return [f"{prefix}.{stem}" for stem in stems if not stem.startswith("_")]


def discover(programs_dir: str | Path | None = None) -> Discovery:
    """Import every workload module that exports WORKLOAD (a Workload or a list): the bundled
    `programs/*.py` (`sgl_conveyor.programs`), or those of the folder `programs_dir`.

    A module that fails to import is reported, not fatal: the other workloads still run.
    """
    found: dict[str, Workload] = {}
    errors: dict[str, str] = {}
    for module_name in _module_names(programs_dir):
        try:
            module = importlib.import_module(module_name)
        except Exception as e:
            errors[module_name] = f"{type(e).__name__}: {e}"
            continue
        exported = getattr(module, "WORKLOAD", None)
        if exported is None:
            continue
        for wl in exported if isinstance(exported, (list, tuple)) else [exported]:
            if not isinstance(wl, Workload):
                errors[module_name] = f"WORKLOAD is a {type(wl).__name__}, not a Workload"
                continue
            if wl.name in found:
                errors[module_name] = f"workload name {wl.name!r} is already taken"
                continue
            found[wl.name] = wl
    return Discovery(found, errors)


def bundled_goals() -> dict[str, Sequence[Goal]]:
    """The goals each bundled workload declares, by workload name."""
    return {name: wl.goals for name, wl in discover().workloads.items()}


def select(available: Mapping[str, Workload], names: str | Iterable[str]) -> list[Workload]:
    """The workloads named on the command line ("all", one name, or a comma list)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    if names == ["all"]:
        return [available[n] for n in sorted(available)]
    unknown = [n for n in names if n not in available]
    if unknown:
        known = ", ".join(sorted(available)) or "none"
        raise WorkloadError(f"unknown workload(s) {', '.join(unknown)}; known: {known}")
    return [available[n] for n in names]


def spec_facts(workload: Workload, tool: str) -> tuple[str, Sequence[tuple[str, str]], int]:
    """(order, unit patterns [(path, effect)], max concurrency) of a tool the workload uses;
    a tool the registry does not know is treated as parallel with irreversible units."""
    try:
        spec = workload.registry().spec(tool)
    except Exception:
        return "parallel", (), 1
    patterns = [(u.path, u.effect.value) for u in spec.units]
    return spec.order.value, patterns, int(spec.max_concurrency)
