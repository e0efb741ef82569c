"""Shared fixtures: the embedded model is loaded once per test session, on first use.

`local_backend` runs in float32, the reference precision: tests compare outputs of two paths
(streamed vs not, cached vs not, batched vs alone) token for token, and float32 keeps those
comparisons exact where bfloat16 rounding could flip a near tie. Tests that use it are marked
`model`; tests that must not load it simply do not ask for it.
"""

from __future__ import annotations

import os

# Before anything imports torch: libgomp's default spin-waiting makes decoding collapse (25 to
# under 1 token/s measured) when other processes compete for the cores, as in a shared CI box.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest


@pytest.fixture(scope="session")
def local_backend():
    """A `LocalBackend` on the packaged SmolLM2-135M-Instruct (float32, fixed seed)."""
    from sgl_conveyor.backends.local import LocalBackend

    backend = LocalBackend(dtype="float32", seed=1234)
    yield backend
    backend.shutdown()


@pytest.fixture(scope="session")
def local_engine(local_backend):
    """The engine under `local_backend` (the API an HTTP server would use)."""
    return local_backend.engine


@pytest.fixture(scope="session")
def smol_tokenizer():
    """SmolLM2's tokenizer alone (no model, no torch)."""
    from sgl_conveyor.backends.local import load_tokenizer

    return load_tokenizer()
