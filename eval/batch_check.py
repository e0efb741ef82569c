"""Correctness of batched decoding on the embedded engine, for a GPU (also runs on CPU).

    python -m sgl_conveyor.eval.batch_check [--device cpu|cuda]

1. A request that joins a batch one token behind another (so its row has a masked tail) must
   decode, in float32, exactly what it decodes alone, and never produce non-finite logits.
2. Four partial-tool search programs run at once must all finish without error.
Both failed on CUDA before the decode pool was zeroed (recycled memory held NaN, and a masked
position weighs 0 but 0 * NaN is NaN). Exits 1 on any failure; prints what it saw.
"""

from __future__ import annotations

import argparse
import sys
import time

CHAT = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
QUESTIONS = (
    "What are the atomic masses of carbon, sulfur and neon?",
    "Compare the populations of Paris, Rome and Madrid.",
    "How tall are K2, Everest and Kangchenjunga?",
    "When were Oslo, Helsinki and Stockholm founded?",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    args = parser.parse_args(argv)

    from sgl_conveyor.backends.local import LocalBackend, SamplingParams
    from sgl_conveyor.programs.search import research

    backend = LocalBackend(device=args.device, dtype="float32")
    engine = backend.engine
    print(f"device {engine.device}, {engine.dtype}")
    params = SamplingParams(max_new_tokens=12, temperature=0.0, ignore_eos=True)
    failures = 0
    for question in ("Say something short.", "Name a fruit.", "Count to five."):
        prompt = CHAT.format(question)
        alone = engine.submit(prompt, params).result()[0]
        first = iter(engine.submit(prompt, params))
        try:
            head = next(first).text  # decoding has started: the next request joins behind
            behind = engine.submit(prompt, params)
            other = engine.submit(CHAT.format(question + " Please."), params)
            texts = [head + "".join(e.text for e in first), behind.result()[0]]
            other.result()
        except Exception as err:  # a RequestError names non-finite logits
            failures += 1
            print(f"join behind  FAIL {question!r}: {err}")
            continue
        same = texts == [alone, alone]
        failures += not same
        print(f"join behind  {'ok  ' if same else 'FAIL'} {question!r}: {texts[1]!r}")

    start = time.perf_counter()
    states = research.run_batch(
        [{"question": q, "mode": "partial"} for q in QUESTIONS], backend=backend, num_threads=4
    )
    print(f"{len(QUESTIONS)} partial-tool programs at once: {time.perf_counter() - start:.1f} s")
    for question, state in zip(QUESTIONS, states, strict=True):
        error = state.error()
        failures += error is not None
        print(f"program      {'ok  ' if error is None else 'FAIL'} {question!r}: {error or ''}")
    backend.shutdown()
    print("batch check:", "passed" if not failures else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
