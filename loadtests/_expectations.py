"""What a fault scenario expects instead of (or besides) the standard targets.

A fault is expected to hurt some figures: a slow upstream lifts the p95, a
Redis outage drops the hit rate. Judging those against the healthy targets
would fail every fault run and prove nothing. Each fault scenario states what
it expects instead, as a few checks that read the same run facts: no user
request failed, the fault shows in the service's counters, failures stay
inside the fault window, requests fail fast rather than hang.

Each expectation is a small immutable value with ``describe()`` (one line for
the scenario list) and ``evaluate(facts) -> Check``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from instrumentation.indicators import Matcher, Series, Threshold
from loadtests._checks import (
    MIN_SAMPLES,
    Check,
    RunFacts,
    Unit,
    counter_increase,
    counter_increase_between,
    share_check,
)
from loadtests._samples import RequestSample
from loadtests.workload import request_name


class Expectation(Protocol):
    """A scenario's own check."""

    @property
    def name(self) -> str:
        """The check's stable key."""
        ...

    def describe(self) -> str:
        """Say what is expected, in one line."""
        ...

    def evaluate(self, facts: RunFacts) -> Check:
        """Judge the expectation on a run."""
        ...


def _blank(name: str, title: str, target: str, unit: Unit, source: str) -> Check:
    return Check(
        name=name,
        title=title,
        kind="expectation",
        status="inconclusive",
        value=None,
        target=target,
        unit=unit,
        samples=0,
        source=source,
        detail="",
    )


def _count_check(
    blank: Check, value: float, passed: bool, n: int | None, detail: str
) -> Check:
    if n is not None and n < MIN_SAMPLES:
        return replace(
            blank,
            value=value,
            samples=n,
            detail=f"only {n} requests; at least {MIN_SAMPLES} are needed",
        )
    return replace(
        blank,
        status="pass" if passed else "fail",
        value=value,
        samples=n,
        detail=detail,
    )


def _fault_window(facts: RunFacts) -> tuple[float, float] | None:
    return facts.fault_windows[0] if facts.fault_windows else None


@dataclass(frozen=True, slots=True)
class NoFailedRequests:
    """Every user request got its expected outcome: zero failures, exactly."""

    name: str = "no_failed_requests"

    def describe(self) -> str:
        """Say what is expected."""
        return "no user request fails (every outcome is the expected one)"

    def evaluate(self, facts: RunFacts) -> Check:
        """Count failed requests."""
        failed = [sample for sample in facts.samples if not sample.ok]
        blank = _blank(self.name, "Failed user requests", "= 0", "count", "Locust")
        return _count_check(
            blank,
            len(failed),
            not failed,
            len(facts.samples),
            f"{len(failed)} of {len(facts.samples)} requests failed"
            + _first_failures(failed),
        )


def _first_failures(failed: Sequence[RequestSample]) -> str:
    if not failed:
        return ""
    statuses = sorted({sample.status for sample in failed})
    return f" (statuses {', '.join(str(code) for code in statuses)})"


@dataclass(frozen=True, slots=True)
class NoServerErrors:
    """No response was a 5xx, and every request got a response."""

    name: str = "no_server_errors"

    def describe(self) -> str:
        """Say what is expected."""
        return "no 5xx answer and no dropped connection"

    def evaluate(self, facts: RunFacts) -> Check:
        """Count 5xx answers and requests without an answer."""
        bad = [s for s in facts.samples if s.status >= 500 or s.status == 0]
        blank = _blank(self.name, "5xx or no answer", "= 0", "count", "Locust")
        return _count_check(
            blank,
            len(bad),
            not bad,
            len(facts.samples),
            f"{len(bad)} of {len(facts.samples)} requests" + _first_failures(bad),
        )


@dataclass(frozen=True, slots=True)
class CounterIncreased:
    """A service counter moved during the run: the fault is visible in metrics."""

    name: str
    title: str
    series: Series
    at_least: float = 1

    def describe(self) -> str:
        """Say what is expected."""
        return f"{self.series.selector()} increases by at least {self.at_least:g}"

    def evaluate(self, facts: RunFacts) -> Check:
        """Read the counter's increase over the run."""
        value = counter_increase(facts, self.series)
        blank = _blank(
            self.name,
            self.title,
            f"≥ {self.at_least:g}",
            "count",
            f"service counters: {self.series.selector()}",
        )
        return _count_check(
            blank, value, value >= self.at_least, None, f"increased by {value:g}"
        )


@dataclass(frozen=True, slots=True)
class CounterMatchesResponses:
    """A counter moved exactly once per response of one kind."""

    name: str
    title: str
    series: Series
    request_class: str
    status: int

    def describe(self) -> str:
        """Say what is expected."""
        return (
            f"{self.series.selector()} increases once per {self.request_class} "
            f"request answered {self.status}"
        )

    def evaluate(self, facts: RunFacts) -> Check:
        """Compare the counter's increase with the responses counted by Locust."""
        wanted = request_name(self.request_class)
        expected = sum(
            1 for s in facts.samples if s.name == wanted and s.status == self.status
        )
        value = counter_increase(facts, self.series)
        blank = _blank(
            self.name,
            self.title,
            f"= {expected} ({self.request_class} requests answered {self.status})",
            "count",
            f"service counters: {self.series.selector()}; Locust",
        )
        if expected == 0:
            return replace(
                blank,
                value=value,
                detail=f"no {self.request_class} request was answered "
                f"{self.status}: nothing to compare",
            )
        if facts.counters.resets:
            return replace(
                blank,
                value=value,
                detail="counter reset: " + "; ".join(facts.counters.resets),
            )
        return _count_check(
            blank,
            value,
            abs(value - expected) < 0.5,
            expected,
            f"counter +{value:g}, responses {expected}",
        )


