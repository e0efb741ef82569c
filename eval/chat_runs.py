"""A workload run through an OpenAI-compatible chat API (`--backend openai:URL --model M`):
the program's conversation as chat messages, its tool call as a forced tool call streamed by
the server and run by `sgl_conveyor.chat`, then the follow-up answer.

It produces the same timelines and generation facts as a program run, so the runner measures
both alike and the records have the same fields. It never adjusts a number.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

BACKEND_PREFIX = "openai:"


@dataclass(frozen=True)
class ChatForm:
    """How a workload's program reads as a chat conversation.

    tool:      the registry name of the tool the call uses (offered alone, chosen by name:
               the server constrains the arguments to its schema).
    messages:  the task input -> the conversation before the call (system, examples, request).
    followup:  the user message after the tool results; the answer follows it.
    retries:   calls written again after a rejected one (the model reads the error), as the
               program's `partial_tool(retries=...)`.
    call_options, answer_options: request fields of the call and of the answer.
    answer_tool_choice: the answer offers the same tools with this choice ("none": answer,
               do not call), so its prompt starts like the call's and the server's prefix cache
               can serve it; None: the answer request offers no tools.
    patterns:  regexes the server holds string arguments to (JSON Schema `pattern`), as the
               program's `regex=` holds its call.
    """

    tool: str
    messages: Callable[[Mapping[str, Any]], list[dict[str, Any]]]
    followup: str
    retries: int = 0
    call_options: Mapping[str, Any] = field(
        default_factory=lambda: {"max_tokens": 96, "temperature": 0.0}
    )
    answer_options: Mapping[str, Any] = field(
        default_factory=lambda: {"max_tokens": 48, "temperature": 0.0}
    )
    answer_tool_choice: str | None = "none"
    patterns: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ChatBackend:
    """An OpenAI-compatible server: its base URL (…/v1) and the model to ask for."""

    base_url: str
    model: str
    _client: Any = None
    _flush_route: str | None = ""  # "": not tried yet; None: the server has none

    @classmethod
    def parse(cls, spec: str, model: str | None) -> ChatBackend:
        """`openai:http://host:port/v1` (a URL without a path gets `/v1`)."""
        if not spec.startswith(BACKEND_PREFIX):
            raise ValueError(f"not an openai: backend: {spec!r}")
        url = spec[len(BACKEND_PREFIX) :].rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"openai: needs an http(s) URL, not {url!r}")
        if not model:
            raise ValueError("--backend openai:URL needs --model (the server's model name)")
        if url.count("/") == 2:  # http://host:port
            url += "/v1"
        return cls(url, model)

    @property
    def client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key="none", max_retries=0)
        return self._client

    def describe(self) -> str:
        return f"openai-compatible server {self.base_url} (model {self.model})"

    def flush_cache(self) -> bool:
        """Empty the server's prefix cache, so each run starts cold and its follow-up hit is
        its own: SGLang and `serve` answer `POST /flush_cache`, vLLM `POST /reset_prefix_cache`
        (started with VLLM_SERVER_DEV_MODE=1). False when the server offers neither (a
        provider): the runs then share the cache, and the hits say so."""
        import urllib.error
        import urllib.request

        if self._flush_route is None:
            return False
        root = self.base_url.rsplit("/v1", 1)[0]
        routes = [self._flush_route] if self._flush_route else ["flush_cache", "reset_prefix_cache"]
        for route in routes:
            try:
                req = urllib.request.Request(f"{root}/{route}", data=b"", method="POST")
                with urllib.request.urlopen(req, timeout=30):
                    pass
            except (urllib.error.URLError, OSError):
                continue
            self._flush_route = route
            return True
        self._flush_route = None
        return False


@dataclass
class ChatOutcome:
    """One run of a chat form: the call rounds, the answer, and when the run began and ended."""

    t0: float
    t1: float = 0.0
    call_turns: list[Any] = field(default_factory=list)
    answer: Any = None
    error: str | None = None

    @property
    def turns(self) -> list[Any]:
        return [*self.call_turns, *([self.answer] if self.answer is not None else [])]

    def timelines(self) -> list[Any]:
        return [tl for turn in self.call_turns for c in turn.calls for tl in c.timelines]

    def generations(self) -> list[dict[str, Any]]:
        """One entry per request, in the shape the runner records for a program's gens."""
        out = []
        for turn in self.turns:
            chars = len(turn.content) + sum(len(c.arguments_text) for c in turn.calls)
            out.append(
                {
                    "kind": "tool_call" if turn.calls else "gen",
                    "start_s": _rel(turn.requested, self.t0),
                    "first_s": _rel(turn.first_chunk, self.t0),
                    "end_s": _rel(turn.stream_end, self.t0),
                    "chars": chars,
                    "prompt_tokens": turn.prompt_tokens,
                    "cached_tokens": turn.cached_tokens,
                    "completion_tokens": turn.completion_tokens,
                    "closed_early": turn.stopped is not None,
                }
            )
        return out


def _rel(t: float | None, t0: float) -> float | None:
    return None if t is None else t - t0


def run_chat_task(
    form: ChatForm, backend: ChatBackend, task_input: Mapping[str, Any], mode: str
) -> ChatOutcome:
    """The conversation of one task: the forced call (again after a rejection, up to
    `retries`), the tool messages, the follow-up and the answer. Never raises for what the
    server or the model did: the outcome's `error` says."""
    from sgl_conveyor import chat
    from sgl_conveyor.chat import ToolSet

    # One tool set for the call and the answer: the same definitions render the same prompt,
    # which the server's prefix cache then serves to the answer.
    tools = ToolSet([form.tool], patterns={form.tool: form.patterns})

    client, model = backend.client, backend.model
    choice = {"type": "function", "function": {"name": form.tool}}
    messages = list(form.messages(task_input))
    outcome = ChatOutcome(t0=time.perf_counter())
    try:
        for _ in range(form.retries + 1):
            turn = chat.complete(
                client,
                model=model,
                messages=messages,
                tools=tools,
                mode=mode,
                tool_choice=choice,
                **form.call_options,
            )
            outcome.call_turns.append(turn)
            messages += turn.messages
            turn.mark_injected()
            if turn.error is not None:
                outcome.error = f"{type(turn.error).__name__}: {turn.error}"
                return outcome
            if all(c.error is None for c in turn.calls):
                break
        messages.append({"role": "user", "content": form.followup})
        offer: dict[str, Any] = {}
        if form.answer_tool_choice is not None:
            offer = {"tools": tools, "tool_choice": form.answer_tool_choice}
        outcome.answer = chat.complete(
            client, model=model, messages=messages, **offer, **form.answer_options
        )
        if outcome.answer.error is not None:
            outcome.error = f"{type(outcome.answer.error).__name__}: {outcome.answer.error}"
    except Exception as e:  # a bug of ours must not end the eval either
        outcome.error = f"{type(e).__name__}: {e}"
    finally:
        outcome.t1 = time.perf_counter()
    return outcome


def system_and_request(system: str, input_name: str) -> Callable[[Mapping[str, Any]], list]:
    """The simplest conversation: a system prompt, then the task's request as the user's."""

    def messages(task_input: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": str(task_input[input_name])},
        ]

    return messages


def chat_workloads(workloads: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """The workloads that have a chat form, and the names of those that do not."""
    have = [w for w in workloads if getattr(w, "chat", None) is not None]
    return have, [w.name for w in workloads if getattr(w, "chat", None) is None]
