"""The overview dashboard, the one a person on call opens first.

Every indicator panel takes its query, title, meaning, unit, target and alert
from the indicator catalogue (:mod:`instrumentation.indicators`), so the
dashboard, the alert rules and the load-test verdict measure the same thing.
The breakdown panels (traffic by outcome, cache operations by kind...) sum the
rate of one metric by its labels; their selectors are rendered by the
catalogue's :class:`~instrumentation.indicators.Series` too.

Layout, top to bottom: the four target indicators as coloured stats; the
firing alerts; then traffic, latency, cache, validation and data quality,
errors and saturation.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from alerts import alert_names
from alerts.config import DEFAULT_CONFIG
from alerts.rules import build_rules
from dashboards.spec import (
    Annotation,
    DashboardSpec,
    Link,
    PanelSpec,
    Query,
    RowSpec,
    Step,
    Variable,
)
from instrumentation.indicators import (
    CACHE_ERROR_RATE,
    CACHE_HIT_RATE,
    ERROR_RATE,
    LATENCY_P95,
    TARGET_INDICATORS,
    UPSTREAM_AVAILABILITY,
    VALIDATION_SUCCESS_RATE,
    Indicator,
    Matcher,
    Quantile,
    Series,
    format_value,
)
from instrumentation.metrics import LATENCY_BUCKETS

#: The overview dashboard's uid: stable, so links and bookmarks survive rebuilds.
OVERVIEW_UID: Final = "building-directory-overview"

#: Where runbook links point unless told otherwise: the runbooks' folder in
#: this repository, relative. Pass the address they are served from (a Git
#: host's file view, a wiki) to make the links work from Grafana.
DEFAULT_RUNBOOK_BASE: Final = "alerts/runbooks"

#: Every panel query filters by the two variables the variable bar offers.
JOB_INSTANCE: Final = 'job=~"$job",instance=~"$instance"'

#: Grafana's rate window: at least four scrape intervals, so a rate always
#: spans enough samples whatever the zoom.
RATE_WINDOW: Final = "$__rate_interval"

#: The metric the job and instance variables list their values from.
_VARIABLE_SOURCE: Final = "building_directory_requests_total"

_RATE_UNIT: Final = "ops"
_REQUEST_UNIT: Final = "reqps"
_RATIO_UNIT: Final = "percentunit"
_SECONDS_UNIT: Final = "s"

_DECIMALS_NOTE: Final = (
    " Shown in whole milliseconds below 1 s and whole seconds above, where the "
    "bucket bounds are 1.5 s or more apart: finer digits would be invented."
)

_BUCKET_NOTE: Final = (
    " Quantiles are interpolated between the histogram's bucket bounds ("
    + ", ".join(format_value(bound, "seconds") for bound in LATENCY_BUCKETS)
    + "): only a value at a bound is exact."
    + _DECIMALS_NOTE
)


def runbook_url(base: str, alert_name: str) -> str:
    """Return the address of an alert's runbook: ``<base>/<AlertName>.md``."""
    return f"{base.rstrip('/')}/{alert_name}.md"


def _runbook_links(indicator: Indicator, base: str) -> tuple[Link, ...]:
    if indicator.alert is None:
        return ()
    name = indicator.alert.name
    return (Link(f"Runbook: {name}", runbook_url(base, name), indicator.alert.summary),)


def _describe(indicator: Indicator, extra: str = "") -> str:
    """Say what the indicator means, what healthy looks like and what alerts."""
    parts = [indicator.meaning + extra, f"Healthy: {indicator.healthy}"]
    if indicator.target is not None:
        parts.append(f"Load-test target: {indicator.target.describe(indicator.unit)}.")
    if indicator.alert is not None:
        alert = indicator.alert
        parts.append(
            f"Alert {alert.name} ({alert.severity}) when "
            f"{alert.threshold.describe(indicator.unit)} for {alert.for_}; "
            "the panel links its runbook."
        )
    return " ".join(parts)


