"""Building ids and the Redis keys derived from them.

A building id is a UUID written in its canonical 8-4-4-4-12 hexadecimal form
(any version, either case). Anything else is refused before any Redis or
network call, so a malformed id can neither reach the Building Directory nor
create a cache key. Ids are lower-cased, so ``"3F2B…"`` and ``"3f2b…"`` share
one cache entry.

Cache keys are namespaced by a schema version and by tenant::

    bdobs:v1:{<tenant uuid>}:building:<building uuid>

The tenant sits inside a Redis Cluster hash tag (``{...}``), so every key of one
tenant maps to one hash slot and stays routable when the cache moves to Redis
Cluster. The client never sends a command naming several keys.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

from instrumentation.errors import InvalidBuildingIdError

#: Bumped whenever the stored envelope changes shape; old entries then miss.
SCHEMA_VERSION: Final = 1

_KEY_PREFIX: Final = "bdobs"
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def canonical_building_id(value: object) -> str:
    """Return ``value`` as a canonical (lower-case) building id.

    Args:
        value: What the caller passed as a building id.

    Returns:
        The id, lower-cased.

    Raises:
        InvalidBuildingIdError: ``value`` is not a string holding a UUID in its
            canonical hyphenated form.
    """
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value.lower()
    raise InvalidBuildingIdError(value)


def key_prefix(tenant_id: str) -> str:
    """Return the prefix of every cache key of one tenant.

    Args:
        tenant_id: The tenant (a UUID, as validated by the settings).

    Returns:
        ``bdobs:v1:{<tenant>}:building:``.
    """
    tenant = str(uuid.UUID(tenant_id))
    return f"{_KEY_PREFIX}:v{SCHEMA_VERSION}:{{{tenant}}}:building:"


def cache_key(tenant_id: str, building_id: str) -> str:
    """Return the Redis key of one building of one tenant.

    Args:
        tenant_id: The tenant (a UUID).
        building_id: The building id; validated and lower-cased here.

    Returns:
        The key, e.g. ``bdobs:v1:{<tenant>}:building:<id>``.

    Raises:
        InvalidBuildingIdError: ``building_id`` is malformed.
    """
    return key_prefix(tenant_id) + canonical_building_id(building_id)
