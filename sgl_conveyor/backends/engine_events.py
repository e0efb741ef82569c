"""The engine's events of one request, as an async iterator for the HTTP routes.

The engine's handle is a blocking iterator; a thread pumps it into the event loop, so a route
never blocks the loop. An engine failure arrives as an Exception item, last. Cancelling the
request is the route's (it knows whether the client went away).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any


async def engine_events(handle: Any, name: str) -> AsyncIterator[Any]:
    """Each event of `handle` (`name`: the pump thread's), then an Exception if it failed."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    done = object()

    def pump() -> None:
        try:
            for event in handle:
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except Exception as e:
            loop.call_soon_threadsafe(queue.put_nowait, e)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, done)

    threading.Thread(target=pump, name=name, daemon=True).start()
    while True:
        item = await queue.get()
        if item is done:
            return
        yield item
