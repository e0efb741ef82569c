"""Pinning in the embedded engine: a `+pin` request leaves its sequence pinned until the
follow-up that extends it arrives; a request without the mark pins nothing."""

from __future__ import annotations

import pytest

from sgl_conveyor.backends.local import SamplingParams
from sgl_conveyor.backends.pinning import call_rid

pytestmark = pytest.mark.model

CALL = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"


def test_a_marked_request_is_pinned_until_its_follow_up_reuses_it(local_engine):
    local_engine.flush_cache()
    before = local_engine.stats()
    rid = call_rid(30)
    text, meta = local_engine.submit(
        CALL, SamplingParams(max_new_tokens=4, temperature=0), rid=rid
    ).result()
    pins = local_engine.radix.pins()
    assert set(pins) == {rid}
    assert pins[rid] >= meta["prompt_tokens"]  # the prompt and (most of) the output
    assert local_engine.stats()["pins"] == before["pins"] + 1

    followup = CALL + text + "<|im_end|>\n<|im_start|>tool\nblue<|im_end|>\n"
    _, meta2 = local_engine.submit(followup, SamplingParams(max_new_tokens=0)).result()
    assert meta2["cached_tokens"] >= pins[rid] - 1
    assert local_engine.radix.pins() == {}
    assert local_engine.stats()["pins_reused"] == before["pins_reused"] + 1


def test_an_unmarked_request_pins_nothing(local_engine):
    local_engine.flush_cache()
    local_engine.submit(
        CALL, SamplingParams(max_new_tokens=2, temperature=0), rid="plain-id"
    ).result()
    assert local_engine.radix.pins() == {}
