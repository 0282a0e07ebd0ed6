"""A consecutive-failure circuit breaker that keeps a failing Redis out of the way.

Closed, every call goes through. After ``threshold`` consecutive failures it
opens: calls are refused (the caller skips Redis) until ``cooldown`` seconds have
passed; then one call is let through as a probe, and one more per further
cooldown while probes keep failing. Any success closes it again.

It logs once per opening (WARNING, with the last failure as the reason) and once
per recovery (INFO); failed probes log at DEBUG only, so a Redis that stays down
does not flood the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class CircuitBreaker:
    """Count consecutive failures and refuse calls while they pile up.

    Args:
        name: What is protected, for log lines (``"Redis cache"``).
        threshold: Consecutive failures that open the breaker.
        cooldown: Seconds to wait before letting a probe through.
        clock: Monotonic clock, replaceable in tests.
    """

    __slots__ = ("_clock", "_cooldown", "_name", "_threshold", "failures", "opened_at")

    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        """Whether calls are currently being refused (probes aside)."""
        return self.opened_at is not None

    def allow(self) -> bool:
        """Return whether a call may go through now.

        While open, the first caller after each cooldown is the probe and gets
        True; everyone else gets False until the probe succeeds.
        """
        opened_at = self.opened_at
        if opened_at is None:
            return True
        now = self._clock()
        if now - opened_at >= self._cooldown:
            # Re-arm before the probe runs, so one probe per cooldown, even if
            # the probing caller is cancelled and never reports back.
            self.opened_at = now
            logger.debug("%s: probing after %.1f s", self._name, now - opened_at)
            return True
        return False

    def success(self) -> None:
        """Record a successful call; closes the breaker if it was open."""
        if self.opened_at is not None:
            logger.info("%s is answering again; circuit breaker closed", self._name)
            self.opened_at = None
        self.failures = 0

    def failure(self, reason: object) -> None:
        """Record a failed call; may open the breaker.

        Args:
            reason: What went wrong (an exception or a text), for the log line.
        """
        self.failures += 1
        if self.opened_at is not None:
            self.opened_at = self._clock()
            logger.debug("%s: probe failed: %s", self._name, reason)
        elif self.failures >= self._threshold:
            self.opened_at = self._clock()
            logger.warning(
                "%s failed %d times in a row (last: %s); skipping it for %.1f s "
                "between probes until it answers",
                self._name,
                self.failures,
                reason,
                self._cooldown,
            )
