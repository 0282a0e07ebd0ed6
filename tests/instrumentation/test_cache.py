"""The Redis level as seen through the client: hits, TTLs, tenants, envelopes."""

from __future__ import annotations

import asyncio
import json
import time
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
    Settings,
    UpstreamHTTPError,
    cache_key,
)

HTTP_500 = Scripted(500, b'{"detail": "boom"}')


async def test_second_lookup_is_a_redis_hit_after_a_miss(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """The first lookup fetches and caches; the second comes from Redis."""
    building_id = directory.add(make_building())

    first = await client.get_building(building_id)
    second = await client.get_building(building_id)

    assert first == second
    assert first is not None
    assert first["id"] == building_id
    assert directory.calls[building_id] == 1
    assert value("building_cache_operations_total", operation="miss") == 1
    assert value("building_cache_operations_total", operation="hit") == 1
    assert value("building_cache_operations_total", operation="set") == 1
    assert value("building_cache_level_hits_total", level="redis") == 1
    assert (
        value(
            "building_directory_requests_total",
            operation="get_building",
            status="success",
        )
        == 2
    )


async def test_every_key_gets_a_ttl_matching_its_kind(
    client: BuildingDirectoryClient,
    settings: Settings,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    redis_raw: Redis,
    tenant: str,
) -> None:
    """Found buildings live cache_ttl + stale_max_age, "not found" negative_ttl."""
    found_id = directory.add(make_building())
    unknown_id = str(uuid.uuid4())

    await client.get_building(found_id)
    await client.get_building(unknown_id)

    keys = [key async for key in redis_raw.scan_iter(match=f"bdobs:v1:{{{tenant}}}:*")]
    assert len(keys) == 2
    ttls = {key.decode(): await redis_raw.pttl(key) for key in keys}
    found_ttl = (settings.cache_ttl + settings.stale_max_age) * 1000
    assert 0.9 * found_ttl < ttls[cache_key(tenant, found_id)] <= found_ttl
    negative_ttl = settings.negative_ttl * 1000
    assert 0.9 * negative_ttl < ttls[cache_key(tenant, unknown_id)] <= negative_ttl


async def test_stored_value_is_a_json_envelope_under_the_tenant_hash_tag(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    redis_raw: Redis,
    tenant: str,
) -> None:
    """The key is bdobs:v1:{tenant}:building:<id>; the value JSON with fetched_at."""
    building = make_building()
    directory.add(building)
    before = time.time()

    await client.get_building(building["id"])

    raw = await redis_raw.get(f"bdobs:v1:{{{tenant}}}:building:{building['id']}")
    envelope = json.loads(raw)
    assert envelope["schema"] == 1
    assert envelope["building"] == building
    assert before <= envelope["fetched_at"] <= time.time()


async def test_tenants_never_read_each_others_entries(
    settings: Settings,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Tenant B misses where tenant A hits, and each keeps its own copy."""
    building_id = directory.add(make_building(name="Old name"))
    tenant_b = settings.replace(tenant_id=str(uuid.uuid4()))
    client_a = BuildingDirectoryClient(
        settings, metrics=BuildingDirectoryMetrics(CollectorRegistry())
    )
    client_b = BuildingDirectoryClient(
        tenant_b, metrics=BuildingDirectoryMetrics(CollectorRegistry())
    )

    async with client_a, client_b:
        seen_by_a = await client_a.get_building(building_id)
        directory.add(make_building(building_id, name="New name"))
        seen_by_b = await client_b.get_building(building_id)
        seen_by_a_again = await client_a.get_building(building_id)

    assert seen_by_a is not None
    assert seen_by_a["name"] == "Old name"
    assert seen_by_b is not None
    assert seen_by_b["name"] == "New name"
    assert seen_by_a_again == seen_by_a
    assert directory.calls[building_id] == 2


async def test_not_found_is_cached_for_the_negative_ttl(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """A 404 is cached: the next lookup is a hit, until negative_ttl passes."""
    unknown_id = str(uuid.uuid4())
    short = settings.replace(negative_ttl=0.3)

    async with BuildingDirectoryClient(short, metrics=metrics) as client:
        first = await client.get_building(unknown_id)
        second = await client.get_building(unknown_id)
        calls_while_cached = directory.calls[unknown_id]
        await asyncio.sleep(0.35)
        third = await client.get_building(unknown_id)

    assert first is second is third is None
    assert calls_while_cached == 1
    assert directory.calls[unknown_id] == 2
    assert value("building_cache_operations_total", operation="hit") == 1
    assert (
        value(
            "building_directory_requests_total",
            operation="get_building",
            status="not_found",
        )
        == 3
    )


async def test_errors_are_never_cached(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    redis_raw: Redis,
    tenant: str,
) -> None:
    """After a failed lookup nothing is stored; the next lookup asks again."""
    building_id = directory.add(make_building())
    directory.script(building_id, HTTP_500)
    no_retry = settings.replace(retries=0)

    async with BuildingDirectoryClient(no_retry, metrics=metrics) as client:
        with pytest.raises(UpstreamHTTPError):
            await client.get_building(building_id)
        stored_after_error = await redis_raw.exists(cache_key(tenant, building_id))
        building = await client.get_building(building_id)

    assert stored_after_error == 0
    assert building is not None
    assert directory.calls[building_id] == 2


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(b"\x80\x04\x95 not json", id="pickle-like-bytes"),
        pytest.param(b"{truncated", id="invalid-json"),
        pytest.param(b'{"schema": 99, "fetched_at": 1, "building": null}', id="schema"),
        pytest.param(b'["a", "list"]', id="json-list"),
        pytest.param(
            b'{"schema": 1, "fetched_at": "today", "building": null}', id="time"
        ),
        pytest.param(b'{"schema": 1, "fetched_at": 1e18}', id="no-building-key"),
        pytest.param(
            b'{"schema": 1, "fetched_at": 1e18, "building": {"id": "other"}}',
            id="other-building",
        ),
        pytest.param(
            b'{"schema": 1, "fetched_at": NaN, "building": null}', id="nan-time"
        ),
        pytest.param(
            b'{"schema": 1, "fetched_at": 1e18, "building": '
            + b"[" * 50_000
            + b"]" * 50_000
            + b"}",
            id="nested-too-deep",
        ),
    ],
)
async def test_unreadable_entry_counts_as_miss_and_error_and_is_overwritten(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    redis_raw: Redis,
    tenant: str,
    value: Callable[..., float],
    stored: bytes,
) -> None:
    """A foreign value is a miss plus a cache error, then replaced by the refetch."""
    building = make_building()
    directory.add(building)
    key = cache_key(tenant, building["id"])
    await redis_raw.set(key, stored, ex=60)

    healed = await client.get_building(building["id"])
    hit = await client.get_building(building["id"])

    assert healed == hit == building
    assert directory.calls[building["id"]] == 1
    assert json.loads(await redis_raw.get(key))["building"] == building
    assert value("building_cache_operations_total", operation="error") == 1
    assert value("building_cache_operations_total", operation="miss") == 1
    assert value("building_cache_operations_total", operation="hit") == 1


async def test_copy_older_than_cache_ttl_is_refetched(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Past cache_ttl an entry is a miss, even though Redis still holds it."""
    building_id = directory.add(make_building(name="Before"))
    short = settings.replace(cache_ttl=0.2, near_cache_ttl=0.1)

    async with BuildingDirectoryClient(short, metrics=metrics) as client:
        await client.get_building(building_id)
        directory.add(make_building(building_id, name="After"))
        await asyncio.sleep(0.25)
        refreshed = await client.get_building(building_id)

    assert refreshed is not None
    assert refreshed["name"] == "After"
    assert directory.calls[building_id] == 2


async def test_stale_copy_is_served_and_counted_when_the_upstream_fails(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An expired copy stands in for a failed refetch: status stale, a WARNING."""
    building = make_building()
    directory.add(building)
    short = settings.replace(
        cache_ttl=0.2, near_cache_ttl=0.1, stale_max_age=60, retries=0
    )

    async with BuildingDirectoryClient(short, metrics=metrics) as client:
        await client.get_building(building["id"])
        await asyncio.sleep(0.25)
        directory.script(building["id"], HTTP_500)
        served = await client.get_building(building["id"])

    assert served == building
    assert (
        value(
            "building_directory_requests_total",
            operation="get_building",
            status="stale",
        )
        == 1
    )
    assert value("building_directory_errors_total", error_type="http_error") == 0
    assert any(
        record.levelname == "WARNING" and "serving a copy fetched" in record.message
        for record in caplog.records
    )


async def test_stale_copy_is_served_when_the_deadline_passes(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """A refetch that outlasts the deadline falls back to the stale copy."""
    building = make_building()
    directory.add(building)
    short = settings.replace(
        cache_ttl=0.2, near_cache_ttl=0.1, stale_max_age=60, deadline=0.3
    )

    async with BuildingDirectoryClient(short, metrics=metrics) as client:
        await client.get_building(building["id"])
        await asyncio.sleep(0.25)
        directory.script(building["id"], Scripted(200, b"{}", delay=1.0))
        started = time.perf_counter()
        served = await client.get_building(building["id"])
        elapsed = time.perf_counter() - started

    assert served == building
    assert elapsed < 0.9
    assert (
        value(
            "building_directory_requests_total",
            operation="get_building",
            status="stale",
        )
        == 1
    )


async def test_stale_copy_is_not_served_past_the_stale_window(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """Older than cache_ttl + stale_max_age, the copy is gone and the error shows."""
    building_id = directory.add(make_building())
    short = settings.replace(
        cache_ttl=0.15, near_cache_ttl=0.1, stale_max_age=0.1, retries=0
    )

    async with BuildingDirectoryClient(short, metrics=metrics) as client:
        await client.get_building(building_id)
        await asyncio.sleep(0.3)
        directory.script(building_id, HTTP_500)
        with pytest.raises(UpstreamHTTPError):
            await client.get_building(building_id)
