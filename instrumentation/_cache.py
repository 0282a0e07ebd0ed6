"""The Redis level of the cache: time-boxed calls, a circuit breaker, JSON envelopes.

The Redis is one server or a Redis Cluster, as ``REDIS_URL`` says (see
:mod:`instrumentation._redis_client`); everything below holds for both, and the
circuit breaker guards the cluster as a whole.

Every Redis call is bounded by ``Settings.redis_timeout``: an
:func:`asyncio.timeout` around the whole call (pool, connect, send, read) and,
for new connections, the socket connect timeout. redis-py's own
``socket_timeout`` is deliberately left unset: with it, redis-py wraps every
send in :func:`asyncio.wait_for` (a task per command on Python 3.11) and every
read in a second timer, about 5-8 µs per call on a ~125 µs GET, for a bound the
outer timeout already enforces. A call cut short by the timeout has its
connection closed by redis-py, so no half-read reply is ever reused.

redis-py's own retries are switched off (``Retry(NoBackoff(), 0)`` and no extra
``retry_on_error``): redis-py 8 otherwise retries about ten times with backoff,
which turns a dead Redis into seconds of stall per lookup.
After ``Settings.breaker_threshold`` consecutive failures a circuit breaker
skips Redis, probing it once per ``Settings.breaker_cooldown``.

:meth:`RedisCache.start` connects within a startup budget rather than inside
the first lookups' ``redis_timeout``: a few pooled connections to one server,
or a cluster's topology (nodes, slots and redis-py's command table, ~40 ms).

:meth:`RedisCache.publish` announces an invalidation on the tenant's channel
(:func:`invalidation_channel`), for the near caches of other processes (see
:mod:`instrumentation._invalidation`): ``PUBLISH`` on one server, ``SPUBLISH``
(sharded pub/sub, Redis 7+) in a cluster, where the channel shares the hash
slot, and so the node, of the tenant's keys.

Redis never makes a lookup fail: every error is counted as a cache ``error``
(once per failed or skipped call), logged, and the lookup carries on as a miss.

Stored value (JSON, never pickle), under :func:`~instrumentation.ids.cache_key`::

    {"schema": 1, "fetched_at": <unix time>, "building": {...} | null}

``building: null`` is a cached "not found" (TTL ``negative_ttl``). A found
building is kept for ``cache_ttl + stale_max_age``: younger than ``cache_ttl``
it is fresh; older, it is a miss that triggers a refetch, but it may still be
served if that refetch fails (stale-if-error). A value that is not such an
envelope for the requested id (unreadable JSON, another schema, another
building, a pickle) counts as a miss plus a cache ``error`` and is overwritten
by the refetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Final, TypeAlias

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import MaxConnectionsError, RedisError

from instrumentation import _json
from instrumentation._breaker import CircuitBreaker
from instrumentation._redis_client import REDIS_FAILURES, RedisClient, connect
from instrumentation.config import Settings
from instrumentation.ids import SCHEMA_VERSION, key_prefix
from instrumentation.metrics import BuildingDirectoryMetrics

logger = logging.getLogger(__name__)

#: A decoded entry: the building (None: not found) and when it was fetched.
Cached: TypeAlias = tuple[dict[str, Any] | None, float]

_ABSENT: Final = object()
#: Longest wait of :meth:`RedisCache.start`. Learning a cluster's topology
#: takes ~40 ms on loopback; startup gives it room, since no lookup waits.
STARTUP_BUDGET: Final = 2.0
#: Connections opened at startup; a burst needs more, but these cover the
#: first requests of a starting service while the rest connect.
_WARM_CONNECTIONS: Final = 8
_INVALIDATIONS: Final = "invalidations"


def invalidation_channel(tenant_id: str) -> str:
    """Return the pub/sub channel of one tenant's invalidations.

    ``bdobs:v1:{<tenant>}:invalidations``: the tenant's hash tag puts it in the
    slot of the tenant's keys.
    """
    prefix = key_prefix(tenant_id)  # bdobs:v1:{<tenant>}:building:
    return prefix[: prefix.rindex("}:") + 2] + _INVALIDATIONS


def encode(building: dict[str, Any] | None, fetched_at: float) -> bytes:
    """Return the stored JSON envelope of a building (None: not found)."""
    envelope = {
        "schema": SCHEMA_VERSION,
        "fetched_at": fetched_at,
        "building": building,
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def decode(raw: bytes | str, building_id: str) -> Cached | None:
    """Return ``(building, fetched_at)`` from a stored value, or None if foreign.

    Args:
        raw: The bytes read from Redis.
        building_id: The canonical id the value was stored under.

    Returns:
        The entry, or None when ``raw`` is not an envelope of this schema for
        this building.
    """
    try:
        envelope = _json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return None
    if type(envelope) is not dict or envelope.get("schema") != SCHEMA_VERSION:
        return None
    fetched_at = envelope.get("fetched_at")
    if type(fetched_at) is not float and type(fetched_at) is not int:
        return None
    building = envelope.get("building", _ABSENT)
    if building is None:
        return None, fetched_at
    if type(building) is not dict:
        return None  # also an envelope without "building" (the _ABSENT marker)
    stored_id = building.get("id")
    if stored_id != building_id and not (
        type(stored_id) is str and stored_id.lower() == building_id
    ):
        return None
    return building, fetched_at


class RedisCache:
    """The Redis level: GET, SET, DEL and PING, each time-boxed and guarded.

    Counts ``set`` and ``error`` of ``building_cache_operations_total``; hits
    and misses are the caller's to count, since a coalesced lookup may share
    another one's read.

    Args:
        settings: Redis URL, timeouts, TTLs, breaker and tenant.
        metrics: Where to count.
        redis: A client to use instead of one built from the settings.

    Attributes:
        channel: The tenant's invalidation channel.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: BuildingDirectoryMetrics,
        *,
        redis: RedisClient | None = None,
    ) -> None:
        self._redis = connect(settings) if redis is None else redis
        self._timeout = settings.redis_timeout
        self._prefix = key_prefix(settings.tenant_id)
        self.channel = invalidation_channel(settings.tenant_id)
        self._found_ttl_ms = max(
            1, round((settings.cache_ttl + settings.stale_max_age) * 1000)
        )
        self._not_found_ttl_ms = max(1, round(settings.negative_ttl * 1000))
        self.breaker = CircuitBreaker(
            "Redis cache",
            threshold=settings.breaker_threshold,
            cooldown=settings.breaker_cooldown,
        )
        self._error = metrics.cache["error"]
        self._set = metrics.cache["set"]
        # A Redis that fails now and then without opening the breaker warns
        # at most once per cooldown; the rest goes to DEBUG.
        self._warn_every = settings.breaker_cooldown
        self._warned_at = -float("inf")

    @property
    def cluster(self) -> RedisCluster | None:
        """The cluster client, or None when Redis is one server."""
        return self._redis if isinstance(self._redis, RedisCluster) else None

    def key(self, building_id: str) -> str:
        """Return the key of a canonical building id."""
        return self._prefix + building_id

    async def start(self) -> None:
        """Connect now, within a startup budget; a failure is logged, never raised.

        One server: open a few pooled connections, so that the first burst of
        lookups does not pay connection set-up (TCP plus the client's
        handshake) inside each call's ``redis_timeout``; on a busy machine
        that burst used to time out and open the breaker at once. A cluster:
        learn its topology, which the first call would otherwise learn
        within its ``redis_timeout``.
        """
        cluster = self.cluster
        try:
            async with asyncio.timeout(max(self._timeout, STARTUP_BUDGET)):
                if cluster is not None:
                    await cluster.initialize()
                else:
                    await asyncio.gather(
                        *(self._redis.ping() for _ in range(_WARM_CONNECTIONS))
                    )
        except REDIS_FAILURES as exc:
            what = "Redis Cluster topology unknown" if cluster else "Redis unreachable"
            logger.warning(
                "%s at startup (%s); lookups go to the upstream until it answers",
                what,
                _describe(exc),
            )

    async def get(self, building_id: str) -> Cached | None:
        """Read one entry; None on a miss, a foreign value or a Redis failure."""
        if not self.breaker.allow():
            self._error.inc()
            return None
        key = self._prefix + building_id
        # TODO(#8): a hit costs 1.14-1.52x a bare GET on a 2-core VM against a
        # 1.25x goal, and 0.87-1.10x the peer libraries; this timeout (~8 us)
        # and the JSON decode (~4 us) are most of it. A cheaper bound than
        # asyncio.timeout (one loop.call_later handle) is the next to try.
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._redis.get(key)
        except REDIS_FAILURES as exc:
            self._failed("GET", exc)
            return None
        breaker = self.breaker
        if breaker.failures:
            breaker.success()
        if raw is None:
            return None
        cached = decode(raw, building_id)
        if cached is None:
            self._error.inc()
            self._warn(
                "Redis key %s holds a value that is not a schema %d building "
                "envelope; treating it as a miss and overwriting it",
                key,
                SCHEMA_VERSION,
            )
        return cached

    async def set(self, building_id: str, building: dict[str, Any] | None) -> bool:
        """Store a building (None: not found) with its TTL; return whether stored."""
        if not self.breaker.allow():
            return False
        value = encode(building, time.time())
        ttl_ms = self._not_found_ttl_ms if building is None else self._found_ttl_ms
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.set(self._prefix + building_id, value, px=ttl_ms)
        except REDIS_FAILURES as exc:
            self._failed("SET", exc)
            return False
        self.breaker.success()
        self._set.inc()
        return True

    async def delete(self, building_id: str) -> bool | None:
        """Delete one entry; return whether it existed, None if Redis failed."""
        try:
            async with asyncio.timeout(self._timeout):
                deleted = await self._redis.delete(self._prefix + building_id)
        except REDIS_FAILURES as exc:
            self._failed("DEL", exc)
            return None
        self.breaker.success()
        return bool(deleted)

    async def publish(self, building_id: str) -> bool:
        """Announce an invalidation on the tenant's channel; return whether sent.

        ``PUBLISH`` on one server, ``SPUBLISH`` (routed to the channel's slot)
        in a cluster. A failure counts as a cache ``error``.
        """
        try:
            async with asyncio.timeout(self._timeout):
                if isinstance(self._redis, RedisCluster):
                    await self._redis.spublish(self.channel, building_id)
                else:
                    await self._redis.publish(self.channel, building_id)
        except REDIS_FAILURES as exc:
            self._failed("PUBLISH", exc)
            return False
        self.breaker.success()
        return True

    async def ping(self) -> str | None:
        """Return None if Redis (every cluster node) answers PING in time, else why."""
        if not self.breaker.allow():
            return (
                f"Redis skipped: circuit breaker open after "
                f"{self.breaker.failures} consecutive failures"
            )
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()
        except REDIS_FAILURES as exc:
            self.breaker.failure(_describe(exc))
            return f"Redis did not answer PING: {_describe(exc)}"
        self.breaker.success()
        return None

    async def aclose(self) -> None:
        """Close the connections."""
        await self._redis.aclose()

    def _failed(self, command: str, exc: BaseException) -> None:
        self._error.inc()
        reason = _describe(exc)
        if isinstance(exc, MaxConnectionsError):
            # The pool is exhausted on our side; Redis itself is fine.
            self._warn("Redis %s skipped: %s", command, reason)
            return
        was_open = self.breaker.is_open
        self.breaker.failure(f"{command}: {reason}")
        if not was_open and not self.breaker.is_open:
            self._warn(
                "Redis %s failed (%s); falling back to the upstream", command, reason
            )

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._warned_at >= self._warn_every:
            self._warned_at = now
            logger.warning(message, *args)
        else:
            logger.debug(message, *args)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not isinstance(exc, RedisError):
        return "no answer within the time budget"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
