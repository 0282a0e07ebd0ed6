"""Redis killed, paused or failing: lookups go on through the upstream."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from fake_directory import FakeDirectory
from redis.asyncio import Redis

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryMetrics,
    Settings,
    cache_key,
)
from instrumentation._cache import invalidation_channel
from loadtests.servers import RedisServer

#: Generous: a lookup must never stall for seconds, whatever Redis does.
BOUND = 1.0


@pytest.fixture
def fault_settings(own_redis: RedisServer, directory: FakeDirectory) -> Settings:
    """Settings on a Redis of this test's own, with a quick breaker."""
    return Settings(
        redis_url=own_redis.url,
        base_url=directory.url,
        redis_timeout=0.1,
        breaker_threshold=3,
        breaker_cooldown=0.3,
    )


async def timed_lookups(
    client: BuildingDirectoryClient, ids: list[str]
) -> tuple[list[dict[str, Any] | None], float]:
    """Look up each id in turn; return the results and the slowest lookup."""
    results = []
    slowest = 0.0
    for building_id in ids:
        started = time.perf_counter()
        results.append(await client.get_building(building_id))
        slowest = max(slowest, time.perf_counter() - started)
    return results, slowest


async def test_killed_redis_degrades_to_the_upstream_then_recovers(
    own_redis: RedisServer,
    fault_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """With Redis dead every lookup still answers, fast; once back, hits resume."""
    ids = [directory.add(make_building()) for _ in range(10)]

    async with BuildingDirectoryClient(fault_settings, metrics=metrics) as client:
        await client.get_building(ids[0])
        own_redis.kill()
        results, slowest = await timed_lookups(client, ids)
        own_redis.start()
        await asyncio.sleep(fault_settings.breaker_cooldown)
        await timed_lookups(client, ids[:2])
        hits_before = value("building_cache_operations_total", operation="hit")
        await client.get_building(ids[1])
        hits_after = value("building_cache_operations_total", operation="hit")

    assert all(result is not None for result in results)
    assert slowest < BOUND
    assert value("building_cache_operations_total", operation="error") >= len(ids)
    assert hits_after == hits_before + 1


async def test_paused_redis_costs_at_most_its_budget_per_lookup(
    own_redis: RedisServer,
    fault_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """A frozen Redis (SIGSTOP) never stalls a lookup; recovery follows SIGCONT."""
    ids = [directory.add(make_building()) for _ in range(10)]

    async with BuildingDirectoryClient(fault_settings, metrics=metrics) as client:
        await client.get_building(ids[0])
        own_redis.pause()
        try:
            results, slowest = await timed_lookups(client, ids)
        finally:
            own_redis.resume()
        await asyncio.sleep(fault_settings.breaker_cooldown)
        await timed_lookups(client, ids[:2])
        hits_before = value("building_cache_operations_total", operation="hit")
        await client.get_building(ids[1])
        hits_after = value("building_cache_operations_total", operation="hit")
        health = await client.health()

    assert all(result is not None for result in results)
    assert slowest < BOUND
    assert hits_after == hits_before + 1
    assert health.redis == "ok"


async def test_breaker_opens_once_skips_redis_and_recovers_after_a_probe(
    own_redis: RedisServer,
    fault_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One WARNING when it opens, paused-Redis lookups become fast, one INFO back."""
    ids = [directory.add(make_building()) for _ in range(12)]
    caplog.set_level(logging.INFO, logger="instrumentation")

    async with BuildingDirectoryClient(fault_settings, metrics=metrics) as client:
        own_redis.pause()
        try:
            await timed_lookups(client, ids[:2])
            _, slowest_while_open = await timed_lookups(client, ids[2:8])
            health_while_open = await client.health()
        finally:
            own_redis.resume()
        await asyncio.sleep(fault_settings.breaker_cooldown)
        await timed_lookups(client, ids[8:])

    messages = [r.getMessage() for r in caplog.records if r.name.endswith("_breaker")]
    openings = [m for m in messages if "skipping it" in m]
    recoveries = [m for m in messages if "answering again" in m]
    assert len(openings) == 1
    assert len(recoveries) == 1
    assert slowest_while_open < fault_settings.redis_timeout
    assert health_while_open.redis == "down"
    assert health_while_open.status == "degraded"
    assert any("circuit breaker open" in r for r in health_while_open.reasons)


async def test_open_breaker_counts_one_cache_error_per_skipped_lookup(
    own_redis: RedisServer,
    fault_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """While open, each lookup counts exactly one cache error and one miss."""
    ids = [directory.add(make_building()) for _ in range(8)]
    slow_cooldown = fault_settings.replace(breaker_cooldown=30.0)

    async with BuildingDirectoryClient(slow_cooldown, metrics=metrics) as client:
        own_redis.kill()
        await timed_lookups(client, ids[:3])
        errors_before = value("building_cache_operations_total", operation="error")
        misses_before = value("building_cache_operations_total", operation="miss")
        await timed_lookups(client, ids[3:])
        errors = value("building_cache_operations_total", operation="error")
        misses = value("building_cache_operations_total", operation="miss")

    assert errors - errors_before == 5
    assert misses - misses_before == 5


async def test_an_invalidation_redis_could_not_take_is_applied_when_it_answers(
    own_redis: RedisServer,
    fault_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Redis frozen during an invalidation: the delete and the announcement follow."""
    building_id = directory.add(make_building())
    key = cache_key(fault_settings.tenant_id, building_id)
    raw = Redis.from_url(own_redis.url)
    listener = raw.pubsub()
    await listener.subscribe(invalidation_channel(fault_settings.tenant_id))

    async with BuildingDirectoryClient(fault_settings, metrics=metrics) as client:
        await client.get_building(building_id)
        assert await raw.exists(key) == 1
        own_redis.pause()
        try:
            dropped = await client.invalidate(building_id)
            waiting = await client.health()
        finally:
            own_redis.resume()
        for _ in range(100):  # the retrier's first try comes after 0.5 s
            if not await raw.exists(key):
                break
            await asyncio.sleep(0.05)
        gone = await raw.exists(key) == 0
        announced = [
            message["data"]
            for message in [await listener.get_message(timeout=1) for _ in range(3)]
            if message is not None and message["type"] == "message"
        ]
        settled = await client.health()

    await listener.aclose()
    await raw.aclose()
    assert dropped is False  # nothing was dropped while Redis was frozen
    assert any("1 invalidation(s) wait for Redis" in r for r in waiting.reasons)
    assert gone
    assert announced == [building_id.encode()]
    assert not any("invalidation" in r for r in settled.reasons)
