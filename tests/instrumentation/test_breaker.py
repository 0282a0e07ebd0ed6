"""The circuit breaker in front of Redis, on a clock the tests move."""

from __future__ import annotations

import logging

import pytest

from instrumentation._breaker import CircuitBreaker


class Clock:
    """A monotonic clock that only moves when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A clock at t=100 s."""
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    """A breaker opening after 3 failures, probing every 5 s."""
    return CircuitBreaker("Redis cache", threshold=3, cooldown=5.0, clock=clock)


def test_breaker_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    """Failures interrupted by a success never open it."""
    for _ in range(5):
        breaker.failure("boom")
        breaker.failure("boom")
        breaker.success()

    assert breaker.allow()
    assert not breaker.is_open


def test_breaker_opens_at_the_threshold_and_refuses_during_cooldown(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    """Three failures in a row open it; calls are refused until the cooldown."""
    for _ in range(3):
        breaker.failure("boom")
    clock.now += 4.9

    assert breaker.is_open
    assert not breaker.allow()


def test_breaker_lets_one_probe_through_per_cooldown(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    """After the cooldown one caller probes; the others wait for its verdict."""
    for _ in range(3):
        breaker.failure("boom")
    clock.now += 5.0

    first = breaker.allow()
    second = breaker.allow()
    breaker.failure("still down")
    clock.now += 4.0
    during_next_cooldown = breaker.allow()
    clock.now += 1.0
    next_probe = breaker.allow()

    assert (first, second, during_next_cooldown, next_probe) == (
        True,
        False,
        False,
        True,
    )


def test_successful_probe_closes_the_breaker(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    """A success after opening lets every call through again."""
    for _ in range(3):
        breaker.failure("boom")
    clock.now += 5.0
    breaker.allow()

    breaker.success()

    assert not breaker.is_open
    assert all(breaker.allow() for _ in range(3))


def test_breaker_logs_once_per_opening_and_once_per_recovery(
    breaker: CircuitBreaker, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed probes log nothing above DEBUG; opening warns and recovery informs."""
    caplog.set_level(logging.DEBUG, logger="instrumentation._breaker")
    for _ in range(3):
        breaker.failure("connection refused")
    for _ in range(4):
        clock.now += 5.0
        breaker.allow()
        breaker.failure("connection refused")
    clock.now += 5.0
    breaker.allow()
    breaker.success()

    levels = [r.levelname for r in caplog.records if r.levelname != "DEBUG"]
    assert levels == ["WARNING", "INFO"]
    assert "connection refused" in caplog.records[0].getMessage()
