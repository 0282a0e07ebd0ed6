"""Resolving a lookup across the cache levels, one flight per id.

Given a canonical id that the near cache did not answer, the resolver reads
Redis and, unless the copy there is fresh, fetches from the Building Directory,
writes both cache levels and answers. It decides *what* a lookup came to (an
:class:`Outcome`); the client counts it and returns or raises it.

Concurrent lookups of one id share one Redis read and one upstream fetch
(single-flight, see :mod:`instrumentation._singleflight`): a thousand cold
lookups of one id make one HTTP call. The shared fetch runs as its own task, so
a cancelled caller does not cancel it for the others, and each caller keeps its
own deadline (``Settings.deadline``).

Freshness and stale-if-error: a found building is fresh for ``cache_ttl``
seconds after it was fetched, a "not found" for ``negative_ttl``. An older copy
is a miss that triggers a refetch, yet it stays in Redis ``stale_max_age``
seconds longer: if the refetch fails (or outlasts the caller's deadline), that
copy is served instead (status ``stale``, one WARNING per shared lookup).
Errors are never cached.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Coroutine
from typing import Any, Final, Literal

from instrumentation import _singleflight
from instrumentation._cache import RedisCache
from instrumentation._http import Upstream
from instrumentation._near_cache import NearCache
from instrumentation._singleflight import Flight
from instrumentation.config import Settings
from instrumentation.errors import (
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnknownError,
)

logger = logging.getLogger(__name__)

Status = Literal["success", "not_found", "stale", "error"]
Level = Literal["near", "redis"]

_perf_counter: Final = time.perf_counter
_wall_clock: Final = time.time


class Outcome:
    """What one lookup came to, before it is counted and returned.

    Attributes:
        status: ``success``, ``not_found``, ``stale`` or ``error``.
        building: The building for ``success`` and ``stale``.
        error: The failure for ``error``.
        level: The cache level that answered (``near``, ``redis``), or None.
    """

    __slots__ = ("building", "error", "level", "status")

    def __init__(
        self,
        status: Status,
        building: dict[str, Any] | None = None,
        error: UpstreamError | None = None,
        level: Level | None = None,
    ) -> None:
        self.status = status
        self.building = building
        self.error = error
        self.level = level


class Resolver:
    """Find the outcome of lookups through Redis and the upstream.

    Args:
        settings: TTLs, stale window and deadline.
        upstream: The Building Directory.
        cache: The Redis level, or None without Redis.
        near: The in-process level, or None when it is off.
    """

    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        cache: RedisCache | None,
        near: NearCache | None,
    ) -> None:
        self._upstream = upstream
        self._cache = cache
        self._near = near
        self._flights: dict[str, Flight[Outcome]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._fresh_for = settings.cache_ttl
        self._negative_for = settings.negative_ttl
        self._stale_until = settings.cache_ttl + settings.stale_max_age
        self._deadline = settings.deadline

    async def resolve(self, building_id: str, start: float) -> Outcome:
        """Return the outcome of looking up a canonical id, joining any flight.

        Args:
            building_id: A canonical building id.
            start: When the lookup started (``time.perf_counter``), for its
                deadline.
        """
        flight = self._flights.get(building_id)
        if flight is None:
            return await self._lead(building_id, start)
        return await self._follow(flight, start)

    def invalidate(self, building_id: str) -> None:
        """Let a flight in progress answer its callers but not write the caches."""
        flight = self._flights.pop(building_id, None)
        if flight is not None:
            flight.invalidated = True

    async def aclose(self) -> None:
        """Cancel the shared fetches still running; their waiters get an error."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _lead(self, building_id: str, start: float) -> Outcome:
        flight: Flight[Outcome] = Flight(asyncio.get_running_loop().create_future())
        self._flights[building_id] = flight
        if self._cache is not None:
            try:
                outcome = await self._read(building_id, flight)
            except BaseException:
                self._abandon(building_id, flight)
                raise
            if outcome is not None:
                self._land(building_id, flight, outcome)
                logger.debug("building %s: Redis hit", building_id)
                return outcome
        logger.debug("building %s: miss, fetching", building_id)
        self._spawn(building_id, flight, self._refresh(building_id, flight))
        return await self._follow(flight, start)

    async def _follow(self, flight: Flight[Outcome], start: float) -> Outcome:
        try:
            return await _singleflight.wait(
                flight, self._deadline - (_perf_counter() - start)
            )
        except TimeoutError:
            pass
        if flight.stale is not None:
            if not flight.warned:  # once per flight, not once per waiter
                flight.warned = True
                logger.warning(
                    "Building Directory gave no answer within the %g s deadline; "
                    "serving a copy fetched %.0f s ago",
                    self._deadline,
                    flight.stale_age,
                )
            return Outcome("stale", flight.stale)
        return Outcome(
            "error",
            error=UpstreamTimeoutError(
                f"the Building Directory gave no answer within the "
                f"{self._deadline:g} s deadline"
            ),
        )

    async def _read(self, building_id: str, flight: Flight[Outcome]) -> Outcome | None:
        """Read Redis; return a fresh outcome, or None (keeping a stale copy)."""
        cache = self._cache
        if cache is None:
            return None
        cached = await cache.get(building_id)
        if cached is None or flight.invalidated:
            return None
        building, fetched_at = cached
        age = _wall_clock() - fetched_at
        if building is None:
            if age >= self._negative_for:
                return None
            if self._near is not None:
                self._near.put(building_id, None, self._negative_for - age)
            return Outcome("not_found", level="redis")
        if age < self._fresh_for:
            if self._near is not None:
                self._near.put(building_id, building, self._fresh_for - age)
            return Outcome("success", building, level="redis")
        if age < self._stale_until:
            flight.stale = building
            flight.stale_age = age
        logger.debug(
            "building %s: cached copy is %.0f s old, refetching", building_id, age
        )
        return None

    async def _refresh(self, building_id: str, flight: Flight[Outcome]) -> None:
        """Fetch from the upstream, write the caches, answer the flight."""
        try:
            building = await self._upstream.fetch(building_id)
        except UpstreamError as error:
            if flight.stale is None:
                self._land(building_id, flight, Outcome("error", error=error))
                return
            logger.warning(
                "Building Directory failed for %s (%s); serving a copy fetched "
                "%.0f s ago",
                building_id,
                error,
                flight.stale_age,
            )
            self._land(building_id, flight, Outcome("stale", flight.stale))
            return
        # Write before answering, so that once a lookup returns, the next one
        # finds the entry in Redis (the write is bounded by redis_timeout).
        if not flight.invalidated:
            if self._near is not None:
                fresh_for = self._negative_for if building is None else self._fresh_for
                self._near.put(building_id, building, fresh_for)
            if self._cache is not None:
                await self._cache.set(building_id, building)
        status: Status = "not_found" if building is None else "success"
        self._land(building_id, flight, Outcome(status, building))

    async def _fill(self, building_id: str, flight: Flight[Outcome]) -> None:
        """Finish a flight whose leader was cancelled while reading Redis."""
        outcome = await self._read(building_id, flight)
        if outcome is not None:
            self._land(building_id, flight, outcome)
            return
        await self._refresh(building_id, flight)

    def _land(
        self, building_id: str, flight: Flight[Outcome], outcome: Outcome
    ) -> None:
        self._unregister(building_id, flight)
        flight.future.set_result(outcome)

    def _unregister(self, building_id: str, flight: Flight[Outcome]) -> None:
        if self._flights.get(building_id) is flight:
            del self._flights[building_id]

    def _abandon(self, building_id: str, flight: Flight[Outcome]) -> None:
        """The leader was cancelled while reading Redis: finish or drop its flight."""
        if flight.future.done():
            return
        if flight.waiters:
            self._spawn(building_id, flight, self._fill(building_id, flight))
            return
        self._unregister(building_id, flight)
        flight.future.cancel()

    def _spawn(
        self,
        building_id: str,
        flight: Flight[Outcome],
        work: Coroutine[Any, Any, None],
    ) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._task_done, building_id, flight))

    def _task_done(
        self, building_id: str, flight: Flight[Outcome], task: asyncio.Task[None]
    ) -> None:
        self._tasks.discard(task)
        self._unregister(building_id, flight)
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            logger.error(
                "shared lookup of %s failed unexpectedly",
                building_id,
                exc_info=failure,
            )
        if not flight.future.done():
            error = UpstreamUnknownError(
                "the shared lookup stopped before answering"
                + (" (client closed)" if failure is None else f" ({failure!r})")
            )
            error.__cause__ = failure
            flight.future.set_result(Outcome("error", error=error))
