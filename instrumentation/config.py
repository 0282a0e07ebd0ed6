"""Settings of the cached client, read from the environment.

Every setting has a documented default; a malformed value raises
:class:`~instrumentation.errors.ConfigurationError` naming the variable, the
value and what was expected.

=============================== ==================================== ===========
variable                        meaning                              default
=============================== ==================================== ===========
``REDIS_URL``                   Redis for the cache (``redis://``,   none: the
                                ``rediss://``, ``unix://``; a Redis  stack starts
                                Cluster: ``redis+cluster://`` or     one
                                ``rediss+cluster://`` and any node)
``MANAGEMENT_COMPANY_ID``       tenant (UUID); part of every key     ``0…01``
``CACHE_REQUEST_TTL``           cache TTL of a found building, s     300
``CACHE_NEGATIVE_TTL``          cache TTL of a "not found", s        30
``CACHE_STALE_MAX_AGE``         oldest copy served when the          3600
                                upstream fails (stale-if-error), s
``CACHE_NEAR_SIZE``             entries in the in-process level      0 (off)
                                (0 turns it off)
``CACHE_NEAR_TTL``              TTL of the in-process level, s       5
``REDIS_TIMEOUT``               budget of one Redis call, s          0.05
``REDIS_BREAKER_THRESHOLD``     consecutive Redis failures that      5
                                open the circuit breaker
``REDIS_BREAKER_COOLDOWN``      wait before probing Redis again, s   5
``BUILDING_DIRECTORY_URL``      base URL of the Building Directory   none: the
                                                                     stack starts
                                                                     the simulator
``BUILDING_DIRECTORY_CONNECT_TIMEOUT``  connect timeout, s           1.0
``BUILDING_DIRECTORY_READ_TIMEOUT``     read timeout, s              2.0
``BUILDING_DIRECTORY_POOL_TIMEOUT``     wait for a pooled connection 1.0
``BUILDING_DIRECTORY_DEADLINE`` overall budget of one lookup, s      3.0
``BUILDING_DIRECTORY_MAX_CONNECTIONS``  connection pool size         50
``BUILDING_DIRECTORY_RETRIES``  retries after the first attempt      2
                                (connect errors, 5xx, 429 only)
=============================== ==================================== ===========
"""

from __future__ import annotations

import dataclasses
import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from instrumentation.errors import ConfigurationError

