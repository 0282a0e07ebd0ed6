"""The cached, instrumented Building Directory client.

A lookup goes through up to three levels and stops at the first that answers:

1. the near cache, in process (optional, ``Settings.near_cache_size``);
2. Redis, shared by every process of the tenant (optional, ``Settings.redis_url``);
3. the Building Directory API.

Concurrent lookups of one id share one Redis read and one upstream fetch, and a
copy past its freshness stands in when the upstream fails (stale-if-error): see
:mod:`instrumentation._resolver`.

Redis never makes a lookup fail (see :mod:`instrumentation._cache`): a Redis
that is down, slow or paused costs at most ``redis_timeout`` per call until the
circuit breaker skips it; lookups then go upstream. Redis is one server or a
Redis Cluster (``REDIS_URL=redis+cluster://host:port``), see
:mod:`instrumentation._redis_client`.

Invalidations reach every process: :meth:`BuildingDirectoryClient.invalidate`
deletes the Redis entry and announces the id on the tenant's pub/sub channel;
each client with a near cache listens there and drops the id from its own,
within the pub/sub latency, or at worst ``near_cache_ttl`` while Redis is
unreachable (see :mod:`instrumentation._invalidation`).

Counting, per lookup (``get_building``): one ``requests_total`` status
(``success``, ``not_found``, ``stale``, ``error``, or ``invalid_id`` for a
malformed id, refused before any call), one duration, one cache ``hit`` (plus
``building_cache_level_hits_total`` with the level) or ``miss`` when a cache
level is configured, and one ``errors_total`` per failed lookup. Redis
failures, skipped Redis calls and unreadable entries count cache ``error``; each
write counts ``set``.

Buildings returned by the client may be shared with the near cache and with
concurrent callers: treat them as read-only (``denormalize`` copies).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Final

import httpx

from instrumentation._cache import RedisCache
from instrumentation._http import Upstream
from instrumentation._invalidation import InvalidationListener
from instrumentation._near_cache import NearCache
from instrumentation._resolver import Outcome, Resolver, Status
from instrumentation.config import Settings
from instrumentation.coordinates import Coordinates, read_coordinates
from instrumentation.denormalize import EnrichedRequest, denormalize
from instrumentation.errors import (
    ClientClosedError,
    DenormalizationError,
    InvalidBuildingIdError,
    UpstreamError,
    UpstreamHTTPError,
)
from instrumentation.ids import canonical_building_id
from instrumentation.metrics import REQUEST_STATUSES, BuildingDirectoryMetrics
from instrumentation.reports import Health, RedisState, WarmReport
from instrumentation.validation import Validation, judge

logger = logging.getLogger(__name__)

_perf_counter: Final = time.perf_counter

#: Invalidations waiting for Redis at most; past this, new ones are only logged.
MAX_PENDING_INVALIDATIONS: Final = 10_000
_RETRY_FIRST: Final = 0.5  # seconds before the first retry of an invalidation
_RETRY_CAP: Final = 5.0


@functools.cache
def _default_metrics() -> BuildingDirectoryMetrics:
    # One set on the default registry, shared by every client built without
    # its own, since registering the same names twice fails.
    return BuildingDirectoryMetrics()


class BuildingDirectoryClient:
    """Look up, validate and denormalize buildings, cached and instrumented.

    Use it as an async context manager; one client holds one HTTP connection
    pool and one Redis connection pool, and is meant to live as long as the
    application. Entering it learns a Redis Cluster's topology and, when both
    Redis and the near cache are on, starts the background task that applies
    other processes' invalidations to the near cache; leaving it
    (:meth:`aclose`) stops that task and closes the pools.

    Args:
        settings: Everything configurable; ``redis_url=None`` runs without
            Redis (the near cache, if sized, still works).
        metrics: Where to count; by default one shared set of metrics on
            prometheus_client's default registry.
        transport: An httpx transport replacing the network (tests).

    Raises:
        ConfigurationError: ``settings.base_url`` is not set, or the Redis URL
            cannot be used.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: BuildingDirectoryMetrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        metrics = _default_metrics() if metrics is None else metrics
        self.settings = settings
        self.metrics = metrics
        self._upstream = Upstream(settings, metrics, transport=transport)
        self._cache = (
            RedisCache(settings, metrics) if settings.redis_url is not None else None
        )
        self._near = (
            NearCache(settings.near_cache_size, settings.near_cache_ttl)
            if settings.near_cache_size > 0
            else None
        )
        self._counts_cache = self._cache is not None or self._near is not None
        self._closed = False
        # Invalidations Redis could not take: id -> when to stop trying
        # (time.monotonic), retried by one task until Redis takes them.
        self._pending: dict[str, float] = {}
        self._retrier: asyncio.Task[None] | None = None
        self._resolver = Resolver(settings, self._upstream, self._cache, self._near)
        self._listener = (
            InvalidationListener(
                settings,
                self._cache,
                forget=self.forget_local,
                resubscribed=self._near.clear,
            )
            if self._cache is not None and self._near is not None
            else None
        )

        # Pre-bound children: the hot path never calls .labels().
        self._hit = metrics.cache["hit"]
        self._miss = metrics.cache["miss"]
        self._near_hit = metrics.level_hits["near"]
        self._redis_hit = metrics.level_hits["redis"]
        self._status = {
            status: metrics.requests[("get_building", status)]
            for status in REQUEST_STATUSES
        }
        self._found = self._status["success"]
        self._not_found = self._status["not_found"]
        self._duration = metrics.duration["get_building"]
        self._errors = metrics.errors
        self._validations = metrics.validations
        self._coordinates = metrics.coordinates
        self._denormalized = metrics.denormalization

    async def __aenter__(self) -> BuildingDirectoryClient:
        if self._closed:
            raise ClientClosedError()
        starting = []
        if self._cache is not None:
            starting.append(self._cache.start())
        if self._listener is not None:
            starting.append(self._listener.start())
        # Both are bounded and never raise; together they wait for the longer.
        await asyncio.gather(*starting)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and shared fetches still running; close both pools.

        Every later call raises :class:`ClientClosedError`; closing again
        does nothing.
        """
        if self._closed:
            return
        self._closed = True
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier
            if self._pending:
                logger.warning(
                    "closing with %d invalidation(s) Redis never took; other "
                    "processes may serve old copies until they expire",
                    len(self._pending),
                )
        if self._listener is not None:
            await self._listener.aclose()
        await self._resolver.aclose()
        await self._upstream.aclose()
        if self._cache is not None:
            await self._cache.aclose()

    # -- lookups ---------------------------------------------------------------

    async def get_building(self, building_id: str) -> dict[str, Any] | None:
        """Return a building, from the fastest level that has a fresh copy.

        Args:
            building_id: A UUID in canonical form (either case).

        Returns:
            The building object (read-only, see the module docstring), or None
            when the Building Directory does not know the id.

        Raises:
            InvalidBuildingIdError: The id is malformed; nothing was called.
            ClientClosedError: The client was closed.
            UpstreamError: The Building Directory failed and no stale copy
                could stand in. The subclass tells timeout, HTTP error,
                unreadable body and anything else apart.
        """
        if self._closed:
            raise ClientClosedError()
        start = _perf_counter()
        near = self._near
        if near is not None and type(building_id) is str:
            entry = near.get(building_id)
            if entry is not None:
                building = entry[1]
                self._hit.inc()
                self._near_hit.inc()
                (self._not_found if building is None else self._found).inc()
                self._duration.observe(_perf_counter() - start)
                return building
        outcome = await self._resolve(building_id, start)
        return self._settle(outcome, start)

    async def _resolve(self, building_id: object, start: float) -> Outcome:
        try:
            canonical = canonical_building_id(building_id)
        except InvalidBuildingIdError:
            self._status["invalid_id"].inc()
            self._duration.observe(_perf_counter() - start)
            raise
        if canonical != building_id and self._near is not None:
            entry = self._near.get(canonical)
            if entry is not None:
                building = entry[1]
                status: Status = "not_found" if building is None else "success"
                return Outcome(status, building, level="near")
        return await self._resolver.resolve(canonical, start)

    def _settle(self, outcome: Outcome, start: float) -> dict[str, Any] | None:
        """Count a lookup's outcome; return its building or raise its error."""
        level = outcome.level
        if level is not None:
            self._hit.inc()
            (self._near_hit if level == "near" else self._redis_hit).inc()
        elif self._counts_cache:
            self._miss.inc()
        status = outcome.status
        self._status[status].inc()
        self._duration.observe(_perf_counter() - start)
        error = outcome.error
        if error is not None:
            self._errors[error.error_type].inc()
            raise _copy(error) from error.__cause__
        return outcome.building

    # -- validation and enrichment ------------------------------------------------

    async def validate(self, building_id: str) -> Validation:
        """Check that a building exists and is active; never raises for it.

        Args:
            building_id: The id named by the request.

        Returns:
            The verdict: ``valid``, ``invalid_not_found`` (also for a
            malformed id, with the ``InvalidBuildingIdError`` attached),
            ``invalid_inactive`` or ``error`` (with the ``UpstreamError``).
        """
        try:
            building = await self.get_building(building_id)
        except InvalidBuildingIdError as error:
            verdict = Validation("invalid_not_found", error=error)
        except UpstreamError as error:
            verdict = Validation("error", error=error)
        else:
            verdict = judge(building)
        self._validations[verdict.result].inc()
        return verdict

    def extract_coordinates(self, building: Mapping[str, Any]) -> Coordinates:
        """Read and count a building's coordinates; never raises.

        See :mod:`instrumentation.coordinates` for the shapes understood. A
        ``parse_error`` also counts ``errors_total{error_type="parse_error"}``.
        """
        coordinates = read_coordinates(building)
        self._coordinates[(coordinates.result, coordinates.source)].inc()
        if coordinates.result == "parse_error":
            self._errors["parse_error"].inc()
            logger.debug(
                "building %s: unreadable %s coordinates: %s",
                building.get("id") if isinstance(building, Mapping) else None,
                coordinates.source,
                coordinates.detail,
            )
        return coordinates

    def denormalize(
        self,
        building: Mapping[str, Any],
        request: Mapping[str, Any],
        *,
        coordinates: Coordinates | None = None,
    ) -> dict[str, Any]:
        """Return the request with the building's fields merged in, counted.

        See :mod:`instrumentation.denormalize` for the keys written.

        Args:
            building: The building.
            request: The request's fields; not modified.
            coordinates: The building's coordinates if already extracted (they
                are read, uncounted, otherwise).

        Raises:
            DenormalizationError: The building has no name, or either argument
                is not a mapping.
        """
        try:
            payload = denormalize(building, request, coordinates)
        except DenormalizationError:
            self._denormalized["failure"].inc()
            raise
        self._denormalized["success"].inc()
        return payload

    async def enrich_request(
        self, request: Mapping[str, Any], building_id: str
    ) -> EnrichedRequest:
        """Validate the building, read its coordinates and denormalize it.

        Never raises for the building: the outcome says what happened.

        Args:
            request: The request's fields.
            building_id: The building it names.

        Returns:
            The validation, and for a valid building its coordinates and the
            payload (None, with ``error`` set, if denormalization failed).
        """
        validation = await self.validate(building_id)
        if validation.building is None or validation.result != "valid":
            return EnrichedRequest(validation)
        coordinates = self.extract_coordinates(validation.building)
        try:
            payload = self.denormalize(
                validation.building, request, coordinates=coordinates
            )
        except DenormalizationError as error:
            return EnrichedRequest(validation, coordinates, None, error)
        return EnrichedRequest(validation, coordinates, payload)

    # -- cache management ---------------------------------------------------------

    async def warm(
        self, building_ids: Iterable[str], *, concurrency: int = 8
    ) -> WarmReport:
        """Fetch and cache the buildings not already cached.

        Each id is looked up like any other (and counted as a lookup), at most
        ``concurrency`` at a time; duplicates are handled once.

        Args:
            building_ids: The ids to warm, e.g. the most requested ones.
            concurrency: Lookups in flight at once.

        Returns:
            How many were fetched, already cached, unknown, or failed.
        """
        if self._closed:
            raise ClientClosedError()
        counts = {"fetched": 0, "cached": 0, "not_found": 0, "failed": 0}
        gate = asyncio.Semaphore(max(1, concurrency))

        async def warm_one(building_id: str) -> None:
            async with gate:
                start = _perf_counter()
                try:
                    outcome = await self._resolve(building_id, start)
                except InvalidBuildingIdError:
                    counts["failed"] += 1
                    return
                with_error = outcome.error is not None
                with contextlib.suppress(UpstreamError):  # counted; reported below
                    self._settle(outcome, start)
                if with_error or outcome.status == "stale":
                    counts["failed"] += 1
                elif outcome.status == "not_found":
                    counts["not_found"] += 1
                elif outcome.level is not None:
                    counts["cached"] += 1
                else:
                    counts["fetched"] += 1

        await asyncio.gather(*(warm_one(i) for i in dict.fromkeys(building_ids)))
        report = WarmReport(**counts)
        logger.info(
            "cache warming: %d fetched, %d already cached, %d not found, %d failed",
            report.fetched,
            report.cached,
            report.not_found,
            report.failed,
        )
        return report

    async def invalidate(self, building_id: str) -> bool:
        """Drop a building from Redis and from every process's near cache.

        The id is then announced on the tenant's invalidation channel, on
        which every client with a near cache drops it too (this one included,
        harmlessly). A fetch of the id already in flight still answers its
        callers but no longer writes the caches.

        Args:
            building_id: The building that changed.

        Returns:
            Whether an entry was dropped from Redis or this process's near
            cache. If Redis cannot be reached, this process's near cache is
            dropped at once and the Redis delete and announcement are retried
            in the background (backing off from 0.5 s to 5 s) until Redis
            takes them, for as long as an old copy could still be in Redis
            (``cache_ttl + stale_max_age``); one WARNING says so.

        Raises:
            InvalidBuildingIdError: The id is malformed.
        """
        if self._closed:
            raise ClientClosedError()
        canonical = canonical_building_id(building_id)
        dropped = self.forget_local(canonical)
        self._resolver.invalidate(canonical)
        if self._cache is not None:
            deleted = await self._cache.delete(canonical)
            if deleted is None or not await self._cache.publish(canonical):
                self._retry_later(canonical)
            dropped = dropped or bool(deleted)
        return dropped

    def _retry_later(self, building_id: str) -> None:
        """Queue an invalidation Redis could not take; start the retrier."""
        if (
            building_id not in self._pending
            and len(self._pending) >= MAX_PENDING_INVALIDATIONS
        ):
            logger.error(
                "%d invalidations already wait for Redis; building %s is not "
                "queued, other processes may serve its old copy until it expires",
                len(self._pending),
                building_id,
            )
            return
        settings = self.settings
        first = not self._pending
        self._pending[building_id] = (
            time.monotonic() + settings.cache_ttl + settings.stale_max_age
        )
        # One WARNING per outage, not one per invalidation.
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "Redis did not take the invalidation of building %s; retrying it "
            "(and any that follow) in the background until Redis answers",
            building_id,
        )
        if self._retrier is None or self._retrier.done():
            self._retrier = asyncio.get_running_loop().create_task(
                self._retry_invalidations()
            )

    async def _retry_invalidations(self) -> None:
        """Apply the queued invalidations to Redis once it answers again."""
        cache = self._cache
        if cache is None:
            return
        delay = _RETRY_FIRST
        while self._pending:
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_CAP)
            for building_id, give_up in list(self._pending.items()):
                if time.monotonic() >= give_up:
                    self._pending.pop(building_id, None)
                    logger.warning(
                        "gave up the invalidation of building %s: any old copy "
                        "has expired from Redis by now",
                        building_id,
                    )
                    continue
                if await cache.delete(building_id) is None:
                    break  # still failing: wait, then try them all again
                if not await cache.publish(building_id):
                    break
                self._pending.pop(building_id, None)
                logger.info(
                    "invalidation of building %s applied now that Redis answers",
                    building_id,
                )
            else:
                delay = _RETRY_FIRST

    def forget_local(self, building_id: str) -> bool:
        """Drop a building from this process's near cache only.

        Meant for invalidations that another process already applied to Redis
        (the invalidation listener calls it for each announced id). A fetch of
        the id in flight here no longer writes the caches either, since it may
        have read the copy that was just deleted.

        Returns:
            Whether the near cache held it (False for a malformed id).
        """
        if self._near is None:
            return False
        try:
            canonical = canonical_building_id(building_id)
        except InvalidBuildingIdError:
            return False
        self._resolver.invalidate(canonical)
        return self._near.pop(canonical)

    async def health(self) -> Health:
        """Ping Redis within its time budget and report the upstream's last state.

        Returns:
            ``degraded`` when Redis is down (or its circuit breaker open) or the
            last upstream fetch failed; ``ok`` otherwise.
        """
        if self._closed:
            raise ClientClosedError()
        reasons: list[str] = []
        redis: RedisState = "disabled"
        if self._cache is not None:
            problem = await self._cache.ping()
            redis = "ok" if problem is None else "down"
            if problem is not None:
                reasons.append(problem)
        if self._pending:
            reasons.append(
                f"{len(self._pending)} invalidation(s) wait for Redis to take them"
            )
        upstream = self._upstream.state
        if upstream == "failing":
            reasons.append(
                f"the last Building Directory call failed: {self._upstream.last_error}"
            )
        healthy = redis != "down" and upstream != "failing"
        return Health("ok" if healthy else "degraded", redis, upstream, reasons)


def _copy(error: UpstreamError) -> UpstreamError:
    """Return a new exception like ``error``, for one of the callers sharing it."""
    if isinstance(error, UpstreamHTTPError):
        return UpstreamHTTPError(
            str(error), status_code=error.status_code, retry_after=error.retry_after
        )
    return type(error)(str(error))
