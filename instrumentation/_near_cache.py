"""The near cache: a small in-process first level in front of Redis.

A bounded LRU dictionary of decoded buildings (or of "not found"), each with a
monotonic expiry no later than its freshness in Redis. A hit is a dictionary
lookup and a comparison: no I/O, no decoding, no allocation.

The buildings it returns are shared between callers and must be treated as
read-only. Entries are dropped by :meth:`NearCache.pop` (the client's
``invalidate`` and ``forget_local``). Other processes learn of an invalidation
through Redis pub/sub (:mod:`instrumentation._invalidation`) and drop their copy
too; when that announcement is lost, a copy lives at most ``near_cache_ttl``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, TypeAlias

#: A held entry: its monotonic expiry and the building (None: not found).
Entry: TypeAlias = tuple[float, dict[str, Any] | None]


class NearCache:
    """A bounded, expiring LRU map from building id to building (or None).

    Args:
        size: Most entries held; the least recently used one goes first.
        ttl: Longest time an entry is served, in seconds.
    """

    __slots__ = ("_entries", "_size", "ttl")

    def __init__(self, size: int, ttl: float) -> None:
        self._size = size
        self.ttl = ttl
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, building_id: str) -> Entry | None:
        """Return the live entry of ``building_id`` (its building is ``[1]``).

        Returns:
            The entry, or None when nothing live is held.
        """
        entry = self._entries.get(building_id)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[building_id]
            return None
        self._entries.move_to_end(building_id)
        return entry

    def put(
        self, building_id: str, building: dict[str, Any] | None, fresh_for: float
    ) -> None:
        """Hold a building (None: not found) for at most ``fresh_for`` seconds.

        Args:
            building_id: The canonical id.
            building: The decoded building, or None for "not found".
            fresh_for: How long the copy is still fresh in Redis; the entry
                expires after the smaller of this and the near-cache TTL.
        """
        lifetime = min(self.ttl, fresh_for)
        if lifetime <= 0:
            return
        entries = self._entries
        entries[building_id] = (time.monotonic() + lifetime, building)
        entries.move_to_end(building_id)
        if len(entries) > self._size:
            entries.popitem(last=False)

    def pop(self, building_id: str) -> bool:
        """Drop ``building_id``; return whether it was held."""
        return self._entries.pop(building_id, None) is not None

    def clear(self) -> None:
        """Drop everything."""
        self._entries.clear()
