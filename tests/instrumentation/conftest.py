"""Fixtures of the client's tests: a scriptable Building Directory on loopback.

The fake directory (:mod:`fake_directory`) is served by uvicorn on a free
127.0.0.1 port, in a thread with its own event loop, for the whole session, and
reset for each test.

Each test also gets its own tenant, so tests sharing the session's Redis never
see each other's keys.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fake_directory import FakeDirectory
from fake_directory import make_building as _make_building
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from instrumentation import BuildingDirectoryClient, BuildingDirectoryMetrics, Settings
from loadtests.servers import (
    LOOPBACK,
    RedisClusterServer,
    RedisServer,
    free_port,
    wait_until,
)


@pytest.fixture(scope="session")
def directory_server() -> Iterator[FakeDirectory]:
    """The fake Building Directory, served by uvicorn for the whole session."""
    directory = FakeDirectory()
    port = free_port()
    config = uvicorn.Config(
        directory,
        host=LOOPBACK,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        # Scripted slow answers may still be sleeping at the end of the session.
        timeout_graceful_shutdown=0.5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-directory", daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="the fake Building Directory")
    directory.url = f"http://{LOOPBACK}:{port}"
    yield directory
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def directory(directory_server: FakeDirectory) -> FakeDirectory:
    """The fake Building Directory, reset for this test."""
    directory_server.reset()
    return directory_server


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of this test's own."""
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> BuildingDirectoryMetrics:
    """Metrics registered in this test's registry."""
    return BuildingDirectoryMetrics(registry)


@pytest.fixture
def tenant() -> str:
    """A tenant of this test's own, so shared Redis keys never collide."""
    return str(uuid.uuid4())


@pytest.fixture
def settings(
    redis_server: RedisServer, directory: FakeDirectory, tenant: str
) -> Settings:
    """Settings for the session Redis and the fake directory, with short timeouts."""
    return Settings(
        redis_url=redis_server.url,
        base_url=directory.url,
        tenant_id=tenant,
        redis_timeout=0.1,
        deadline=2.0,
        connect_timeout=0.5,
        read_timeout=1.0,
        pool_timeout=0.5,
    )


@pytest.fixture
async def client(
    settings: Settings, metrics: BuildingDirectoryMetrics
) -> AsyncIterator[BuildingDirectoryClient]:
    """A client on the session Redis and the fake directory."""
    async with BuildingDirectoryClient(settings, metrics=metrics) as built:
        yield built


@pytest.fixture
async def redis_raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain redis.asyncio client on the session Redis, to inspect keys."""
    raw = Redis.from_url(redis_server.url)
    yield raw
    await raw.aclose()


@pytest.fixture
def cluster_settings(settings: Settings, redis_cluster: RedisClusterServer) -> Settings:
    """The test's settings on the session's Redis Cluster, with a quick breaker."""
    return settings.replace(
        redis_url=redis_cluster.url, breaker_threshold=3, breaker_cooldown=0.3
    )


@pytest.fixture
async def cluster_client(
    cluster_settings: Settings, metrics: BuildingDirectoryMetrics
) -> AsyncIterator[BuildingDirectoryClient]:
    """A client on the session's Redis Cluster and the fake directory."""
    async with BuildingDirectoryClient(cluster_settings, metrics=metrics) as built:
        yield built


@pytest.fixture
async def cluster_raw(redis_cluster: RedisClusterServer) -> AsyncIterator[RedisCluster]:
    """A plain redis.asyncio cluster client on the session's cluster, to inspect."""
    host, port = redis_cluster.startup_nodes[0]
    raw = RedisCluster(host=host, port=port)
    await raw.initialize()
    yield raw
    await raw.aclose()


@pytest.fixture
def make_building() -> Callable[..., dict[str, Any]]:
    """Build a building in the nested shape: ``make_building(id, **fields)``."""
    return _make_building


@pytest.fixture
def value(registry: CollectorRegistry) -> Callable[..., float]:
    """Read a sample of this test's registry: ``value(name, **labels)``, 0 if absent."""

    def read(name: str, **labels: str) -> float:
        found = registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    return read
