"""The Redis level of the cache: time-boxed calls, a circuit breaker, JSON envelopes.

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

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError, RedisError

from instrumentation._breaker import CircuitBreaker
from instrumentation.config import Settings
from instrumentation.errors import ConfigurationError
from instrumentation.ids import SCHEMA_VERSION, key_prefix
from instrumentation.metrics import BuildingDirectoryMetrics

logger = logging.getLogger(__name__)

#: A decoded entry: the building (None: not found) and when it was fetched.
Cached: TypeAlias = tuple[dict[str, Any] | None, float]

# What a Redis call can fail with once retries are off: redis-py's own errors,
# socket errors it lets through, and our asyncio.timeout (TimeoutError).
_REDIS_FAILURES: Final = (RedisError, OSError, TimeoutError)
_ABSENT: Final = object()
# Redis connections per HTTP connection allowed. Each concurrent lookup of a
# distinct id holds one Redis connection for ~0.1 ms; a full pool fails the call
# at once (waiting for a slot costs ~20 µs per call in redis-py's blocking
# pool), so the pool is kept well above the HTTP pool's size.
_POOL_FACTOR: Final = 4


def connect(settings: Settings) -> Redis:
    """Return a redis.asyncio client with every timeout set and retries off.

    Args:
        settings: ``redis_url``, ``redis_timeout`` and ``max_connections`` are
            read; the Redis pool holds up to four times ``max_connections``.

    Returns:
        A client; it connects lazily, on its first command.

    Raises:
        ConfigurationError: The URL names Redis Cluster, which is not supported
            yet, or redis-py cannot read it.
    """
    url = settings.redis_url
    if url is None:
        raise ConfigurationError("REDIS_URL is not set")
    if url.startswith("redis+cluster://"):
        # TODO(#2): Redis Cluster mode (keys already carry the tenant hash tag).
        raise ConfigurationError(
            f"REDIS_URL {url!r}: Redis Cluster is not supported by the cached "
            "client yet; use a redis:// URL"
        )
    try:
        return Redis.from_url(
            url,
            # Reads and writes are bounded by the caller's asyncio.timeout;
            # see the module docstring for why socket_timeout stays unset.
            socket_timeout=None,
            socket_connect_timeout=settings.redis_timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_error=[],
            max_connections=settings.max_connections * _POOL_FACTOR,
            health_check_interval=0,
        )
    except ValueError as exc:
        raise ConfigurationError(f"REDIS_URL {url!r}: {exc}") from exc


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
        envelope = json.loads(raw)
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
    """

    def __init__(
        self,
        settings: Settings,
        metrics: BuildingDirectoryMetrics,
        *,
        redis: Redis | None = None,
    ) -> None:
        self._redis = connect(settings) if redis is None else redis
        self._timeout = settings.redis_timeout
        self._prefix = key_prefix(settings.tenant_id)
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

    def key(self, building_id: str) -> str:
        """Return the key of a canonical building id."""
        return self._prefix + building_id

    async def get(self, building_id: str) -> Cached | None:
        """Read one entry; None on a miss, a foreign value or a Redis failure."""
        if not self.breaker.allow():
            self._error.inc()
            return None
        key = self._prefix + building_id
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._redis.get(key)
        except _REDIS_FAILURES as exc:
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
        except _REDIS_FAILURES as exc:
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
        except _REDIS_FAILURES as exc:
            self._failed("DEL", exc)
            return None
        self.breaker.success()
        return bool(deleted)

    async def ping(self) -> str | None:
        """Return None if Redis answers PING in time, else why not."""
        if not self.breaker.allow():
            return (
                f"Redis skipped: circuit breaker open after "
                f"{self.breaker.failures} consecutive failures"
            )
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()
        except _REDIS_FAILURES as exc:
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
