"""The checks a verdict is made of: the SPEC's targets and scenario expectations.

A check says ``pass``, ``fail`` or ``inconclusive``. It is inconclusive when
fewer than :data:`MIN_SAMPLES` events stand behind it, or when its 95 %
confidence interval straddles the limit: the run cannot tell on which side of
the limit the system really is. Inconclusive is not a pass: a verdict passes
only when every check passed.

Where each figure comes from:

==========================  ====================================================
check                       source
==========================  ====================================================
``cache_hit_rate``          the service's counters, increase over the run
``validation_success_rate`` the service's counters
``lookup_error_rate``       the service's counters (server-side lookup errors)
``error_rate``              every request Locust sent; a request failed unless
                            its outcome is the one expected for its name
``latency_p95``             every request's response time as Locust measured
                            it, unrounded; nearest-rank p95
``achieved_rate``           requests sent over the asked duration, against
                            the asked rate (±10 %)
==========================  ====================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from instrumentation.indicators import (
    CACHE_HIT_RATE,
    ERROR_RATE,
    LATENCY_P95,
    VALIDATION_SUCCESS_RATE,
    Indicator,
    Ratio,
    Series,
    Threshold,
)
from loadtests._samples import RequestSample
from loadtests._scrape import Increases, Scrape, increases
from loadtests._stats import nearest_rank, quantile_interval, wilson_interval

Status = Literal["pass", "fail", "inconclusive"]
Unit = Literal["ratio", "seconds", "per_minute", "count"]

#: Fewer events than this behind a ratio or a percentile: inconclusive. A
#: 95 % interval on a share is then ±10 points wide at best; an upper bound of
#: p95 needs at least 72 samples to exist at all.
MIN_SAMPLES: Final = 100
#: How far the achieved request rate may stray from the asked rate.
RATE_TOLERANCE: Final = 0.10

#: The standard targets, in report order; scenarios pick from these keys.
TARGET_KEYS: Final = (
    "cache_hit_rate",
    "latency_p95",
    "error_rate",
    "validation_success_rate",
    "lookup_error_rate",
)


@dataclass(frozen=True, slots=True)
class Check:
    """One judged figure of a run.

    Attributes:
        name: Stable key, such as ``cache_hit_rate``.
        title: For people.
        kind: ``target`` (from the indicator catalogue), ``expectation`` (a
            fault scenario's own) or ``run`` (the run delivered its load).
        status: ``pass``, ``fail`` or ``inconclusive``.
        value: The measured value, or None when nothing was measured.
        target: The limit, for people, such as ``≥ 70 %``.
        unit: How ``value`` reads: ``ratio``, ``seconds``, ``per_minute``, ``count``.
        interval: The 95 % confidence interval of ``value``, when it has one.
        samples: How many events stand behind the value.
        source: Where the value comes from.
        detail: Why the check came out as it did, in one sentence.
    """

    name: str
    title: str
    kind: Literal["target", "expectation", "run"]
    status: Status
    value: float | None
    target: str
    unit: Unit
    interval: tuple[float, float] | None = None
    samples: int | None = None
    source: str = ""
    detail: str = ""

    @property
    def passed(self) -> bool:
        """Whether the check passed (inconclusive is not a pass)."""
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        """Return the check as plain JSON values (infinities as None)."""
        interval = None
        if self.interval is not None:
            interval = [_finite(bound) for bound in self.interval]
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "status": self.status,
            "passed": self.passed,
            "value": None if self.value is None else _finite(self.value),
            "target": self.target,
            "unit": self.unit,
            "interval": interval,
            "samples": self.samples,
            "source": self.source,
            "detail": self.detail,
        }

    def shown(self, value: float | None = None) -> str:
        """Render ``value`` (the check's own unless given) in the check's unit."""
        return show(self.value if value is None else value, self.unit)


def show(value: float | None, unit: str) -> str:
    """Render a value for people in a unit of :data:`Unit`."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    if unit == "seconds":
        return f"{value * 1000:.1f} ms"
    if unit == "per_minute":
        return f"{value:.1f} /min"
    return f"{value:g}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def judge_interval(threshold: Threshold, low: float, high: float) -> tuple[Status, str]:
    """Judge a confidence interval against a threshold.

    Thresholds are monotone, so the interval passes when both ends satisfy
    the threshold, fails when neither does, and is inconclusive otherwise.
    """
    low_holds, high_holds = threshold.holds(low), threshold.holds(high)
    if low_holds and high_holds:
        return "pass", "the whole 95 % interval meets the target"
    if not low_holds and not high_holds:
        return "fail", "the whole 95 % interval misses the target"
    return (
        "inconclusive",
        "within measurement error of the limit: the 95 % interval straddles it",
    )


@dataclass(frozen=True, slots=True)
class RunFacts:
    """Everything measured in a run, for the checks to read.

    Attributes:
        samples: Every request Locust sent, by start time.
        scrapes: ``/metrics`` scrapes: at load start, during, and at the end.
        duration: The asked duration, in seconds.
        rate_per_minute: The asked request rate.
        started_at: Wall-clock time the load started.
        fault_windows: (start, end) wall-clock times of each fault.
    """

    samples: Sequence[RequestSample]
    scrapes: Sequence[Scrape]
    duration: float
    rate_per_minute: float
    started_at: float
    fault_windows: tuple[tuple[float, float], ...] = ()
    counters: Increases = field(init=False)

    def __post_init__(self) -> None:
        counted = (
            increases(self.scrapes)
            if len(self.scrapes) >= 2
            else Increases(samples=(), resets=("fewer than two scrapes",))
        )
        object.__setattr__(self, "counters", counted)


# --------------------------------------------------------------------------
# Standard targets
# --------------------------------------------------------------------------


def target_check(key: str, facts: RunFacts) -> Check:
    """Judge one of :data:`TARGET_KEYS` on a run.

    Raises:
        KeyError: Not a target key.
    """
    if key == "latency_p95":
        return _latency_p95(facts)
    if key == "error_rate":
        return _user_error_rate(facts)
    indicator = {
        "cache_hit_rate": CACHE_HIT_RATE,
        "validation_success_rate": VALIDATION_SUCCESS_RATE,
        "lookup_error_rate": ERROR_RATE,
    }[key]
    return _counter_ratio(key, indicator, facts)


def _limit(indicator: Indicator) -> Threshold:
    if indicator.target is None:
        raise ValueError(f"indicator {indicator.key!r} has no load-test target")
    return indicator.target


def _counter_ratio(key: str, indicator: Indicator, facts: RunFacts) -> Check:
    if not isinstance(indicator.query, Ratio):
        raise TypeError(f"indicator {indicator.key!r} is not a ratio")
    threshold = _limit(indicator)
    title = indicator.title
    if key == "lookup_error_rate":
        title = "Lookup error rate (server side)"
    blank = Check(
        name=key,
        title=title,
        kind="target",
        status="inconclusive",
        value=None,
        target=threshold.describe(indicator.unit),
        unit="ratio",
        samples=0,
        source="service counters (increase over the run)",
        detail="the service counted nothing for it",
    )
    result = indicator.query.evaluate((), facts.counters.samples)
    if result is None:
        return blank
    ratio, denominator = result
    n = round(denominator)
    check = share_check(blank, threshold, min(n, round(ratio * denominator)), n)
    if facts.counters.resets:
        resets = "; ".join(facts.counters.resets)
        return replace(
            check,
            status="inconclusive",
            detail=f"counter reset (the service restarted?) {resets}",
        )
    return check


def share_check(blank: Check, threshold: Threshold, successes: int, n: int) -> Check:
    """Judge ``successes`` out of ``n`` with its Wilson interval.

    Args:
        blank: The check's name, title, kind, target and source; returned
            as it is when there are no events.
        threshold: The limit the share must meet.
        successes: Events counted.
        n: Events in all.
    """
    if n == 0:
        return blank
    low, high = wilson_interval(successes, n)
    status, detail = _judged(threshold, low, high, n)
    return replace(
        blank,
        status=status,
        value=successes / n,
        unit="ratio",
        interval=(low, high),
        samples=n,
        detail=f"{successes} of {n}; {detail}",
    )


def _judged(
    threshold: Threshold, low: float, high: float, n: int
) -> tuple[Status, str]:
    if n < MIN_SAMPLES:
        return "inconclusive", f"only {n} events; at least {MIN_SAMPLES} are needed"
    return judge_interval(threshold, low, high)


def quantile_check(
    blank: Check, threshold: Threshold, seconds: Sequence[float], q: float
) -> Check:
    """Judge the nearest-rank q-quantile of response times, with its interval.

    Args:
        blank: The check's name, title, kind, target and source.
        threshold: The limit, in seconds.
        seconds: The response times, in any order.
        q: The quantile (0.95 for p95).
    """
    times = sorted(seconds)
    if not times:
        return blank
    low, high = quantile_interval(times, q)
    status, detail = _judged(threshold, low, high, len(times))
    return replace(
        blank,
        status=status,
        value=nearest_rank(times, q),
        unit="seconds",
        interval=(low, high),
        samples=len(times),
        detail=detail,
    )


def _latency_p95(facts: RunFacts) -> Check:
    threshold = _limit(LATENCY_P95)
    blank = Check(
        name="latency_p95",
        title="p95 response time (as users see it)",
        kind="target",
        status="inconclusive",
        value=None,
        target=threshold.describe("seconds"),
        unit="seconds",
        samples=0,
        source="every request's response time, unrounded; nearest-rank",
        detail="no requests were sent",
    )
    times = [sample.response_ms / 1000 for sample in facts.samples]
    return quantile_check(blank, threshold, times, 0.95)


def _user_error_rate(facts: RunFacts) -> Check:
    threshold = _limit(ERROR_RATE)
    blank = Check(
        name="error_rate",
        title="Error rate (as users see it)",
        kind="target",
        status="inconclusive",
        value=None,
        target=threshold.describe("ratio"),
        unit="ratio",
        samples=0,
        source="Locust; an outcome expected for the request's name is no failure",
        detail="no requests were sent",
    )
    failed = sum(1 for sample in facts.samples if not sample.ok)
    return share_check(blank, threshold, failed, len(facts.samples))


def achieved_rate_check(facts: RunFacts) -> Check:
    """Check that the run sent the asked rate, within :data:`RATE_TOLERANCE`.

    The achieved rate is the number of requests sent over the asked duration:
    Locust stops at the end of it, so a load generator or a service that
    cannot keep up shows as a shortfall. A request still in flight when Locust
    stops is not counted (at most one per user).
    """
    asked = facts.rate_per_minute
    achieved = len(facts.samples) / facts.duration * 60 if facts.duration else 0.0
    low, high = asked * (1 - RATE_TOLERANCE), asked * (1 + RATE_TOLERANCE)
    within = low <= achieved <= high
    detail = (
        "the load was delivered as asked"
        if within
        else "the load was not delivered as asked, so the other checks do not "
        "speak for the asked rate"
    )
    return Check(
        name="achieved_rate",
        title="Achieved request rate",
        kind="run",
        status="pass" if within else "fail",
        value=achieved,
        target=f"{asked:g} /min ± {RATE_TOLERANCE:.0%}",
        unit="per_minute",
        samples=len(facts.samples),
        source="requests sent over the asked duration",
        detail=f"{len(facts.samples)} requests in {facts.duration:g} s; {detail}",
    )


def counter_increase(facts: RunFacts, series: Series) -> float:
    """Return how much the series selected by ``series`` increased over the run."""
    return series.total(facts.counters.samples)


def counter_increase_between(
    scrapes: Sequence[Scrape], series: Series, start: float, end: float
) -> tuple[float, int]:
    """Return a series' increase between the first scrape at or after ``start``
    and the last at or before ``end``, and how many scrapes that spans."""
    window = [scrape for scrape in scrapes if start <= scrape.at <= end]
    if len(window) < 2:
        return 0.0, len(window)
    return series.total(increases(window).samples), len(window)


def status_counts(samples: Sequence[RequestSample]) -> Mapping[int, int]:
    """Return how many requests got each HTTP status (0: no response)."""
    counts: dict[int, int] = {}
    for sample in samples:
        counts[sample.status] = counts.get(sample.status, 0) + 1
    return counts
