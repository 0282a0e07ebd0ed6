"""Fixtures shared by the whole suite: real servers on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.servers import RedisClusterServer, RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests that break Redis use their own."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for one test, free to be killed or paused."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisClusterServer]:
    """A three-master Redis Cluster for the session; node killers restart it."""
    cluster = RedisClusterServer(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(
    params=[
        pytest.param("redis_server", id="one-server"),
        pytest.param("redis_cluster", id="cluster", marks=pytest.mark.cluster),
    ]
)
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """The URL of the session's Redis server, then of its Redis Cluster."""
    server: RedisServer | RedisClusterServer = request.getfixturevalue(request.param)
    return server.url