def _steps(indicator: Indicator) -> tuple[Step, ...]:
    """Colour by the target and the alert threshold.

    Green meets the target, red is past the alert threshold, orange lies
    between: worse than a healthy release, not worth waking anyone for.
    """
    target, alert = indicator.target, indicator.alert
    if target is not None:
        higher_is_better = target.op in (">", ">=")
    elif alert is not None:
        higher_is_better = alert.threshold.op in ("<", "<=")
    else:
        return ()
    if higher_is_better:
        steps = [Step("red")]
        if alert is not None:
            steps.append(Step("orange" if target else "green", alert.threshold.value))
        if target is not None:
            steps.append(Step("green", target.value))
        return tuple(steps)
    steps = [Step("green")]
    if target is not None:
        steps.append(Step("orange", target.value))
    if alert is not None:
        steps.append(Step("red", alert.threshold.value))
    return tuple(steps)


def _indicator_query(indicator: Indicator, legend: str = "") -> Query:
    return Query(indicator.promql(JOB_INSTANCE, RATE_WINDOW), legend=legend)


def _stat(indicator: Indicator, runbook_base: str) -> PanelSpec:
    seconds = indicator.unit == "seconds"
    return PanelSpec(
        kind="stat",
        title=indicator.title,
        description=_describe(indicator, _DECIMALS_NOTE if seconds else ""),
        unit=_SECONDS_UNIT if seconds else _RATIO_UNIT,
        queries=(_indicator_query(indicator),),
        width=6,
        height=5,
        decimals=0 if seconds else 1,
        steps=_steps(indicator),
        no_value="No data",
        links=_runbook_links(indicator, runbook_base),
    )


def _ratio_over_time(indicator: Indicator, runbook_base: str, width: int) -> PanelSpec:
    steps = _steps(indicator)
    return PanelSpec(
        kind="timeseries",
        title=indicator.title,
        description=_describe(indicator),
        unit=_RATIO_UNIT,
        queries=(_indicator_query(indicator, indicator.title),),
        width=width,
        decimals=1,
        steps=steps,
        threshold_style="dashed" if steps else "off",
        min=0,
        max=1,
        links=_runbook_links(indicator, runbook_base),
    )


def _rate_by(
    metric: str,
    by: tuple[str, ...],
    *,
    title: str,
    description: str,
    unit: str = _RATE_UNIT,
    width: int = 12,
    matchers: tuple[Matcher, ...] = (),
) -> PanelSpec:
    """A time series of one counter's per-second rate, split by its labels."""
    selector = Series(metric, matchers).selector(JOB_INSTANCE)
    expr = f"sum by ({', '.join(by)}) (rate({selector}[{RATE_WINDOW}]))"
    legend = " ".join(f"{{{{{label}}}}}" for label in by)
    return PanelSpec(
        kind="timeseries",
        title=title,
        description=description,
        unit=unit,
        queries=(Query(expr, legend=legend),),
        width=width,
    )


def _lookup_histogram() -> Quantile:
    """The p95 indicator's histogram query, to derive other quantiles from."""
    query = LATENCY_P95.query
    if not isinstance(query, Quantile):
        raise TypeError(f"{LATENCY_P95.key} is no longer a histogram quantile")
    return query


def _latency_quantiles(runbook_base: str) -> PanelSpec:
    lookup = _lookup_histogram()
    upstream = dataclasses.replace(
        lookup, matchers=(Matcher("operation", "=", "fetch_building"),)
    )
    queries = [
        Query(
            dataclasses.replace(lookup, quantile=q).promql(
                JOB_INSTANCE, RATE_WINDOW, ()
            ),
            legend=f"p{round(q * 100)} lookup",
        )
        for q in (0.5, 0.95, 0.99)
    ]
    queries.append(
        Query(
            upstream.promql(JOB_INSTANCE, RATE_WINDOW, ()),
            legend="p95 upstream call",
        )
    )
    return PanelSpec(
        kind="timeseries",
        title="Lookup latency quantiles",
        description=(
            "p50, p95 and p99 of building lookups through the cached client, and "
            "p95 of the HTTP calls to the Building Directory behind the misses. "
            "Dashed lines: the 200 ms p95 target and the 1 s p95 alert threshold."
            + _BUCKET_NOTE
            + f" Healthy: {LATENCY_P95.healthy}"
        ),
        unit=_SECONDS_UNIT,
        queries=tuple(queries),
        width=12,
        decimals=0,
        steps=_steps(LATENCY_P95),
        threshold_style="dashed",
        min=0,
        links=_runbook_links(LATENCY_P95, runbook_base),
    )