@dataclass(frozen=True, slots=True)
class FailuresOnlyDuringFault:
    """Requests fail only while the fault lasts, and all succeed again after it.

    Attributes:
        grace: Seconds after the fault ends during which failures still count
            as the fault's (a request in flight, a breaker still open).
    """

    grace: float = 2.0
    name: str = "failures_only_during_fault"

    def describe(self) -> str:
        """Say what is expected."""
        return (
            "requests fail only during the fault (plus "
            f"{self.grace:g} s), and succeed again after it"
        )

    def evaluate(self, facts: RunFacts) -> Check:
        """Count failed requests that did not overlap the fault window."""
        blank = _blank(
            self.name,
            "Failures outside the fault",
            "= 0",
            "count",
            "Locust, by request start and end time",
        )
        window = _fault_window(facts)
        if window is None:
            return replace(blank, detail="the fault was never switched on")
        start, end = window[0], window[1] + self.grace
        outside = [
            s for s in facts.samples if not s.ok and (s.end < start or s.start > end)
        ]
        after = [s for s in facts.samples if s.start > end]
        if not after:
            return replace(
                blank,
                value=len(outside),
                detail="no request was sent after the fault: recovery unseen",
            )
        return _count_check(
            blank,
            len(outside),
            not outside,
            len(facts.samples),
            f"{len(outside)} failures outside the fault; {len(after)} requests "
            "after it",
        )


@dataclass(frozen=True, slots=True)
class ServedDuringFault:
    """While the fault lasts, at least a share of requests still succeeds.

    Attributes:
        min_share: The share of requests started during the fault that must
            get their expected outcome (buildings served from the cache).
    """

    min_share: float = 0.5
    name: str = "served_during_fault"

    def describe(self) -> str:
        """Say what is expected."""
        return (
            f"at least {self.min_share:.0%} of the requests sent during the fault "
            "succeed (served from the cache)"
        )

    def evaluate(self, facts: RunFacts) -> Check:
        """Judge the share of successful requests started in the fault window."""
        threshold = Threshold(">=", self.min_share)
        blank = _blank(
            self.name,
            "Served during the fault",
            threshold.describe("ratio"),
            "ratio",
            "Locust, requests started during the fault",
        )
        window = _fault_window(facts)
        if window is None:
            return replace(blank, detail="the fault was never switched on")
        during = [s for s in facts.samples if window[0] <= s.start <= window[1]]
        succeeded = sum(1 for s in during if s.ok)
        return share_check(blank, threshold, succeeded, len(during))


@dataclass(frozen=True, slots=True)
class MaxResponseTime:
    """No request takes longer than a bound: the service fails fast, never hangs."""

    limit: float
    name: str = "max_response_time"

    def describe(self) -> str:
        """Say what is expected."""
        return f"no request takes longer than {self.limit:g} s"

    def evaluate(self, facts: RunFacts) -> Check:
        """Compare the slowest request with the bound."""
        blank = _blank(
            self.name,
            "Slowest request",
            f"≤ {self.limit * 1000:g} ms",
            "seconds",
            "every request's response time, unrounded",
        )
        slowest = max((s.response_ms / 1000 for s in facts.samples), default=math.nan)
        return _count_check(
            blank,
            slowest,
            slowest <= self.limit,
            len(facts.samples),
            f"slowest {slowest * 1000:.0f} ms",
        )


@dataclass(frozen=True, slots=True)
class CacheRecovers:
    """After the fault ends, the cache serves hits again."""

    name: str = "cache_recovers"

    def describe(self) -> str:
        """Say what is expected."""
        return "the cache serves hits again after the fault ends"

    def evaluate(self, facts: RunFacts) -> Check:
        """Count cache hits between the end of the fault and the end of the run."""
        hits = Series(
            "building_cache_operations_total", (Matcher("operation", "=", "hit"),)
        )
        blank = _blank(
            self.name,
            "Cache hits after the fault",
            "≥ 1",
            "count",
            f"service counters: {hits.selector()}, scrapes after the fault",
        )
        window = _fault_window(facts)
        if window is None:
            return replace(blank, detail="the fault was never switched on")
        value, scrapes = counter_increase_between(
            facts.scrapes, hits, window[1], math.inf
        )
        if scrapes < 2:
            return replace(
                blank, detail="fewer than two scrapes after the fault: recovery unseen"
            )
        return _count_check(
            blank, value, value >= 1, None, f"{value:g} hits in {scrapes} scrapes"
        )
