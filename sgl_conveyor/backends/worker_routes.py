"""What SGLang's router asks of a worker beyond `/generate`, answered as an SGLang server does.

sglang-router 0.3.2 registers a worker with `GET /health`, `/server_info` and `/model_info`,
checks it with `/health` (or `--health-check-endpoint`), forwards `/get_model_info` and
`/flush_cache`, and its power-of-two policy polls `GET /get_load`. Those it reads are in
`ConveyorServer`'s route table; this module holds the ones only a router needs. Nothing here
may change what a request does: these routes only report.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def router_routes(engine: Any) -> list[Route]:
    """The routes a router polls, for a server whose work all goes through `engine`."""

    async def get_load(request: Request) -> Response:
        # One entry per data-parallel rank (one here), the fields the router sums: it reads
        # `num_tokens` as the worker's load (power_of_two compares two workers' loads).
        return JSONResponse([{"dp_rank": 0, **engine.load()}])

    return [Route("/get_load", get_load, methods=["GET"])]
