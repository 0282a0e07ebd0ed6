"""Lookups through the client: single-flight, malformed ids, no-cache mode."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fake_directory import FakeDirectory, Scripted
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryMetrics,
    ClientClosedError,
    InvalidBuildingIdError,
    Settings,
    UpstreamHTTPError,
)
from loadtests.servers import RedisServer

MALFORMED_IDS = [
    pytest.param("", id="empty"),
    pytest.param("not-a-uuid", id="word"),
    pytest.param("3f2b8c1e0d4a4c5e9b7a2e6f1d0c9a8b", id="no-hyphens"),
    pytest.param("{3f2b8c1e-0d4a-4c5e-9b7a-2e6f1d0c9a8b}", id="braces"),
    pytest.param("urn:uuid:3f2b8c1e-0d4a-4c5e-9b7a-2e6f1d0c9a8b", id="urn"),
    pytest.param("3f2b8c1e-0d4a-4c5e-9b7a-2e6f1d0c9a8b\n", id="newline"),
    pytest.param("3f2b8c1e-0d4a-4c5e-9b7a-2e6f1d0c9a8g", id="non-hex"),
    pytest.param("../../admin", id="path"),
    pytest.param("*", id="glob"),
    pytest.param(42, id="int"),
    pytest.param(None, id="none"),
    pytest.param(["3f2b8c1e-0d4a-4c5e-9b7a-2e6f1d0c9a8b"], id="list"),
]


async def test_thousand_concurrent_misses_make_one_upstream_call(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """1,000 concurrent cold lookups of one id share one Redis read and one call."""
    building = make_building()
    directory.add(building)
    directory.delay = 0.1

    results = await asyncio.gather(
        *(client.get_building(building["id"]) for _ in range(1000))
    )

    assert all(result == building for result in results)
    assert directory.calls[building["id"]] == 1
    assert value("building_cache_operations_total", operation="miss") == 1000
    assert value("building_cache_operations_total", operation="set") == 1
    assert value("building_cache_operations_total", operation="error") == 0
    assert (
        value(
            "building_directory_requests_total",
            operation="get_building",
            status="success",
        )
        == 1000
    )


async def test_shared_call_survives_its_first_caller_being_cancelled(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Cancelling the lookup that started the fetch does not cancel it for others."""
    building = make_building()
    directory.add(building)
    directory.delay = 0.2

    first = asyncio.create_task(client.get_building(building["id"]))
    await asyncio.sleep(0.05)
    others = [
        asyncio.create_task(client.get_building(building["id"])) for _ in range(3)
    ]
    await asyncio.sleep(0.01)
    first.cancel()
    results = await asyncio.gather(*others)

    assert first.cancelled()
    assert results == [building] * 3
    assert directory.calls[building["id"]] == 1


