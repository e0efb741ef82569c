"""Chat templates: sglang's matching for models its client does not recognise by name, and the
Jinja template with tools that `serve`'s chat API renders (and that vLLM can be given).

`sgl.RuntimeEndpoint` picks a chat template from the server's model path; SmolLM2 (ChatML)
is not in sglang's list, so a program pointed at a server running it would get the plain
"default" template. Registering a matcher fixes that for every client in this process. It only
adds matches sglang lacks; it never overrides one.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

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


TOOL_CHAT_TEMPLATE = "hermes_chatml.jinja"


def tool_chat_template_path() -> Path:
    """The ChatML chat template with hermes-style tool calls (`<tool_call>` blocks), as a file:
    what `sgl-conveyor serve` renders chat requests with, and what to pass to vLLM as
    `--chat-template` (with `--tool-call-parser hermes`) so both servers see the same prompts."""
    path = resources.files("sgl_conveyor.backends") / "templates" / TOOL_CHAT_TEMPLATE
    if not isinstance(path, Path):
        raise RuntimeError(f"sgl_conveyor is not installed as files on disk ({path!r})")
    return path


def tool_chat_template() -> str:
    """The text of `tool_chat_template_path()`."""
    return tool_chat_template_path().read_text(encoding="utf-8")
