"""The indicator catalogue: each health indicator of the client, defined once.

The alert rules, the dashboards and the load-test verdict all read this module,
so the three measure the same thing the same way. An indicator says what it
means, how to compute it from the eight metrics (a ratio of two counters or a
histogram quantile), its load-test target and its alert threshold.

Targets and alert thresholds differ on purpose. A target is what a healthy
release shows under the baseline load (hit rate at least 70 %); an alert
threshold is what is worth interrupting someone for (hit rate under 50 % for
ten minutes). Between the two lies "worse than it should be, but not urgent".

The same definition renders both PromQL (:meth:`Indicator.promql`) and a value
computed from two scrapes of ``/metrics`` (:meth:`Ratio.evaluate`), so a
dashboard panel and the load-test verdict cannot disagree about what "cache hit
rate" means.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

Comparison = Literal["<", "<=", ">", ">="]
Severity = Literal["critical", "warning", "info"]

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SYMBOL: Final = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}

#: The rate window of recording rules and alerts unless configured otherwise.
DEFAULT_WINDOW: Final = "5m"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher, such as ``operation="hit"`` or ``status=~"a|b"``."""

    label: str
    op: Literal["=", "!=", "=~"]
    value: str

    def promql(self) -> str:
        """Render as PromQL."""
        return f'{self.label}{self.op}"{self.value}"'

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether a sample with these labels is selected."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        return actual in self.value.split("|")


@dataclass(frozen=True, slots=True)
class Series:
    """A metric name and the matchers that pick some of its series."""

    metric: str
    matchers: tuple[Matcher, ...] = ()

    def selector(self, extra: str = "") -> str:
        """Render ``metric{matchers,extra}``; ``extra`` is raw PromQL matchers."""
        parts = [m.promql() for m in self.matchers]
        if extra:
            parts.append(extra)
        return f"{self.metric}{{{','.join(parts)}}}"

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        """Return whether a scraped sample belongs to this series set."""
        return name == self.metric and all(m.matches(labels) for m in self.matchers)

    def total(self, samples: Iterable[tuple[str, Mapping[str, str], float]]) -> float:
        """Sum the values of the samples this series set selects."""
        return sum(
            value for name, labels, value in samples if self.matches(name, labels)
        )


@dataclass(frozen=True, slots=True)
class Ratio:
    """An indicator computed as rate(numerator) / rate(denominator)."""

    numerator: Series
    denominator: Series

    def promql(self, extra: str, window: str, by: tuple[str, ...]) -> str:
        """Render the ratio; no traffic gives no value (never 0 or NaN)."""
        grouping = f" by ({', '.join(by)})" if by else ""
        numerator = f"sum{grouping} (rate({self.numerator.selector(extra)}[{window}]))"
        # The comparison must bind to the denominator only: `a / b > 0` would
        # drop a ratio of exactly 0, hiding a healthy 0 % error rate.
        return f"{numerator}\n/\n({self.traffic_promql(extra, window, by)} > 0)"

    def traffic_promql(self, extra: str, window: str, by: tuple[str, ...]) -> str:
        """Render the denominator's per-second rate, the indicator's traffic."""
        grouping = f" by ({', '.join(by)})" if by else ""
        return f"sum{grouping} (rate({self.denominator.selector(extra)}[{window}]))"

    def evaluate(
        self,
        before: Iterable[tuple[str, Mapping[str, str], float]],
        after: Iterable[tuple[str, Mapping[str, str], float]],
    ) -> tuple[float, float] | None:
        """Compute the ratio over the increase between two scrapes.

        Args:
            before: Samples (name, labels, value) of the first scrape.
            after: Samples of the second scrape.

        Returns:
            ``(ratio, denominator increase)``, or None when nothing was counted.
        """
        before, after = list(before), list(after)
        denominator = self.denominator.total(after) - self.denominator.total(before)
        if denominator <= 0:
            return None
        numerator = self.numerator.total(after) - self.numerator.total(before)
        return numerator / denominator, denominator


