"""Invalidations reach the near caches of other clients through Redis pub/sub."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fake_directory import FakeDirectory
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryMetrics,
    DisabledMetrics,
    Settings,
)
from instrumentation._cache import STARTUP_BUDGET, invalidation_channel
from loadtests.servers import RedisServer

#: Generous: an announcement crosses a loopback Redis in milliseconds.
DELIVERY_BOUND = 2.0
#: Generous: nothing the listener does may hold a caller up for seconds.
BOUND = 1.5
LISTENER = "instrumentation._invalidation"


class Observed:
    """A client with its own registry, to tell near hits from other lookups."""

    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        self.client = BuildingDirectoryClient(
            settings, metrics=BuildingDirectoryMetrics(self.registry)
        )

    def near_hits(self) -> float:
        found = self.registry.get_sample_value(
            "building_cache_level_hits_total", {"level": "near"}
        )
        return 0.0 if found is None else found

    async def near_hit(self, building_id: str) -> bool:
        """Look the building up; return whether the near cache answered."""
        before = self.near_hits()
        await self.client.get_building(building_id)
        return self.near_hits() > before

    async def seconds_until_near_miss(self, building_id: str, bound: float) -> float:
        """Look up until the near cache no longer answers; return how long it took."""
        started = time.perf_counter()
        while await self.near_hit(building_id):
            if time.perf_counter() - started > bound:
                break
            # A near hit never yields to the loop; the listener needs it to.
            await asyncio.sleep(0.005)
        return time.perf_counter() - started


def near_settings(settings: Settings, redis_url: str) -> Settings:
    """Settings with a near cache that would hold an entry for a minute."""
    return settings.replace(
        redis_url=redis_url,
        near_cache_size=100,
        near_cache_ttl=60,
        breaker_cooldown=0.3,
    )


async def test_other_clients_drop_an_invalidated_building_from_their_near_cache(
    settings: Settings,
    any_redis_url: str,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """B's near copy is gone within moments of A invalidating; B then refetches."""
    building_id = directory.add(make_building())
    near = near_settings(settings, any_redis_url)
    b = Observed(near)

    async with BuildingDirectoryClient(near, metrics=DisabledMetrics()) as a, b.client:
        await a.get_building(building_id)
        warm = await b.near_hit(building_id) or await b.near_hit(building_id)
        await a.invalidate(building_id)
        delay = await b.seconds_until_near_miss(building_id, DELIVERY_BOUND)

    assert warm
    assert delay < DELIVERY_BOUND
    assert directory.calls[building_id] == 2


