"""Dropping near-cache entries when another process invalidates a building.

Each process keeps its own near cache (:mod:`instrumentation._near_cache`), so
an invalidation applied by one process (webhook or API) must reach the others.
``invalidate()`` deletes the Redis entry, then publishes the building id on the
tenant's channel ``bdobs:v1:{<tenant>}:invalidations``. Every client with a near
cache runs one :class:`InvalidationListener`: a background task subscribed to
that channel, which drops each announced id from its near cache.

Transport: plain ``SUBSCRIBE``/``PUBLISH`` on one Redis server; sharded pub/sub
(``SSUBSCRIBE``/``SPUBLISH``, Redis 7+) in a Redis Cluster. A sharded message
travels only within the shard that owns the channel's slot, where a plain
``PUBLISH`` is broadcast to every node over the cluster bus; and since the
channel carries the tenant's hash tag, it lives on the node that holds the
tenant's keys: when that node is down, the invalidation's ``DEL`` fails too.
The listener subscribes on its own connection, to the node that owns the slot
(following a ``MOVED`` reply there), rather than through redis-py's
``ClusterPubSub``, whose repair tasks run outside any time budget.

How stale a near-cache copy can get:

- Subscribed: the pub/sub latency. On loopback, from ``invalidate()`` returning
  to another client's near cache dropping the id: about 0.5 ms, for one server
  and for a cluster alike.
- Redis or the subscription lost: at most ``near_cache_ttl``, as without the
  listener, since every entry expires by then. The listener logs one WARNING
  per outage, reconnects with jittered exponential backoff (0.1 s doubling up
  to ``breaker_cooldown``), and on every new subscription clears the whole near
  cache, since announcements may have been missed meanwhile.
- A connection that dies silently (a paused server, a dropped route) is found
  by a PING after ``_PING_AFTER`` (5) quiet seconds that gets no answer within
  the listener's budget: within about seven seconds.

Every step is time-boxed: a subscription attempt by ``max(redis_timeout,
0.5 s)``, so the listener never hangs, and :meth:`InvalidationListener.aclose`
stops it promptly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import MovedError, RedisError

from instrumentation._cache import RedisCache
from instrumentation._redis_client import REDIS_FAILURES, connect_one
from instrumentation.config import Settings

logger = logging.getLogger(__name__)

# The listener is not on any lookup's path, so it may wait longer than a
# lookup would before calling a subscription attempt failed.
_MIN_BUDGET: Final = 0.5
_FIRST_DELAY: Final = 0.1
# How long a read waits for a message before checking the connection's health.
_POLL: Final = 1.0
# Quiet seconds before a PING checks that the subscription still stands.
_PING_AFTER: Final = 5.0
_MESSAGES: Final = frozenset({"message", "smessage"})
_UNSUBSCRIBED: Final = frozenset({"unsubscribe", "sunsubscribe"})


class _SubscriptionLost(Exception):
    """The server ended the subscription or stopped answering."""


class InvalidationListener:
    """Keep a subscription to the tenant's invalidations, and act on them.

    Args:
        settings: Redis URL, ``redis_timeout``, ``breaker_cooldown`` (the
            longest wait between reconnection attempts), ``near_cache_ttl``.
        cache: The Redis level: its channel, and its cluster client, whose
            topology says which node owns the channel.
        forget: Called with each announced building id (any text: the
            callee validates it).
        resubscribed: Called on every new subscription, when announcements
            may have been missed.
    """

    def __init__(
        self,
        settings: Settings,
        cache: RedisCache,
        *,
        forget: Callable[[str], object],
        resubscribed: Callable[[], object],
    ) -> None:
        self._settings = settings
        self._cache = cache
        self._forget = forget
        self._resubscribed = resubscribed
        self._budget = max(settings.redis_timeout, _MIN_BUDGET)
        self._max_delay = max(settings.breaker_cooldown, _FIRST_DELAY)
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._redirect: tuple[str, int] | None = None
        self._outage_since: float | None = None

    async def start(self) -> None:
        """Start listening; wait for the first subscription attempt to end.

        A first attempt that fails is logged; the listener keeps trying in the
        background.
        """
        if self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="bdobs-invalidation-listener"
        )
        waiter = asyncio.ensure_future(self._first_attempt.wait())
        await asyncio.wait(
            {waiter, self._task},
            timeout=2 * self._budget,
            return_when=asyncio.FIRST_COMPLETED,
        )
        waiter.cancel()

    async def aclose(self) -> None:
        """Stop listening and close the subscription's connection."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            redis: Redis | None = None
            pubsub: PubSub | None = None
            try:
                redis = connect_one(self._settings, await self._owner())
                pubsub = redis.pubsub()
                await self._subscribe(pubsub)
                self._on_subscribed()
                failures = 0
                await self._listen(pubsub)
            except (*REDIS_FAILURES, _SubscriptionLost) as exc:
                failures += 1
                self._on_lost(exc)
            except Exception:
                # A bug must not end invalidations for the life of the process.
                failures += 1
                logger.exception("invalidation listener failed; starting it again")
            finally:
                self._first_attempt.set()
                await _close(pubsub, redis)
            await asyncio.sleep(self._delay(failures))

    async def _owner(self) -> tuple[str, int] | None:
        """Return the cluster node that owns the channel, None for one server."""
        cluster = self._cache.cluster
        if cluster is None:
            return None
        redirect, self._redirect = self._redirect, None
        if redirect is not None:
            return redirect
        async with asyncio.timeout(self._budget):
            # A no-op once the topology is known, unless an error elsewhere
            # asked for a refresh (after a failover, say).
            await cluster.initialize()
        node = cluster.get_node_from_key(self._cache.channel)
        if node is None:
            raise _SubscriptionLost(f"no cluster node serves {self._cache.channel}")
        return node.host, int(node.port)

    # TODO(#9): a Redis 6 cluster has no sharded pub/sub: SSUBSCRIBE fails, the
    # listener keeps retrying and near caches rely on their TTL; fall back to
    # PUBLISH/SUBSCRIBE there.
    async def _subscribe(self, pubsub: PubSub) -> None:
        channel = self._cache.channel
        try:
            async with asyncio.timeout(self._budget):
                if self._cache.cluster is None:
                    await pubsub.subscribe(channel)
                else:
                    await pubsub.ssubscribe(channel)
                confirmation = await pubsub.get_message(timeout=self._budget)
        except MovedError as exc:
            # The slot has moved (resharding, failover): go there next time.
            self._redirect = (exc.host, int(exc.port))
            raise
        if confirmation is None or confirmation["type"] not in (
            "subscribe",
            "ssubscribe",
        ):
            raise _SubscriptionLost(f"no confirmation of the subscription to {channel}")

    async def _listen(self, pubsub: PubSub) -> None:
        """Act on messages until the subscription fails; raise when it does."""
        heard_at = time.monotonic()
        pinged_at: float | None = None
        while True:
            message: dict[str, Any] | None = await pubsub.get_message(timeout=_POLL)
            now = time.monotonic()
            if message is None:
                if pinged_at is not None:
                    if now - pinged_at > self._budget:
                        raise _SubscriptionLost(
                            f"no answer to PING within {self._budget:g} s"
                        )
                elif now - heard_at >= _PING_AFTER:
                    async with asyncio.timeout(self._budget):
                        await pubsub.ping()
                    pinged_at = now
                continue
            heard_at, pinged_at = now, None
            kind = message["type"]
            if kind in _MESSAGES:
                self._deliver(message["data"])
            elif kind in _UNSUBSCRIBED:
                # Sent by a cluster node whose slot moved away, for one.
                raise _SubscriptionLost("the server ended the subscription")

    def _deliver(self, data: object) -> None:
        if isinstance(data, bytes):
            data = data.decode("ascii", "replace")
        if not isinstance(data, str):
            return
        dropped = self._forget(data)
        logger.debug(
            "invalidation of %s announced: near-cache entry %s",
            data,
            "dropped" if dropped else "absent",
        )

    def _on_subscribed(self) -> None:
        self._first_attempt.set()
        # Announcements may have been missed before (or between) subscriptions.
        self._resubscribed()
        outage_since, self._outage_since = self._outage_since, None
        if outage_since is not None:
            logger.info(
                "invalidation listener subscribed again to %s after %.1f s; "
                "near cache cleared",
                self._cache.channel,
                time.monotonic() - outage_since,
            )

    def _on_lost(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError) and not isinstance(exc, RedisError):
            reason = f"no answer within {self._budget:g} s"
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "invalidation listener has no subscription to %s (%s); retrying "
                "with backoff. Meanwhile other processes' invalidations are "
                "missed and near-cache entries live out their %g s TTL",
                self._cache.channel,
                reason,
                self._settings.near_cache_ttl,
            )
        else:
            logger.debug("invalidation listener: still no subscription: %s", reason)

    def _delay(self, failures: int) -> float:
        """Return the wait before the next attempt: 0.1 s doubling, jittered."""
        if failures == 0:
            return 0.0
        ceiling = min(self._max_delay, _FIRST_DELAY * 2.0 ** min(failures - 1, 16))
        # Full jitter in the upper half: processes that lost Redis together do
        # not all come back in the same instant.
        return ceiling * random.uniform(0.5, 1.0)


async def _close(pubsub: PubSub | None, redis: Redis | None) -> None:
    """Close a subscription and its client; never raises."""
    for closing in (pubsub, redis):
        if closing is None:
            continue
        try:
            async with asyncio.timeout(_MIN_BUDGET):
                await closing.aclose()
        except (*REDIS_FAILURES, RuntimeError) as exc:
            logger.debug("invalidation listener: closing failed: %s", exc)
