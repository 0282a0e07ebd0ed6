"""What the client reports about itself: warming results and health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

HealthStatus = Literal["ok", "degraded"]
RedisState = Literal["ok", "down", "disabled"]
UpstreamState = Literal["ok", "failing", "unknown"]


@dataclass(frozen=True, slots=True)
class WarmReport:
    """How a cache warming went; each distinct id is counted once.

    Attributes:
        fetched: Buildings fetched from the Building Directory; written to
            Redis unless Redis was failing, which the cache's ``error``
            operations count (and the near cache, when it is on).
        cached: Buildings that were already cached, fresh.
        not_found: Ids the Building Directory does not know (now negatively
            cached, or already were).
        failed: Malformed ids and ids whose fetch failed.
    """

    fetched: int = 0
    cached: int = 0
    not_found: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        """How many distinct ids were handled."""
        return self.fetched + self.cached + self.not_found + self.failed


@dataclass(frozen=True, slots=True)
class Health:
    """The client's view of its dependencies.

    A Redis that is down degrades the client (lookups go upstream, slower) but
    does not stop it; so does a failing upstream when stale copies can serve.

    Attributes:
        status: ``ok``, or ``degraded`` when Redis is down or the upstream's
            last fetch failed.
        redis: ``ok``, ``down`` (no answer to PING in time, or the circuit
            breaker is open) or ``disabled`` (no Redis configured).
        upstream: How the last fetch went: ``ok``, ``failing``, or ``unknown``
            before the first one.
        reasons: Human-readable explanations of anything not ``ok``.
    """

    status: HealthStatus
    redis: RedisState
    upstream: UpstreamState
    reasons: list[str] = field(default_factory=list)