DEFAULT_TENANT: Final = "00000000-0000-0000-0000-000000000001"
_REDIS_SCHEMES: Final = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the cached client can be told; immutable once built.

    Use :meth:`from_env` to read the environment, or build it directly in code
    and tests. Durations are in seconds.
    """

    redis_url: str | None = None
    tenant_id: str = DEFAULT_TENANT
    cache_ttl: float = 300.0
    negative_ttl: float = 30.0
    stale_max_age: float = 3600.0
    near_cache_size: int = 0
    near_cache_ttl: float = 5.0
    redis_timeout: float = 0.05
    breaker_threshold: int = 5
    breaker_cooldown: float = 5.0
    base_url: str | None = None
    connect_timeout: float = 1.0
    read_timeout: float = 2.0
    pool_timeout: float = 1.0
    deadline: float = 3.0
    max_connections: int = 50
    retries: int = 2

    def __post_init__(self) -> None:
        _check_tenant(self.tenant_id)
        if self.redis_url is not None:
            _check_url("REDIS_URL", self.redis_url, _REDIS_SCHEMES)
        if self.base_url is not None:
            _check_url("BUILDING_DIRECTORY_URL", self.base_url, ("http", "https"))
        for name in (
            "cache_ttl",
            "negative_ttl",
            "stale_max_age",
            "near_cache_ttl",
            "redis_timeout",
            "breaker_cooldown",
            "connect_timeout",
            "read_timeout",
            "pool_timeout",
            "deadline",
        ):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ConfigurationError(f"{_named(name)} must be finite, got {value}")
            if name == "stale_max_age":  # 0 turns stale-if-error off
                if value < 0:
                    raise ConfigurationError(
                        f"{_named(name)} must be >= 0, got {value}"
                    )
            elif value <= 0:
                raise ConfigurationError(f"{_named(name)} must be > 0, got {value}")
        if self.near_cache_size < 0:
            raise ConfigurationError(
                f"{_named('near_cache_size')} must be >= 0, got {self.near_cache_size}"
            )
        if self.near_cache_ttl > self.cache_ttl:
            raise ConfigurationError(
                f"{_named('near_cache_ttl')} ({self.near_cache_ttl}) must not exceed "
                f"{_named('cache_ttl')} ({self.cache_ttl})"
            )
        if self.max_connections < 1:
            raise ConfigurationError(
                f"{_named('max_connections')} must be >= 1, got {self.max_connections}"
            )
        if self.breaker_threshold < 1:
            raise ConfigurationError(
                f"{_named('breaker_threshold')} must be >= 1, "
                f"got {self.breaker_threshold}"
            )
        if not 0 <= self.retries <= 10:
            raise ConfigurationError(
                f"{_named('retries')} must be 0 to 10, got {self.retries}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from environment variables.

        Args:
            environ: The variables to read; ``os.environ`` unless given.

        Returns:
            The settings, defaults filled in for every unset variable.

        Raises:
            ConfigurationError: A variable is set to a value that cannot be used.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field_name, (variable, kind) in _VARIABLES.items():
            raw = env.get(variable)
            if raw is None or raw.strip() == "":
                continue
            values[field_name] = _parse(variable, raw.strip(), kind)
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (and validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_VARIABLES: Final[dict[str, tuple[str, type]]] = {
    "redis_url": ("REDIS_URL", str),
    "tenant_id": ("MANAGEMENT_COMPANY_ID", str),
    "cache_ttl": ("CACHE_REQUEST_TTL", float),
    "negative_ttl": ("CACHE_NEGATIVE_TTL", float),
    "stale_max_age": ("CACHE_STALE_MAX_AGE", float),
    "near_cache_size": ("CACHE_NEAR_SIZE", int),
    "near_cache_ttl": ("CACHE_NEAR_TTL", float),
    "redis_timeout": ("REDIS_TIMEOUT", float),
    "breaker_threshold": ("REDIS_BREAKER_THRESHOLD", int),
    "breaker_cooldown": ("REDIS_BREAKER_COOLDOWN", float),
    "base_url": ("BUILDING_DIRECTORY_URL", str),
    "connect_timeout": ("BUILDING_DIRECTORY_CONNECT_TIMEOUT", float),
    "read_timeout": ("BUILDING_DIRECTORY_READ_TIMEOUT", float),
    "pool_timeout": ("BUILDING_DIRECTORY_POOL_TIMEOUT", float),
    "deadline": ("BUILDING_DIRECTORY_DEADLINE", float),
    "max_connections": ("BUILDING_DIRECTORY_MAX_CONNECTIONS", int),
    "retries": ("BUILDING_DIRECTORY_RETRIES", int),
}


#: Every environment variable :meth:`Settings.from_env` reads.
ENVIRONMENT_VARIABLES: Final = tuple(variable for variable, _ in _VARIABLES.values())


def _named(field_name: str) -> str:
    """Name a field with its environment variable, e.g. ``retries (...)``."""
    return f"{field_name} ({_VARIABLES[field_name][0]})"


def _parse(variable: str, raw: str, kind: type) -> object:
    if kind is str:
        return raw
    try:
        return kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number of seconds"
        raise ConfigurationError(
            f"{variable} must be {expected}, got {raw!r}"
        ) from None


def _check_tenant(tenant_id: str) -> None:
    try:
        uuid.UUID(tenant_id)
    except (ValueError, AttributeError, TypeError):
        raise ConfigurationError(
            f"MANAGEMENT_COMPANY_ID must be a UUID, got {tenant_id!r}"
        ) from None


def _check_url(variable: str, url: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ConfigurationError(
            f"{variable} must start with one of {', '.join(s + '://' for s in schemes)}"
            f"; got {url!r}"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigurationError(f"{variable} has no host: {url!r}")