async def test_each_waiter_keeps_its_own_timeout(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """A caller's own timeout ends only its wait; the others get the building."""
    building = make_building()
    directory.add(building)
    directory.delay = 0.3

    async def impatient() -> dict[str, Any] | None:
        async with asyncio.timeout(0.1):
            return await client.get_building(building["id"])

    outcomes = await asyncio.gather(
        impatient(),
        client.get_building(building["id"]),
        client.get_building(building["id"]),
        return_exceptions=True,
    )

    assert isinstance(outcomes[0], TimeoutError)
    assert outcomes[1:] == [building, building]
    assert directory.calls[building["id"]] == 1


async def test_waiters_survive_a_leader_cancelled_while_reading_redis(
    own_redis: RedisServer,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    metrics: BuildingDirectoryMetrics,
) -> None:
    """If the first caller is cancelled mid Redis read, the others still get answers."""
    building = make_building()
    directory.add(building)
    settings = Settings(
        redis_url=own_redis.url, base_url=directory.url, redis_timeout=0.3
    )
    own_redis.pause()
    try:
        async with BuildingDirectoryClient(settings, metrics=metrics) as client:
            leader = asyncio.create_task(client.get_building(building["id"]))
            await asyncio.sleep(0.05)
            followers = [
                asyncio.create_task(client.get_building(building["id"]))
                for _ in range(2)
            ]
            await asyncio.sleep(0.01)
            leader.cancel()
            results = await asyncio.gather(*followers)
    finally:
        own_redis.resume()

    assert leader.cancelled()
    assert results == [building, building]
    assert directory.calls[building["id"]] == 1


async def test_failure_reaches_every_waiter_as_its_own_exception(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """A shared failure is raised to each caller and counted once per lookup."""
    building_id = str(uuid.uuid4())
    directory.always(building_id, Scripted(503, b"", delay=0.05))

    async with BuildingDirectoryClient(
        settings.replace(retries=0), metrics=metrics
    ) as client:
        outcomes = await asyncio.gather(
            *(client.get_building(building_id) for _ in range(5)),
            return_exceptions=True,
        )

    assert all(isinstance(outcome, UpstreamHTTPError) for outcome in outcomes)
    assert len({id(outcome) for outcome in outcomes}) == 5
    assert directory.calls[building_id] == 1
    assert value("building_directory_errors_total", error_type="http_error") == 5


@pytest.mark.parametrize("malformed", MALFORMED_IDS)
async def test_malformed_id_never_reaches_redis_or_the_network(
    own_redis: RedisServer,
    directory: FakeDirectory,
    metrics: BuildingDirectoryMetrics,
    value: Callable[..., float],
    malformed: Any,
) -> None:
    """A malformed id is refused before any call and counted as invalid_id."""
    settings = Settings(redis_url=own_redis.url, base_url=directory.url)
    raw = Redis.from_url(own_redis.url)
    await raw.config_resetstat()

    async with BuildingDirectoryClient(settings, metrics=metrics) as client:
        with pytest.raises(InvalidBuildingIdError):
            await client.get_building(malformed)
        verdict = await client.validate(malformed)
    commands = await raw.info("commandstats")
    keys = await raw.dbsize()
    await raw.aclose()

    assert verdict.result == "invalid_not_found"
    assert isinstance(verdict.error, InvalidBuildingIdError)
    assert directory.total_calls() == 0
    assert keys == 0
    assert not any(name in commands for name in ("cmdstat_get", "cmdstat_set"))
    assert (
        value(
            "building_directory_requests_total",
            operation="get_building",
            status="invalid_id",
        )
        == 2
    )


async def test_upper_case_id_shares_the_lower_case_entry(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Ids are case-insensitive: both spellings hit one cache entry."""
    building_id = directory.add(make_building())

    lower = await client.get_building(building_id)
    upper = await client.get_building(building_id.upper())

    assert lower == upper
    assert directory.calls[building_id] == 1


async def test_without_redis_every_lookup_goes_upstream(
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    metrics: BuildingDirectoryMetrics,
    value: Callable[..., float],
) -> None:
    """redis_url=None: no cache at all, and no cache operations counted."""
    building_id = directory.add(make_building())
    settings = Settings(base_url=directory.url)

    async with BuildingDirectoryClient(settings, metrics=metrics) as client:
        await client.get_building(building_id)
        await client.get_building(building_id)
        health = await client.health()

    assert directory.calls[building_id] == 2
    assert health.redis == "disabled"
    assert health.status == "ok"
    assert all(
        value("building_cache_operations_total", operation=op) == 0
        for op in ("hit", "miss", "set", "error")
    )


async def test_two_clients_with_their_own_registries_count_apart(
    settings: Settings,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Each client counts into its own registry; nothing collides."""
    building_id = directory.add(make_building())
    registries = [CollectorRegistry(), CollectorRegistry()]
    clients = [
        BuildingDirectoryClient(settings, metrics=BuildingDirectoryMetrics(r))
        for r in registries
    ]

    async with clients[0], clients[1]:
        await clients[0].get_building(building_id)
        await clients[0].get_building(building_id)
        await clients[1].get_building(building_id)

    counts = [
        r.get_sample_value(
            "building_directory_requests_total",
            {"operation": "get_building", "status": "success"},
        )
        for r in registries
    ]
    assert counts == [2, 1]


async def test_a_closed_client_says_so_for_every_call(
    settings: Settings,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """After aclose, even a cached id raises ClientClosedError; reopening too."""
    building_id = directory.add(make_building())
    client = BuildingDirectoryClient(
        settings.replace(near_cache_size=10),
        metrics=BuildingDirectoryMetrics(CollectorRegistry()),
    )
    async with client:
        await client.get_building(building_id)  # now in Redis and the near cache
    await client.aclose()  # closing twice is harmless

    calls = {
        "get_building": client.get_building(building_id),
        "validate": client.validate(building_id),
        "enrich_request": client.enrich_request({}, building_id),
        "warm": client.warm([building_id]),
        "invalidate": client.invalidate(building_id),
        "health": client.health(),
    }
    for call in calls.values():
        with pytest.raises(ClientClosedError, match="create a new one"):
            await call
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    assert directory.calls[building_id] == 1


async def test_clients_without_metrics_share_the_default_registry(
    settings: Settings,
) -> None:
    """Two clients built without metrics do not register the names twice."""
    first = BuildingDirectoryClient(settings)
    second = BuildingDirectoryClient(settings)
    await first.aclose()
    await second.aclose()

    assert first.metrics is second.metrics
