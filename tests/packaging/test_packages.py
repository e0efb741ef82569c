"""pyproject.toml lists the wheel's packages one by one (the repository's eval/, programs/ and
tool_specs/ install inside sgl_conveyor through `package-dir`), so a new subpackage must be
added there by hand: these tests fail when one is left out, or when a listed one is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
SKIP = {"__pycache__", "out"}  # eval/out: the eval's results, not a package


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_folders(top: Path) -> list[Path]:
    """Every folder under `top` (itself included) that holds Python code."""
    found = []
    for d in [top, *sorted(p for p in top.rglob("*") if p.is_dir())]:
        if SKIP & set(d.relative_to(ROOT).parts):
            continue
        if any(d.glob("*.py")):
            found.append(d)
    return found


def test_every_python_folder_is_a_listed_package():
    conf = _setuptools()
    listed = set(conf["packages"])
    mapping = conf["package-dir"]  # package name -> folder, relative to the repository root
    assert set(mapping.values()) == {"sgl_conveyor", "eval", "programs", "tool_specs"}
    expected = {}
    for name, folder in mapping.items():
        for d in _package_folders(ROOT / folder):
            rel = d.relative_to(ROOT / folder).parts
            expected[".".join((name, *rel))] = d
    missing = sorted(set(expected) - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    stale = sorted(listed - set(expected))
    assert not stale, f"listed in pyproject.toml but not a folder with Python code: {stale}"
    no_init = sorted(n for n, d in expected.items() if not (d / "__init__.py").is_file())
    assert not no_init, f"packages without __init__.py: {no_init}"


def test_no_top_level_package_but_sgl_conveyor():
    conf = _setuptools()
    assert all(p == "sgl_conveyor" or p.startswith("sgl_conveyor.") for p in conf["packages"])
    assert all(p == "sgl_conveyor" or p.startswith("sgl_conveyor.") for p in conf["package-dir"])
