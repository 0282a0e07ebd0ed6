"""Warming, invalidation, the near cache and health reporting."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fake_directory import FakeDirectory, Scripted
from redis.asyncio import Redis

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryMetrics,
    InvalidBuildingIdError,
    Settings,
    cache_key,
)
from instrumentation._near_cache import NearCache


async def test_warm_fetches_only_what_is_not_cached(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Warming counts fetched, already cached, unknown and failed ids once each."""
    new_ids = [directory.add(make_building()) for _ in range(3)]
    cached_id = directory.add(make_building())
    await client.get_building(cached_id)
    failing_id = str(uuid.uuid4())
    directory.always(failing_id, Scripted(500, b""))
    unknown_id = str(uuid.uuid4())
    ids = [*new_ids, new_ids[0], cached_id, unknown_id, failing_id, "not-an-id"]

    report = await client.warm(ids, concurrency=2)

    assert (report.fetched, report.cached, report.not_found, report.failed) == (
        3,
        1,
        1,
        2,
    )
    assert report.total == 7
    assert all(directory.calls[i] == 1 for i in new_ids)
    assert directory.calls[cached_id] == 1


async def test_invalidate_drops_the_entry_so_the_next_lookup_refetches(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    redis_raw: Redis,
    tenant: str,
) -> None:
    """After invalidate the key is gone and the next lookup asks upstream."""
    building_id = directory.add(make_building(name="Old"))
    await client.get_building(building_id)
    directory.add(make_building(building_id, name="New"))

    dropped = await client.invalidate(building_id)
    exists = await redis_raw.exists(cache_key(tenant, building_id))
    refreshed = await client.get_building(building_id)
    dropped_again = await client.invalidate(str(uuid.uuid4()))

    assert dropped is True
    assert exists == 0
    assert refreshed is not None
    assert refreshed["name"] == "New"
    assert dropped_again is False


async def test_invalidate_refuses_a_malformed_id(
    client: BuildingDirectoryClient,
) -> None:
    """Invalidation validates the id like a lookup."""
    with pytest.raises(InvalidBuildingIdError):
        await client.invalidate("nope")


async def test_invalidate_during_a_fetch_keeps_the_old_answer_out_of_the_cache(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    redis_raw: Redis,
    tenant: str,
) -> None:
    """A fetch in flight when the id is invalidated answers but does not write."""
    building_id = directory.add(make_building())
    directory.delay = 0.2

    lookup = asyncio.create_task(client.get_building(building_id))
    await asyncio.sleep(0.05)
    await client.invalidate(building_id)
    answered = await lookup

    assert answered is not None
    assert await redis_raw.exists(cache_key(tenant, building_id)) == 0


@pytest.fixture
def near_settings(settings: Settings) -> Settings:
    """Settings with a near cache of two entries and a short TTL."""
    return settings.replace(near_cache_size=2, near_cache_ttl=0.3)


async def test_near_cache_serves_repeat_lookups_without_redis(
    near_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    redis_raw: Redis,
    tenant: str,
    value: Callable[..., float],
) -> None:
    """A near hit answers even once the Redis key is gone, counted as a hit."""
    building = make_building()
    directory.add(building)

    async with BuildingDirectoryClient(near_settings, metrics=metrics) as client:
        await client.get_building(building["id"])
        await redis_raw.delete(cache_key(tenant, building["id"]))
        served = await client.get_building(building["id"])

    assert served == building
    assert value("building_cache_level_hits_total", level="near") == 1
    assert value("building_cache_operations_total", operation="hit") == 1
    assert directory.calls[building["id"]] == 1


async def test_near_cache_is_bounded_and_evicts_the_least_recently_used(
    near_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """With room for two, a third id pushes out the oldest; it then hits Redis."""
    ids = [directory.add(make_building()) for _ in range(3)]

    async with BuildingDirectoryClient(near_settings, metrics=metrics) as client:
        for building_id in ids:
            await client.get_building(building_id)
        await client.get_building(ids[0])
        await client.get_building(ids[2])

    assert value("building_cache_level_hits_total", level="redis") == 1
    assert value("building_cache_level_hits_total", level="near") == 1


async def test_near_cache_entries_expire_after_their_ttl(
    near_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """After near_cache_ttl the lookup goes to Redis again."""
    building_id = directory.add(make_building())

    async with BuildingDirectoryClient(near_settings, metrics=metrics) as client:
        await client.get_building(building_id)
        await asyncio.sleep(0.35)
        await client.get_building(building_id)

    assert value("building_cache_level_hits_total", level="near") == 0
    assert value("building_cache_level_hits_total", level="redis") == 1


async def test_invalidate_drops_both_levels_and_forget_local_only_the_near_one(
    near_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """forget_local leaves Redis serving; invalidate sends the next lookup upstream."""
    building_id = directory.add(make_building())

    async with BuildingDirectoryClient(near_settings, metrics=metrics) as client:
        await client.get_building(building_id)
        forgot = client.forget_local(building_id)
        await client.get_building(building_id)
        await client.invalidate(building_id)
        await client.get_building(building_id)
        forgot_malformed = client.forget_local("nope")

    assert forgot is True
    assert forgot_malformed is False
    assert value("building_cache_level_hits_total", level="redis") == 1
    assert directory.calls[building_id] == 2


async def test_near_cache_holds_not_found_too(
    near_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """An unknown id is answered from the near cache on repeat."""
    unknown_id = str(uuid.uuid4())

    async with BuildingDirectoryClient(near_settings, metrics=metrics) as client:
        first = await client.get_building(unknown_id)
        second = await client.get_building(unknown_id)

    assert first is second is None
    assert value("building_cache_level_hits_total", level="near") == 1
    assert directory.calls[unknown_id] == 1


def test_near_cache_never_outlives_the_freshness_it_was_given() -> None:
    """An entry lives the shorter of the near TTL and its remaining freshness."""
    near = NearCache(size=4, ttl=60)

    near.put("a", {"id": "a"}, fresh_for=0.0)
    near.put("b", {"id": "b"}, fresh_for=30.0)

    assert near.get("a") is None
    entry = near.get("b")
    assert entry is not None
    assert entry[1] == {"id": "b"}
    assert len(near) == 1


async def test_health_is_ok_when_redis_answers_and_the_upstream_did(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Before any fetch the upstream is unknown; after one that worked, ok."""
    before = await client.health()
    await client.get_building(directory.add(make_building()))
    after = await client.health()

    assert (before.status, before.redis, before.upstream) == ("ok", "ok", "unknown")
    assert (after.status, after.redis, after.upstream) == ("ok", "ok", "ok")
    assert after.reasons == []


async def test_health_is_degraded_after_an_upstream_failure(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
) -> None:
    """A failed fetch degrades health and says why."""
    building_id = str(uuid.uuid4())
    directory.always(building_id, Scripted(500, b""))
    await client.validate(building_id)

    health = await client.health()

    assert (health.status, health.upstream) == ("degraded", "failing")
    assert any("HTTP 500" in reason for reason in health.reasons)
