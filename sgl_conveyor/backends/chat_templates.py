"""Chat-template matching for models sglang's client does not recognise by name.

`sgl.RuntimeEndpoint` picks a chat template from the server's model path; SmolLM2 (ChatML)
is not in sglang's list, so a program pointed at a server running it would get the plain
"default" template. Registering a matcher fixes that for every client in this process. It only
adds matches sglang lacks; it never overrides one.
"""

from __future__ import annotations

import re

_CHATML_MODELS = re.compile(r"smollm", re.IGNORECASE)
_registered = False


def _match(model_path: str) -> str | None:
    return "chatml" if _CHATML_MODELS.search(model_path or "") else None


def register() -> None:
    """Idempotent; done when sgl_conveyor is imported."""
    global _registered
    if _registered:
        return
    from sglang.lang.chat_template import register_chat_template_matching_function

    register_chat_template_matching_function(_match)
    _registered = True
