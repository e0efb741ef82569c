"""Regenerates every bundled data file (`python -m sgl_conveyor.eval.data.generate`), or checks
with `--check` that the committed files are exactly what the generators produce.

It writes only under eval/data/ (the folder of this module; or into a temporary folder with
--check) and never downloads anything.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from . import gen_codegen, gen_corpus, gen_news, gen_sql

HERE = Path(__file__).resolve().parent

# generator module -> the folder (under eval/data/) it writes
GENERATORS = {
    gen_corpus: "search",
    gen_news: "news",
    gen_sql: "sql",
    gen_codegen: "codegen",
}


def _run(module, folder: Path) -> list[Path]:
    if module is gen_corpus:
        return [gen_corpus.main(folder / "corpus.jsonl")]
    if module is gen_sql:
        return [gen_sql.main(folder / "company.sql")]
    return list(module.main(folder))


def generate(root: Path = HERE) -> list[Path]:
    written = []
    for module, sub in GENERATORS.items():
        written.extend(_run(module, root / sub))
    return written


def check(root: Path = HERE) -> list[str]:
    """Files whose committed content differs from a fresh generation (empty: all good)."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            rel = path.relative_to(tmp)
            committed = root / rel
            if not committed.exists():
                problems.append(f"{rel}: missing")
            elif not filecmp.cmp(path, committed, shallow=False):
                problems.append(f"{rel}: differs from a fresh generation")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare instead of writing")
    args = p.parse_args(argv)
    if args.check:
        problems = check()
        for line in problems:
            print(line)
        fix = "run: python -m sgl_conveyor.eval.data.generate"
        print("data files are up to date" if not problems else fix)
        return 1 if problems else 0
    for path in generate():
        size = path.stat().st_size
        print(f"{path.relative_to(HERE.parents[1])}  {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
