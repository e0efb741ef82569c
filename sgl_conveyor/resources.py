"""Where the files that ship with sgl-conveyor are: the tool specs, the tools' data, the bundled
workloads' tasks and traces. Every part of the project finds them here, by package name.

The repository keeps them in top-level folders (`tool_specs/`, `eval/`, `programs/`); the wheel
installs those folders as `sgl_conveyor.tool_specs`, `sgl_conveyor.eval` and
`sgl_conveyor.programs` (see `package-dir` in pyproject.toml), and an editable install maps the
same names onto the checkout's folders. So nothing here looks at the repository's layout:
`importlib.resources` says where each package is, installed or not.

The tools open these files by path (SQLite, the sandbox's DATA_DIR), so the packages must be
folders on disk, as pip installs them; a zipped install is refused with a clear error.
Environment overrides (`CONVEYOR_DATA`, `CONVEYOR_TOOL_SPECS`) are read by the code that uses
the folders, on top of these defaults.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

SPECS_PACKAGE = "sgl_conveyor.tool_specs"
EVAL_PACKAGE = "sgl_conveyor.eval"
DATA_PACKAGE = "sgl_conveyor.eval.data"
PROGRAMS_PACKAGE = "sgl_conveyor.programs"


def package_dir(package: str) -> Path:
    """The folder of an installed package of sgl-conveyor (imports it if needed)."""
    root = resources.files(package)
    if not isinstance(root, Path):
        raise RuntimeError(
            f"{package} is not a folder on disk ({root!r}): sgl-conveyor's tools open its files "
            "by path; install sgl-conveyor with pip (not zipped)"
        )
    return root


def tool_specs_dir() -> Path:
    """The bundled tool specs (`tool_specs/` in the repository): one JSON file per tool."""
    return package_dir(SPECS_PACKAGE)


def data_dir() -> Path:
    """The bundled tool data (`eval/data/`: search corpus, gazetteer, codegen files, SQL dump)."""
    return package_dir(DATA_PACKAGE)


def eval_dir() -> Path:
    """The bundled eval folder (`eval/`), with the workloads' `tasks/` and `traces/`."""
    return package_dir(EVAL_PACKAGE)


def eval_path(relative: str | os.PathLike) -> Path:
    """A file of the eval folder: absolute paths are kept, others are under eval_dir()."""
    p = Path(relative).expanduser()
    return p if p.is_absolute() else eval_dir() / p


def demo_trace() -> Path:
    """The recorded run that `sgl-conveyor demo --backend replay` replays."""
    return eval_dir() / "traces" / "demo.jsonl"
