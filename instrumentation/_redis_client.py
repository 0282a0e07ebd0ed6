"""Building redis-py clients for one Redis server or a Redis Cluster.

``REDIS_URL`` chooses the mode. ``redis://``, ``rediss://`` and ``unix://``
name one server (:class:`redis.asyncio.Redis`); ``redis+cluster://host:port``
(``rediss+cluster://`` for TLS) names any node of a Redis Cluster, from which
redis-py's cluster client (:class:`redis.asyncio.cluster.RedisCluster`) learns
every node and slot.

Both are built the same way: redis-py's retries off, a connect timeout of
``redis_timeout``, no ``socket_timeout`` (every call is bounded by the caller's
:func:`asyncio.timeout` instead, see :mod:`instrumentation._cache`) and no
background health checks. For the cluster client that also means:

- ``retry=Retry(NoBackoff(), 0)``: a command that meets a dead node, a
  ``CLUSTERDOWN`` or a ``MOVED`` loop fails at once instead of being retried
  with backoff (redis-py's default is three retries with jittered backoff
  plus 0.25 s per ``CLUSTERDOWN``). redis-py still follows a single ``MOVED``
  or ``ASK`` redirect within the call, and asks for a topology refresh after a
  connection error; that refresh runs inside a later call's time budget.
- ``require_full_coverage=False``: the client accepts a topology in which some
  slots have no node, so a cluster that serves the healthy shards
  (``cluster-require-full-coverage no`` on the servers) keeps serving the
  tenants whose slot is healthy.
- ``max_connections`` is per node.

Every key of a tenant shares one hash slot (the tenant is the hash tag) and the
client only sends single-key commands, so no command ever spans slots.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from instrumentation.config import Settings
from instrumentation.errors import ConfigurationError

#: A client of one server or of a cluster; both answer the commands used here.
RedisClient: TypeAlias = Redis | RedisCluster

#: What a Redis call can fail with once retries are off: redis-py's own errors
#: (the cluster client's topology errors do not derive from RedisError), socket
#: errors it lets through, and the caller's asyncio.timeout (TimeoutError).
REDIS_FAILURES: Final = (RedisError, RedisClusterException, OSError, TimeoutError)
# TODO(#9): Redis Sentinel (a redis+sentinel:// URL and redis-py's Sentinel
# client); until then, point REDIS_URL at an address that follows the master.
#: URL schemes naming a Redis Cluster, and the plain scheme redis-py expects.
_CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# Redis connections per HTTP connection allowed. Each concurrent lookup of a
# distinct id holds one Redis connection for ~0.1 ms; a full pool fails the call
# at once (waiting for a slot costs ~20 µs per call in redis-py's blocking
# pool), so the pool is kept well above the HTTP pool's size.
_POOL_FACTOR: Final = 4


def is_cluster_url(url: str) -> bool:
    """Return whether ``url`` names a Redis Cluster (``redis+cluster://``)."""
    return urlsplit(url).scheme in _CLUSTER_SCHEMES


def connect(settings: Settings) -> RedisClient:
    """Return a client of the Redis (or Redis Cluster) that ``redis_url`` names.

    Args:
        settings: ``redis_url``, ``redis_timeout`` and ``max_connections`` are
            read; the pool (per node, for a cluster) holds up to four times
            ``max_connections``.

    Returns:
        A client; it connects lazily, on its first command.

    Raises:
        ConfigurationError: ``redis_url`` is unset or redis-py cannot read it.
    """
    url = settings.redis_url
    if url is None:
        raise ConfigurationError("REDIS_URL is not set")
    options: dict[str, Any] = {
        # Reads and writes are bounded by the caller's asyncio.timeout; see
        # instrumentation._cache for why socket_timeout stays unset.
        "socket_timeout": None,
        "socket_connect_timeout": settings.redis_timeout,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": settings.max_connections * _POOL_FACTOR,
        "health_check_interval": 0,
    }
    try:
        if is_cluster_url(url):
            return RedisCluster.from_url(
                _plain_url(url), require_full_coverage=False, **options
            )
        return Redis.from_url(url, retry_on_error=[], **options)
    except (ValueError, RedisClusterException) as exc:
        # RedisClusterException: arguments a cluster refuses, such as a db.
        raise ConfigurationError(f"REDIS_URL {url!r}: {exc}") from exc


def connect_one(settings: Settings, node: tuple[str, int] | None = None) -> Redis:
    """Return a one-connection client of one server, for a subscription.

    Args:
        settings: ``redis_url`` (credentials, TLS) and ``redis_timeout``.
        node: The (host, port) of the cluster node to reach instead of the one
            the URL names; needed in cluster mode, where a sharded channel
            lives on the node that owns its slot.

    Raises:
        ConfigurationError: ``redis_url`` is unset or redis-py cannot read it.
    """
    url = settings.redis_url
    if url is None:
        raise ConfigurationError("REDIS_URL is not set")
    if is_cluster_url(url):
        url = _plain_url(url)
    if node is not None:
        url = _with_address(url, *node)
    try:
        return Redis.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=settings.redis_timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_error=[],
            max_connections=1,
            health_check_interval=0,
        )
    except ValueError as exc:
        raise ConfigurationError(f"REDIS_URL {url!r}: {exc}") from exc


def _plain_url(url: str) -> str:
    """Return a cluster URL with the scheme redis-py reads (``redis://``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=_CLUSTER_SCHEMES[parts.scheme]))


def _with_address(url: str, host: str, port: int) -> str:
    """Return ``url`` pointing at ``host:port``, keeping credentials and options."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    netloc = f"{credentials}@{address}" if credentials else address
    return urlunsplit(parts._replace(netloc=netloc))
