"""Single-flight: concurrent lookups of one id share one Redis read and one fetch.

The first lookup of an id (the leader) registers a :class:`Flight` and reads
Redis itself, inline, so a Redis hit costs no extra task. If the copy is not
fresh, the fetch (and the cache write after it) runs as its own task; every
lookup of that id, the leader included, then waits for the flight's future
through :func:`wait`, which shields the shared work from the waiter's
cancellation and applies the waiter's own deadline. A lookup that arrives while
a flight is registered joins it; the flight is unregistered once its answer is
written, so the next lookup finds it in the cache.

If the leader is cancelled during its Redis read while others wait, the flight
is handed to a task (by the client), so the waiters still get an answer.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Flight(Generic[T]):
    """The shared work for one id.

    Attributes:
        future: Resolved with the outcome; never with an exception.
        stale: A copy past its freshness that may be served if the fetch fails.
        stale_age: The age of ``stale`` in seconds.
        waiters: Lookups currently waiting in :func:`wait`.
        invalidated: Set when the id was invalidated meanwhile: the result is
            delivered to the waiters but not cached.
        warned: Whether serving the stale copy was already logged.
    """

    __slots__ = ("future", "invalidated", "stale", "stale_age", "waiters", "warned")

    def __init__(self, future: asyncio.Future[T]) -> None:
        self.future = future
        self.stale: dict[str, Any] | None = None
        self.stale_age = 0.0
        self.waiters = 0
        self.invalidated = False
        self.warned = False


async def wait(flight: Flight[T], within: float) -> T:
    """Wait for a flight's outcome for at most ``within`` seconds.

    Cancelling the waiter (or its timeout expiring) leaves the shared work
    running for the others.

    Raises:
        TimeoutError: ``within`` seconds passed first.
    """
    future = flight.future
    if future.done():
        return future.result()
    if within <= 0:
        raise TimeoutError
    flight.waiters += 1
    try:
        async with asyncio.timeout(within):
            return await asyncio.shield(future)
    finally:
        flight.waiters -= 1
