"""How a tool's result (or error) is written into the program state.

The rendering is append-only: the state before the result is an untouched prefix of the state
after it, so the backend's prefix cache (RadixAttention on the server, ours locally) already
holds everything but the new tokens. Pure functions over text; nothing here touches sglang.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sgl_conveyor.errors import ToolCallError

TRUNCATION_MARKER = "… [truncated {n} characters]"


@dataclass(frozen=True)
class Render:
    """Where and how the result goes.

    style:
      "auto"          a tool message after the assistant's turn when the call is inside a chat
                      role, else inline text;
      "tool_message"  always a message of role `role` (the template's own affixes for that role
                      if it has them, else ChatML-style affixes derived from the user role);
      "inline"        `inline_template` appended right after the call, in the same turn.
    max_chars: results longer than this are cut with a marker (None: the spec's
      result_max_chars).
    formatter: turns the result value into text (default: compact JSON, strings as they are).
    prewarm: once the result is in the state, have the backend prefill it into its prefix cache
      (sglang's `cache_prefix`, as its fork pre-warming does), so the next gen finds the whole
      state cached and prefills only what it adds itself.
    """

    style: str = "auto"
    role: str = "tool"
    inline_template: str = "\n[{tool} result] {content}\n"
    error_template: str = "Error: {message}"
    max_chars: int | None = None
    formatter: Callable[[Any], str] | None = None
    prewarm: bool = True

    def __post_init__(self) -> None:
        if self.style not in ("auto", "tool_message", "inline"):
            raise ValueError(f"unknown render style {self.style!r}")


def coerce_render(value: str | Render | Callable[[Any], str] | None) -> Render:
    if value is None:
        return Render()
    if isinstance(value, Render):
        return value
    if isinstance(value, str):
        return Render(style=value)
    if callable(value):
        return Render(formatter=value)
    raise TypeError(f"render must be a style name, a Render or a callable, not {type(value)}")


def result_text(value: Any, render: Render, max_chars: int) -> str:
    """The text of a result or an error, cut to `max_chars` with a visible marker."""
    if isinstance(value, ToolCallError):
        text = render.error_template.format(message=value.message, kind=value.kind)
    elif render.formatter is not None:
        text = render.formatter(value)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return truncate(text, max_chars)


def truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    marker = TRUNCATION_MARKER.format(n=len(text) - max_chars)
    return text[: max(0, max_chars - len(marker))] + marker


def role_affixes(role_table: Mapping[str, tuple[str, str]], role: str) -> tuple[str, str]:
    """Prefix and suffix of a message of `role` in a chat template.

    Templates that lack the role (sglang's ChatML has only system/user/assistant) get the user
    role's affixes with the role name substituted, which is exactly ChatML's convention for
    other roles; if the user prefix does not name its role, the user affixes are used as is.
    """
    if role in role_table:
        return role_table[role]
    prefix, suffix = role_table.get("user", ("", ""))
    if "user" in prefix:
        return prefix.replace("user", role, 1), suffix
    return prefix, suffix
