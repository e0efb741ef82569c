"""The SGLang server as a backend for partial tools: streams that can be aborted.

sglang's `RuntimeEndpoint` streams `/generate` but sends no request id and never closes the
response, so a call known to be invalid (or already complete) keeps decoding on the GPU. Here a
stream carries a `rid`, and closing it aborts the request (`POST /abort_request`) and closes the
connection. `ConveyorEndpoint` is a drop-in `RuntimeEndpoint` whose every stream behaves so;
programs that pass a plain `sgl.RuntimeEndpoint` get the same for their partial tools.
Behind SGLang's router the close is what stops the request: sglang-router 0.3.2 has no
`/abort_request` route (it answers 404), but it drops its connection to the worker when the
client's goes, and the worker (an SGLang server or `sgl-conveyor serve`) aborts on that.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from sglang.lang.backend.runtime_endpoint import RuntimeEndpoint

from sgl_conveyor.errors import BackendError
from sgl_conveyor.sampling import SERVER_LOGPROB_FIELDS, dtype_constraint

try:  # moved after sglang 0.5.2
    from sglang.lang.global_config import global_config
except ImportError:  # pragma: no cover - sglang 0.5.2
    from sglang.global_config import global_config


def _headers(endpoint: RuntimeEndpoint) -> dict[str, str]:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if endpoint.api_key is not None:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    return headers


def _payload(endpoint: RuntimeEndpoint, s: Any, sp: Any, rid: str) -> dict[str, Any]:
    if getattr(sp, "dtype", None) is not None:
        sp.regex, sp.stop = dtype_constraint(sp.dtype, sp.regex, sp.stop)
    data: dict[str, Any] = {
        "text": s.text_,
        "sampling_params": {
            "skip_special_tokens": global_config.skip_special_tokens_in_output,
            "spaces_between_special_tokens": global_config.spaces_between_special_tokens_in_out,
            **{k: v for k, v in sp.to_srt_kwargs().items() if v is not None},
        },
        "stream": True,
        "rid": rid,
    }
    for item in SERVER_LOGPROB_FIELDS:
        value = getattr(sp, item, None)
        if value is not None and value != (None,):
            data[item] = value
    images = getattr(s, "images_", None)
    if images:
        if len(images) != 1:
            raise BackendError("the SGLang server takes one image per request")
        data["image_data"] = images[0][1]
    return data


def abort_request(endpoint: RuntimeEndpoint, rid: str) -> None:
    """Ask the server to stop a request. Best effort: a finished request is not an error."""
    try:
        requests.post(
            endpoint.base_url + "/abort_request",
            json={"rid": rid},
            headers=_headers(endpoint),
            timeout=5,
            verify=endpoint.verify if endpoint.verify is not None else True,
        )
    except requests.RequestException:
        pass


def stream_generate(
    endpoint: RuntimeEndpoint, s: Any, sampling_params: Any, *, rid: str | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`/generate` with `stream: true` and a request id; closing the iterator aborts it.

    Yields (text delta, meta_info) like RuntimeEndpoint.generate_stream. Accepts both the
    default cumulative events and `--incremental-streaming-output` deltas. A server error event
    raises BackendError with the server's message.
    """
    rid = rid or uuid.uuid4().hex
    data = _payload(endpoint, s, sampling_params, rid)
    try:
        res = requests.post(
            endpoint.base_url + "/generate",
            json=data,
            stream=True,
            headers=_headers(endpoint),
            verify=endpoint.verify if endpoint.verify is not None else True,
        )
    except requests.RequestException as e:
        raise BackendError(f"cannot reach the SGLang server at {endpoint.base_url}: {e}") from e
    if res.status_code != 200:
        body = res.text[:500]
        res.close()
        raise BackendError(f"the SGLang server answered {res.status_code}: {body}")
    received = ""
    finished = False
    try:
        for line in res.iter_lines(decode_unicode=False):
            if not line or not line.startswith(b"data:"):
                continue
            chunk = line[5:].strip()
            if chunk == b"[DONE]":
                finished = True
                break
            event = json.loads(chunk)
            if "error" in event:
                err = event["error"]
                message = err.get("message", err) if isinstance(err, dict) else err
                finished = True
                raise BackendError(f"the SGLang server failed the request: {message}")
            text = event.get("text", "")
            if text.startswith(received):
                delta = text[len(received) :]
                received = text
            else:  # an incremental-streaming server sends deltas
                delta = text
                received += text
            meta = event.get("meta_info", {})
            if meta.get("finish_reason") is not None:
                finished = True
            yield delta, meta
        finished = True
    finally:
        if not finished:
            abort_request(endpoint, rid)
        res.close()


class ConveyorEndpoint(RuntimeEndpoint):
    """`sgl.RuntimeEndpoint` whose streams carry a request id and abort when closed, and whose
    batch requests also pass through SGLang's router."""

    def generate_stream(self, s: Any, sampling_params: Any):
        return stream_generate(self, s, sampling_params)

    def _generate_http_request(self, s: Any, data: dict[str, Any]) -> Any:
        """A batch (a list `text` or a list of `input_ids` lists, as `sgl.select` sends) goes
        as one request per prompt, concurrently: sglang-router 0.3.2 refuses a list `text`
        ("invalid type: sequence, expected a string"). The answer is the server's batch
        answer, a list of results in prompt order."""
        text, ids = data.get("text"), data.get("input_ids")
        if isinstance(text, list):
            key, items = "text", text
        elif isinstance(ids, list) and ids and isinstance(ids[0], list):
            key, items = "input_ids", ids
        else:
            return super()._generate_http_request(s, data)
        send = super()._generate_http_request
        with ThreadPoolExecutor(max_workers=min(len(items), 16)) as pool:
            return list(pool.map(lambda item: send(s, {**data, key: item}), items))

    def abort(self, rid: str) -> None:
        abort_request(self, rid)