def _latency_heatmap() -> PanelSpec:
    buckets = _lookup_histogram().buckets.selector(JOB_INSTANCE)
    return PanelSpec(
        kind="heatmap",
        title="Lookup latency distribution",
        description=(
            "How many lookups per second fell in each histogram bucket; each row "
            "is one bucket, labelled by its upper bound. Healthy: the bulk in the "
            "rows up to 50 ms (cache hits) with a thinner band up to 200 ms "
            "(misses served by the Building Directory); anything in the rows "
            "above 1 s is a lookup slower than the alert threshold."
        ),
        unit=_SECONDS_UNIT,
        cell_unit=_REQUEST_UNIT,
        queries=(
            Query(
                f"sum by (le) (rate({buckets}[{RATE_WINDOW}]))",
                legend="{{le}}",
                format="heatmap",
            ),
        ),
        width=12,
    )


def _common_prefix(names: list[str]) -> str:
    prefix = names[0] if names else ""
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def _alert_summaries() -> dict[str, str]:
    """Every alert of the shipped rules, in rule order, with its summary."""
    return {
        rule["alert"]: rule["annotations"]["summary"]
        for group in build_rules(DEFAULT_CONFIG)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def _alert_list() -> PanelSpec:
    names = sorted(alert_names())
    return PanelSpec(
        kind="alertlist",
        title="Firing and pending alerts",
        description=(
            "The Building Directory alerts that are firing or pending, most "
            "severe first, read from the alert rules of the data sources Grafana "
            f"knows. Healthy: empty. The rules: {', '.join(names)}; each has a "
            "runbook in the dashboard links."
        ),
        width=24,
        height=6,
        alert_filter=_common_prefix(names),
    )


def _rows(runbook_base: str) -> tuple[RowSpec, ...]:
    return (
        RowSpec(
            "Targets",
            tuple(_stat(indicator, runbook_base) for indicator in TARGET_INDICATORS),
        ),
        RowSpec("Alerts", (_alert_list(),)),
        RowSpec(
            "Traffic",
            (
                _rate_by(
                    "building_directory_requests_total",
                    ("operation", "status"),
                    title="Requests by operation and status",
                    description=(
                        "Per-second rate of building lookups (get_building, "
                        "whatever served them) and HTTP calls to the Building "
                        "Directory (fetch_building), by outcome. Healthy: "
                        "get_building mostly success, with some not_found; "
                        "fetch_building well below get_building (the cache "
                        "answers the rest); no error or stale."
                    ),
                    unit=_REQUEST_UNIT,
                    width=16,
                ),
                _ratio_over_time(UPSTREAM_AVAILABILITY, runbook_base, width=8),
            ),
        ),
        RowSpec("Latency", (_latency_quantiles(runbook_base), _latency_heatmap())),
        RowSpec(
            "Cache",
            (
                _ratio_over_time(CACHE_HIT_RATE, runbook_base, width=6),
                _rate_by(
                    "building_cache_operations_total",
                    ("operation",),
                    title="Cache operations by kind",
                    description=(
                        "Per-second rate of cache hits, misses, writes (set) and "
                        "Redis errors. Healthy: hits well above misses, sets "
                        "about equal to misses, no errors."
                    ),
                    width=6,
                ),
                _ratio_over_time(CACHE_ERROR_RATE, runbook_base, width=6),
                _rate_by(
                    "building_cache_level_hits_total",
                    ("level",),
                    title="Cache hits by level",
                    description=(
                        "Per-second rate of cache hits by the level that served "
                        "them: near (in-process) or redis. Healthy: both present "
                        "under steady load; redis hits alone mean the near cache "
                        "is off or too small."
                    ),
                    width=6,
                ),
            ),
        ),
        RowSpec(
            "Validation and data quality",
            (
                _ratio_over_time(VALIDATION_SUCCESS_RATE, runbook_base, width=6),
                _rate_by(
                    "building_validations_total",
                    ("result",),
                    title="Validations by result",
                    description=(
                        "Per-second rate of building validations by result. "
                        "Healthy: almost all valid; invalid_not_found and "
                        "invalid_inactive follow what callers send; error means "
                        "the Building Directory could not be asked."
                    ),
                    width=6,
                ),
                _rate_by(
                    "coordinate_extractions_total",
                    ("source", "result"),
                    title="Coordinate extraction by source and result",
                    description=(
                        "Per-second rate of coordinate extractions by the shape "
                        "the coordinates came in (nested, flat, missing) and the "
                        "result. Healthy: success for nested and flat; parse_error "
                        "means the Building Directory sent unreadable values."
                    ),
                    width=6,
                ),
                _rate_by(
                    "building_denormalization_total",
                    ("status",),
                    title="Denormalization by outcome",
                    description=(
                        "Per-second rate of buildings merged into requests, by "
                        "outcome. Healthy: success only; any failure is a request "
                        "created without its building's fields."
                    ),
                    width=6,
                ),
            ),
        ),
        RowSpec(
            "Errors",
            (
                _rate_by(
                    "building_directory_errors_total",
                    ("error_type",),
                    title="Errors by type",
                    description=(
                        "Per-second rate of Building Directory failures: timeout, "
                        "http_error (an unexpected status), parse_error (a body "
                        "that is not a building) and unknown. Healthy: none."
                    ),
                ),
                _ratio_over_time(ERROR_RATE, runbook_base, width=12),
            ),
        ),
        RowSpec(
            "Saturation",
            (
                PanelSpec(
                    kind="timeseries",
                    title="Active upstream connections",
                    description=(
                        "HTTP calls to the Building Directory in flight, per "
                        "instance. Healthy: a few at most, well below the "
                        "client's connection pool size; a plateau at the pool "
                        "size means lookups queue for a connection."
                    ),
                    unit="short",
                    queries=(
                        Query(
                            "sum by (instance) ("
                            + Series("building_directory_active_connections").selector(
                                JOB_INSTANCE
                            )
                            + ")",
                            legend="{{instance}}",
                        ),
                    ),
                    width=24,
                    decimals=0,
                    min=0,
                ),
            ),
        ),
    )


def firing_alerts_expr() -> str:
    """PromQL selecting the bundle's firing alerts of the chosen jobs.

    Every alert of the shipped rules keeps the ``job`` label (the rules
    aggregate by it), so the annotation follows the dashboard's job variable.
    """
    names = sorted(alert_names())
    return f'ALERTS{{alertstate="firing",alertname=~"{"|".join(names)}",job=~"$job"}}'


def overview(*, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> DashboardSpec:
    """Describe the overview dashboard.

    Args:
        runbook_base: Where the runbooks are, without the trailing slash; each
            link is ``<runbook_base>/<AlertName>.md``.
    """
    runbooks = tuple(
        Link(f"Runbook: {name}", runbook_url(runbook_base, name), summary)
        for name, summary in _alert_summaries().items()
    )
    return DashboardSpec(
        uid=OVERVIEW_UID,
        title="Building Directory overview",
        description=(
            "The cached Building Directory client: targets, alerts, traffic, "
            "latency, cache, data quality, errors and saturation."
        ),
        tags=("building-directory",),
        rows=_rows(runbook_base),
        variables=(
            Variable("datasource", "Data source", "datasource", "prometheus"),
            Variable(
                "job",
                "Job",
                "query",
                f"label_values({_VARIABLE_SOURCE}, job)",
                multi=True,
                include_all=True,
                all_value=".+",
            ),
            Variable(
                "instance",
                "Instance",
                "query",
                f'label_values({_VARIABLE_SOURCE}{{job=~"$job"}}, instance)',
                multi=True,
                include_all=True,
                all_value=".+",
            ),
        ),
        links=runbooks,
        annotations=(
            Annotation(
                name="Firing alerts",
                expr=firing_alerts_expr(),
                title="{{alertname}}",
                text="{{severity}} alert firing",
                tag_keys=("alertname", "severity"),
            ),
        ),
    )