async def test_invalidations_stay_within_their_tenant(
    settings: Settings,
    redis_server: RedisServer,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """A tenant's announcement drops its own near copies, not another tenant's."""
    building_id = directory.add(make_building())
    near = near_settings(settings, redis_server.url)
    same_tenant = Observed(near)
    other_tenant = Observed(near.replace(tenant_id=str(uuid.uuid4())))
    publisher = BuildingDirectoryClient(near, metrics=DisabledMetrics())

    async with publisher, same_tenant.client, other_tenant.client:
        for observed in (same_tenant, other_tenant):
            await observed.near_hit(building_id)
        await publisher.invalidate(building_id)
        delay = await same_tenant.seconds_until_near_miss(building_id, DELIVERY_BOUND)
        other_kept_its_copy = await other_tenant.near_hit(building_id)

    assert delay < DELIVERY_BOUND
    assert other_kept_its_copy


async def test_malformed_announcement_is_ignored_and_the_listener_goes_on(
    settings: Settings,
    redis_server: RedisServer,
    redis_raw: Redis,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Garbage on the channel changes nothing; the next real announcement works."""
    building_id = directory.add(make_building())
    near = near_settings(settings, redis_server.url)
    observed = Observed(near)

    async with observed.client:
        await observed.near_hit(building_id)
        await redis_raw.publish(invalidation_channel(near.tenant_id), b"\xff junk")
        await redis_raw.publish(invalidation_channel(near.tenant_id), building_id)
        delay = await observed.seconds_until_near_miss(building_id, DELIVERY_BOUND)

    assert delay < DELIVERY_BOUND


async def test_only_clients_with_a_near_cache_subscribe_until_closed(
    settings: Settings,
    redis_server: RedisServer,
    redis_raw: Redis,
) -> None:
    """One subscriber per client with a near cache; none without; none once closed."""
    near = near_settings(settings, redis_server.url)
    channel = invalidation_channel(near.tenant_id)
    with_near = BuildingDirectoryClient(near, metrics=DisabledMetrics())
    without_near = BuildingDirectoryClient(
        near.replace(near_cache_size=0), metrics=DisabledMetrics()
    )

    async with with_near, without_near:
        open_count = dict(await redis_raw.pubsub_numsub(channel))[channel.encode()]
    closed_count = dict(await redis_raw.pubsub_numsub(channel))[channel.encode()]

    assert open_count == 1
    assert closed_count == 0


async def test_listener_resubscribes_after_redis_restarts_and_clears_the_near_cache(
    settings: Settings,
    own_redis: RedisServer,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis gone: one WARNING; back: near cache cleared, announcements flow again."""
    caplog.set_level(logging.INFO, logger=LISTENER)
    building_id = directory.add(make_building())
    near = near_settings(settings, own_redis.url)
    observed = Observed(near)
    publisher = BuildingDirectoryClient(
        near.replace(near_cache_size=0), metrics=DisabledMetrics()
    )

    async with publisher, observed.client:
        own_redis.kill()
        await observed.near_hit(building_id)
        served_near_while_down = await observed.near_hit(building_id)
        own_redis.start()
        cleared_after = await observed.seconds_until_near_miss(building_id, 5.0)
        await observed.near_hit(building_id)
        await publisher.invalidate(building_id)
        delivered_after = await observed.seconds_until_near_miss(
            building_id, DELIVERY_BOUND
        )

    listener_logs = [r for r in caplog.records if r.name == LISTENER]
    warnings = [r for r in listener_logs if r.levelno == logging.WARNING]
    assert served_near_while_down
    assert cleared_after < 5.0
    assert delivered_after < DELIVERY_BOUND
    assert len(warnings) == 1
    assert any("subscribed again" in r.getMessage() for r in listener_logs)


async def test_silent_subscription_is_found_by_ping_and_replaced(
    settings: Settings,
    own_redis: RedisServer,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frozen Redis (SIGSTOP) is noticed by an unanswered PING; SIGCONT clears."""
    # Shortened from seconds, so the test does not wait out the real interval.
    monkeypatch.setattr(f"{LISTENER}._PING_AFTER", 0.2)
    monkeypatch.setattr(f"{LISTENER}._POLL", 0.1)
    caplog.set_level(logging.INFO, logger=LISTENER)
    building_id = directory.add(make_building())
    observed = Observed(near_settings(settings, own_redis.url))

    async with observed.client:
        await observed.near_hit(building_id)
        own_redis.pause()
        try:
            await asyncio.sleep(1.2)
        finally:
            own_redis.resume()
        cleared_after = await observed.seconds_until_near_miss(building_id, 5.0)

    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == LISTENER and r.levelno == logging.WARNING
    ]
    assert cleared_after < 5.0
    assert len(warnings) == 1
    assert "PING" in warnings[0]


async def test_a_paused_redis_never_stalls_opening_or_closing_a_client(
    settings: Settings,
    own_redis: RedisServer,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """With Redis frozen, only entering waits (its startup budget), then no stall."""
    building_id = directory.add(make_building())
    client = BuildingDirectoryClient(
        near_settings(settings, own_redis.url), metrics=DisabledMetrics()
    )
    own_redis.pause()
    try:
        started = time.perf_counter()
        await client.__aenter__()
        entered = time.perf_counter() - started
        building = await client.get_building(building_id)
        started = time.perf_counter()
        await client.aclose()
        closed = time.perf_counter() - started
    finally:
        own_redis.resume()

    assert entered < STARTUP_BUDGET + BOUND
    assert building is not None
    assert closed < BOUND
