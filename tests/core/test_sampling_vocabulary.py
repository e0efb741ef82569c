"""The one vocabulary of sampling parameters: `gen(dtype=...)` becomes the regex and stops that
sglang's own RuntimeEndpoint makes of it (checked against sglang itself), and the names that
the node, the backends, serve and the eval share come from one module."""

from __future__ import annotations

import warnings

import pytest
from sglang.lang.backend.runtime_endpoint import RuntimeEndpoint
from sglang.lang.ir import SglSamplingParams

from sgl_conveyor.sampling import GEN_PARAMETERS, RUN_PARAMETERS, dtype_constraint


@pytest.mark.parametrize("dtype", [int, "int", float, "float", str, "str", bool, "bool"])
@pytest.mark.parametrize("regex", [None, "[a-z]+"])
def test_dtype_becomes_what_sglang_makes_of_it(dtype, regex):
    theirs = SglSamplingParams(dtype=dtype, regex=regex, stop=["END"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        RuntimeEndpoint._handle_dtype_to_regex(None, theirs)  # sglang's own (private) mapping
        ours = dtype_constraint(dtype, regex, ["END"])
    assert ours == (theirs.regex, list(theirs.stop))


def test_an_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="Invalid dtype"):
        dtype_constraint(complex, None, ())


def test_the_node_serve_and_the_eval_share_the_names():
    import inspect

    pytest.importorskip("starlette")  # serve's dependency (absent from the sglang 0.5.2 venv)

    from sgl_conveyor.backends import server
    from sgl_conveyor.eval import workload
    from sgl_conveyor.lang.partial_tool import partial_tool
    from sgl_conveyor.sampling import SERVER_SAMPLING_KEYS

    assert server.SAMPLING_KEYS is SERVER_SAMPLING_KEYS
    assert workload._RUN_PARAMETERS is RUN_PARAMETERS
    accepted = set(inspect.signature(partial_tool).parameters)
    assert set(GEN_PARAMETERS) <= accepted  # partial_tool takes every sampling knob of gen
