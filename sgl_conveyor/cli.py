"""`sgl-conveyor demo | eval | serve`: the command line.

Thin: each subcommand parses its options and calls the module that does the work.
"""

from __future__ import annotations

import argparse
import sys


def _demo(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="sgl-conveyor demo",
        description="Run a bundled program with partial tool execution and sequentially, "
        "interleaved, and show when each unit ran, the latencies (median and spread) and the "
        "cache hit of the follow-up gen.",
    )
    p.add_argument(
        "--backend",
        default="local",
        help="local (default), replay, an SGLang server URL, or openai:URL (any "
        "OpenAI-compatible chat API, with --model; the call goes through sgl_conveyor.chat)",
    )
    p.add_argument(
        "--workload",
        default="news",
        choices=["news", "search"],
        help="news (default: a call checked argument by argument, where partial execution "
        "pays) or search (one call of parallel queries, where it barely can)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="local backend: a model folder or .gguf file; openai:URL: the server's model name",
    )
    p.add_argument("--question", default=None, help="the request (default: a fixed example)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per mode (3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    from sgl_conveyor.demo import run_demo

    run_demo(
        args.backend,
        workload=args.workload,
        as_json=args.json,
        question=args.question,
        model=args.model,
        repeats=args.repeats,
    )
    return 0


def _eval(argv: list[str]) -> int:
    from sgl_conveyor.eval.cli import main as eval_main

    return eval_main(argv)


def _serve(argv: list[str]) -> int:
    from sgl_conveyor.backends.server import main as serve_main

    return serve_main(argv)


COMMANDS = {"demo": _demo, "eval": _eval, "serve": _serve}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: sgl-conveyor {demo,eval,serve} [options]   (-h after a command for help)")
        print("  demo   a bundled program with partial execution vs sequential, on this machine")
        print("  eval   the bundled workloads, all modes interleaved; writes results and plots")
        print("  serve  an SGLang-protocol HTTP server on the embedded backend")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    finally:
        _close_tools()


def _close_tools() -> None:
    """Stop the tools the command used (services, sandboxes). Without it the interpreter's exit
    waits on the search service's keep-alive connections until their idle timeout (30 s)."""
    from sgl_conveyor.tools.registry import default_registry

    default_registry().close()


if __name__ == "__main__":
    sys.exit(main())
