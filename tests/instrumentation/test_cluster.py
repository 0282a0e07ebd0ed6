"""The cache on a real three-master Redis Cluster: behaviours, slots, a lost master."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fake_directory import FakeDirectory
from prometheus_client import CollectorRegistry
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryMetrics,
    ConfigurationError,
    Settings,
    cache_key,
)
from instrumentation._cache import invalidation_channel
from instrumentation._redis_client import connect
from loadtests.servers import RedisClusterServer, wait_until

pytestmark = pytest.mark.cluster

#: Generous: a lookup must never stall for seconds while a master is down.
BOUND = 1.5


def _cluster_client(settings: Settings) -> RedisCluster:
    redis = connect(settings)
    assert isinstance(redis, RedisCluster)
    return redis


@pytest.mark.parametrize(
    ("url", "connection_class"),
    [
        pytest.param("redis+cluster://127.0.0.1:7000/0", "Connection", id="plain"),
        pytest.param("rediss+cluster://127.0.0.1:7000", "SSLConnection", id="tls"),
    ],
)
async def test_cluster_url_builds_a_cluster_client_with_retries_off(
    url: str, connection_class: str
) -> None:
    """A cluster URL gives RedisCluster, retries off and explicit timeouts, no I/O."""
    settings = Settings(redis_url=url, redis_timeout=0.07, max_connections=5)

    redis = _cluster_client(settings)

    options = redis.get_connection_kwargs()
    assert isinstance(redis.retry, Retry)
    assert redis.retry.get_retries() == 0
    assert options["socket_timeout"] is None
    assert options["socket_connect_timeout"] == 0.07
    assert options["max_connections"] == 20
    assert options["connection_class"].__name__ == connection_class
    assert (options["connection_class"] is SSLConnection) == url.startswith("rediss")
    assert redis.nodes_manager.require_full_coverage is False
    await redis.aclose()


def test_cluster_url_naming_a_database_is_a_configuration_error() -> None:
    """A cluster has one database: a URL naming another fails at construction."""
    settings = Settings(
        redis_url="redis+cluster://127.0.0.1:7000/3", base_url="http://127.0.0.1:1"
    )

    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        BuildingDirectoryClient(settings)


async def test_every_key_and_the_channel_of_a_tenant_share_one_slot(
    cluster_raw: RedisCluster, tenant: str
) -> None:
    """The tenant hash tag puts its keys and invalidation channel in one slot."""
    names = [cache_key(tenant, str(uuid.uuid4())) for _ in range(20)]
    names.append(invalidation_channel(tenant))

    slots = {await cluster_raw.cluster_keyslot(name) for name in names}

    assert len(slots) == 1


async def test_second_lookup_is_a_hit_after_a_miss_on_the_cluster(
    cluster_client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """The first lookup fetches and writes the cluster; the second reads it back."""
    building_id = directory.add(make_building())

    first = await cluster_client.get_building(building_id)
    second = await cluster_client.get_building(building_id)

    assert first == second
    assert first is not None
    assert directory.calls[building_id] == 1
    assert value("building_cache_operations_total", operation="miss") == 1
    assert value("building_cache_operations_total", operation="set") == 1
    assert value("building_cache_level_hits_total", level="redis") == 1
    assert value("building_cache_operations_total", operation="error") == 0


async def test_entries_get_their_ttls_on_the_cluster(
    cluster_client: BuildingDirectoryClient,
    cluster_settings: Settings,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    cluster_raw: RedisCluster,
    tenant: str,
) -> None:
    """Found: cache_ttl + stale_max_age; not found: negative_ttl; as JSON envelopes."""
    building = make_building()
    directory.add(building)
    unknown_id = str(uuid.uuid4())

    await cluster_client.get_building(building["id"])
    await cluster_client.get_building(unknown_id)

    found_key = cache_key(tenant, building["id"])
    found_ttl = (cluster_settings.cache_ttl + cluster_settings.stale_max_age) * 1000
    assert 0.9 * found_ttl < await cluster_raw.pttl(found_key) <= found_ttl
    negative_ttl = cluster_settings.negative_ttl * 1000
    unknown_pttl = await cluster_raw.pttl(cache_key(tenant, unknown_id))
    assert 0.9 * negative_ttl < unknown_pttl <= negative_ttl
    assert json.loads(await cluster_raw.get(found_key))["building"] == building


async def test_not_found_is_cached_on_the_cluster(
    cluster_client: BuildingDirectoryClient,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """A 404 is cached in the cluster: the second lookup is a hit, not a call."""
    unknown_id = str(uuid.uuid4())

    first = await cluster_client.get_building(unknown_id)
    second = await cluster_client.get_building(unknown_id)

    assert first is second is None
    assert directory.calls[unknown_id] == 1
    assert value("building_cache_level_hits_total", level="redis") == 1


async def test_tenants_never_read_each_others_entries_on_the_cluster(
    cluster_settings: Settings,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    registry: CollectorRegistry,
) -> None:
    """Two tenants (in different slots) each keep and read their own copy."""
    building_id = directory.add(make_building(name="Old name"))
    other_tenant = cluster_settings.replace(tenant_id=str(uuid.uuid4()))
    client_a = BuildingDirectoryClient(
        cluster_settings, metrics=BuildingDirectoryMetrics(registry)
    )
    client_b = BuildingDirectoryClient(
        other_tenant, metrics=BuildingDirectoryMetrics(None)
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


async def test_invalidate_drops_the_entry_from_the_cluster(
    cluster_client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    cluster_raw: RedisCluster,
    tenant: str,
) -> None:
    """After invalidate the key is gone and the next lookup fetches again."""
    building_id = directory.add(make_building())
    await cluster_client.get_building(building_id)

    dropped = await cluster_client.invalidate(building_id)
    stored = await cluster_raw.exists(cache_key(tenant, building_id))
    await cluster_client.get_building(building_id)

    assert dropped is True
    assert stored == 0
    assert directory.calls[building_id] == 2


async def test_corrupt_entry_heals_itself_on_the_cluster(
    cluster_client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    cluster_raw: RedisCluster,
    tenant: str,
    value: Callable[..., float],
) -> None:
    """A foreign value is a miss plus a cache error, then overwritten by the refetch."""
    building = make_building()
    directory.add(building)
    key = cache_key(tenant, building["id"])
    await cluster_raw.set(key, b"\x80\x04\x95 not json", ex=60)

    healed = await cluster_client.get_building(building["id"])
    hit = await cluster_client.get_building(building["id"])

    assert healed == hit == building
    assert directory.calls[building["id"]] == 1
    assert json.loads(await cluster_raw.get(key))["building"] == building
    assert value("building_cache_operations_total", operation="error") == 1
    assert value("building_cache_level_hits_total", level="redis") == 1


async def test_lost_master_degrades_to_the_upstream_then_recovers(
    redis_cluster: RedisClusterServer,
    cluster_settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    cluster_raw: RedisCluster,
    tenant: str,
    value: Callable[..., float],
) -> None:
    """Killing the tenant's master: lookups still answer, fast; back up, hits resume."""
    ids = [directory.add(make_building()) for _ in range(12)]
    owner = cluster_raw.get_node_from_key(cache_key(tenant, ids[0]))
    assert owner is not None
    node = next(n for n in redis_cluster.nodes if n.port == int(owner.port))

    async with BuildingDirectoryClient(cluster_settings, metrics=metrics) as client:
        await client.get_building(ids[0])
        node.kill()
        try:
            results, slowest = [], 0.0
            # Spread over the 2 s node timeout, so lookups meet both a refused
            # connection and the CLUSTERDOWN the other masters answer after it.
            for building_id in ids:
                started = time.perf_counter()
                results.append(await client.get_building(building_id))
                slowest = max(slowest, time.perf_counter() - started)
                await asyncio.sleep(0.2)
            down = await client.health()
        finally:
            node.start()
        # The client is idle meanwhile, so a blocking wait holds nothing up.
        wait_until(redis_cluster.is_ok, timeout=15, what="cluster_state:ok")
        hits_before = value("building_cache_level_hits_total", level="redis")
        deadline = time.monotonic() + 5
        while (
            value("building_cache_level_hits_total", level="redis") == hits_before
            and time.monotonic() < deadline
        ):
            await client.get_building(ids[1])
            await asyncio.sleep(0.1)
        up = await client.health()

    assert all(result is not None for result in results)
    assert slowest < BOUND
    assert value("building_cache_operations_total", operation="error") >= 3
    assert down.redis == "down"
    assert value("building_cache_level_hits_total", level="redis") > hits_before
    assert up.redis == "ok"