@dataclass(frozen=True, slots=True)
class Quantile:
    """An indicator computed as a quantile of a histogram."""

    histogram: str
    quantile: float
    matchers: tuple[Matcher, ...] = ()

    @property
    def buckets(self) -> Series:
        """The ``_bucket`` series of the histogram."""
        return Series(f"{self.histogram}_bucket", self.matchers)

    @property
    def count(self) -> Series:
        """The ``_count`` series of the histogram: the indicator's traffic."""
        return Series(f"{self.histogram}_count", self.matchers)

    def promql(self, extra: str, window: str, by: tuple[str, ...]) -> str:
        """Render ``histogram_quantile`` over the bucket rates."""
        keys = ", ".join(("le", *by))
        return (
            f"histogram_quantile({self.quantile}, sum by ({keys}) "
            f"(rate({self.buckets.selector(extra)}[{window}])))"
        )

    def traffic_promql(self, extra: str, window: str, by: tuple[str, ...]) -> str:
        """Render the per-second rate of observations."""
        grouping = f" by ({', '.join(by)})" if by else ""
        return f"sum{grouping} (rate({self.count.selector(extra)}[{window}]))"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A comparison with a limit: ``value <op> limit`` holds or does not."""

    op: Comparison
    value: float

    def holds(self, observed: float) -> bool:
        """Return whether ``observed`` satisfies the comparison."""
        return _COMPARE[self.op](observed, self.value)

    def describe(self, unit: str) -> str:
        """Render for people, e.g. ``≥ 70 %`` or ``< 200 ms``."""
        return f"{_SYMBOL[self.op]} {format_value(self.value, unit)}"


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """When an indicator is worth alerting on.

    Attributes:
        name: The alert name.
        threshold: The alert fires while the indicator satisfies this.
        severity: ``critical`` pages; ``warning`` opens a ticket.
        for_: How long the condition must hold before firing.
        summary: One line for the notification title.
    """

    name: str
    threshold: Threshold
    severity: Severity
    for_: str
    summary: str


@dataclass(frozen=True, slots=True)
class Indicator:
    """One health indicator, its query, its target and its alert.

    Attributes:
        key: Stable identifier, e.g. ``cache_hit_rate``.
        title: For panel titles and tables.
        meaning: What the indicator says about the system, for descriptions.
        unit: ``ratio`` (0..1) or ``seconds``.
        query: How it is computed from the metrics.
        record: The recording rule name (``level:metric:operations``).
        target: The load-test target, or None when the load test does not
            judge this indicator.
        alert: The alert on it, or None.
        healthy: What a healthy value looks like, for panel descriptions.
    """

    key: str
    title: str
    meaning: str
    unit: Literal["ratio", "seconds"]
    query: Ratio | Quantile
    record: str
    target: Threshold | None
    alert: AlertSpec | None
    healthy: str

    def promql(
        self, extra: str = "", window: str = DEFAULT_WINDOW, by: tuple[str, ...] = ()
    ) -> str:
        """Render the indicator as PromQL.

        Args:
            extra: Raw PromQL matchers added to every selector, such as
                ``job="building-directory"`` or ``job=~"$job"``.
            window: The rate window, such as ``5m`` or ``$__rate_interval``.
            by: Labels to keep in the result (``job``, ``namespace``...).
        """
        return self.query.promql(extra, window, by)

    def traffic_promql(
        self, extra: str = "", window: str = DEFAULT_WINDOW, by: tuple[str, ...] = ()
    ) -> str:
        """Render the per-second rate of the events the indicator is over."""
        return self.query.traffic_promql(extra, window, by)


def format_value(value: float, unit: str) -> str:
    """Render a value in its unit for people: ``70 %``, ``200 ms``, ``1 s``."""
    if unit == "ratio":
        return f"{value * 100:g} %"
    if unit == "seconds":
        return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"
    return f"{value:g}"


_CACHE = "building_cache_operations_total"
_REQUESTS = "building_directory_requests_total"
_VALIDATIONS = "building_validations_total"
_LOOKUP = Matcher("operation", "=", "get_building")
_FETCH = Matcher("operation", "=", "fetch_building")

CACHE_HIT_RATE: Final = Indicator(
    key="cache_hit_rate",
    title="Cache hit rate",
    meaning="Share of cache lookups answered from the cache (hits over hits "
    "plus misses); what the cache saves the Building Directory.",
    unit="ratio",
    query=Ratio(
        numerator=Series(_CACHE, (Matcher("operation", "=", "hit"),)),
        denominator=Series(_CACHE, (Matcher("operation", "=~", "hit|miss"),)),
    ),
    record="job:building_cache_hit:ratio_rate5m",
    target=Threshold(">=", 0.70),
    alert=AlertSpec(
        name="BuildingCacheHitRateLow",
        threshold=Threshold("<", 0.50),
        severity="warning",
        for_="10m",
        summary="Building cache hit rate is below 50 %",
    ),
    healthy="70 % or more once the cache is warm; under 50 % alerts.",
)

LATENCY_P95: Final = Indicator(
    key="latency_p95",
    title="p95 lookup latency",
    meaning="95th percentile of the time a building lookup takes through the "
    "cached client, cache and upstream included. Interpolated within histogram "
    "buckets: exact only at bucket bounds (0.1, 0.2, 0.25 s ...).",
    unit="seconds",
    query=Quantile("building_directory_request_duration_seconds", 0.95, (_LOOKUP,)),
    record="job:building_directory_request_duration_seconds:p95_rate5m",
    target=Threshold("<", 0.200),
    alert=AlertSpec(
        name="BuildingDirectoryLatencyHigh",
        threshold=Threshold(">", 1.0),
        severity="warning",
        for_="10m",
        summary="Building lookups p95 latency is above 1 s",
    ),
    healthy="Under 200 ms (25-40 ms average with a warm cache); over 1 s alerts.",
)

ERROR_RATE: Final = Indicator(
    key="error_rate",
    title="Lookup error rate",
    meaning="Share of building lookups that failed (upstream timeout, HTTP "
    "error, unreadable body) and could not be answered from a stale copy.",
    unit="ratio",
    query=Ratio(
        numerator=Series(_REQUESTS, (_LOOKUP, Matcher("status", "=", "error"))),
        denominator=Series(_REQUESTS, (_LOOKUP,)),
    ),
    record="job:building_directory_lookup_errors:ratio_rate5m",
    target=Threshold("<", 0.01),
    alert=AlertSpec(
        name="BuildingDirectoryErrorRateHigh",
        threshold=Threshold(">", 0.05),
        severity="critical",
        for_="5m",
        summary="More than 5 % of building lookups fail",
    ),
    healthy="Under 1 %; over 5 % pages.",
)

VALIDATION_SUCCESS_RATE: Final = Indicator(
    key="validation_success_rate",
    title="Validation success rate",
    meaning="Share of validations that found an existing, active building. "
    "Unknown and inactive buildings and validation errors count against it.",
    unit="ratio",
    query=Ratio(
        numerator=Series(_VALIDATIONS, (Matcher("result", "=", "valid"),)),
        denominator=Series(_VALIDATIONS),
    ),
    record="job:building_validations_valid:ratio_rate5m",
    target=Threshold(">", 0.95),
    alert=AlertSpec(
        name="BuildingValidationFailuresHigh",
        threshold=Threshold("<", 0.90),
        severity="warning",
        for_="10m",
        summary="More than 10 % of building validations fail",
    ),
    healthy="Over 95 %; under 90 % (failures over 10 %) alerts.",
)

CACHE_ERROR_RATE: Final = Indicator(
    key="cache_error_rate",
    title="Cache error rate",
    meaning="Share of cache operations that failed because Redis was down, "
    "slow or returned something unreadable. Lookups still succeed through the "
    "upstream, slower.",
    unit="ratio",
    query=Ratio(
        numerator=Series(_CACHE, (Matcher("operation", "=", "error"),)),
        denominator=Series(_CACHE),
    ),
    record="job:building_cache_errors:ratio_rate5m",
    target=None,
    alert=AlertSpec(
        name="BuildingCacheDegraded",
        threshold=Threshold(">", 0.10),
        severity="warning",
        for_="5m",
        summary="Redis cache is failing; lookups fall through to the upstream",
    ),
    healthy="0 %; anything above means Redis is down, slow or holds bad data.",
)

UPSTREAM_AVAILABILITY: Final = Indicator(
    key="upstream_availability",
    title="Upstream availability",
    meaning="Share of HTTP calls to the Building Directory that gave an answer "
    "(a building or a 404). Retries count as separate calls.",
    unit="ratio",
    query=Ratio(
        numerator=Series(
            _REQUESTS, (_FETCH, Matcher("status", "=~", "success|not_found"))
        ),
        denominator=Series(_REQUESTS, (_FETCH,)),
    ),
    record="job:building_directory_upstream_available:ratio_rate5m",
    target=None,
    alert=None,
    healthy="100 %; a dip shows the Building Directory failing before lookups do.",
)

#: The four indicators the load-test verdict judges, in report order.
TARGET_INDICATORS: Final = (
    CACHE_HIT_RATE,
    LATENCY_P95,
    ERROR_RATE,
    VALIDATION_SUCCESS_RATE,
)

#: Every indicator, in display order.
INDICATORS: Final = (*TARGET_INDICATORS, CACHE_ERROR_RATE, UPSTREAM_AVAILABILITY)

#: The error-rate objective the burn-rate alerts protect: 99 % of lookups
#: succeed, an error budget of 1 %, the same as the load-test target.
ERROR_BUDGET: Final = 0.01


def by_key(key: str) -> Indicator:
    """Return the indicator with this key.

    Raises:
        KeyError: No indicator has this key.
    """
    for indicator in INDICATORS:
        if indicator.key == key:
            return indicator
    raise KeyError(f"no indicator {key!r}; known: {[i.key for i in INDICATORS]}")
