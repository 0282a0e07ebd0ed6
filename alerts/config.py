"""What a user tunes in the rules without editing code, with documented defaults.

A :class:`RuleConfig` holds the selectors (which ``job`` and ``namespace``),
the labels the rules aggregate by, the rate window, the minimum traffic an
alert needs, each alert's threshold, ``for:`` duration and severity, the
severity names, the runbook address and the ``PrometheusRule`` metadata. It is
a frozen value; ``alerts.load_config`` reads one from YAML, rejecting unknown
keys, and :data:`PROFILES` names the two shipped ones:

- ``default`` keeps production durations: a 5 m rate window, alerts that must
  hold for 5 to 10 minutes, at least 20 events in the window.
- ``demo`` makes the alerts fire within a minute on a stack scraped every few
  seconds: a 1 m window, ``for:`` of 15 to 30 s, at least 5 events.

The defaults of the indicator alerts (threshold, ``for:``, severity) come from
the indicator catalogue, :mod:`instrumentation.indicators`; the defaults of
the other alerts (target down, metrics absent, error-budget burn) are set
here, in :func:`default_alert_settings`.

A configuration file overrides only what it names::

    namespace: shop                # job stays building-directory
    min_events: 50
    severity_names: {critical: page, warning: ticket}
    runbook_base: https://git.example.com/ops/bundle/blob/main/alerts/runbooks
    alerts:
      BuildingCacheHitRateLow: {threshold: 0.4, for: 15m}
      BuildingDirectoryErrorBudgetBurnSlow: {long_window: 3d, short_window: 6h}
    prometheus_rule:
      namespace: monitoring
      labels: {release: kube-prometheus-stack}
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, cast

from alerts.errors import ConfigError
from instrumentation.indicators import ERROR_BUDGET, INDICATORS

Severity = Literal["critical", "warning", "info"]
SEVERITIES: Final[tuple[Severity, ...]] = ("critical", "warning", "info")

#: The alert that fires while Prometheus cannot scrape an instance.
TARGET_DOWN: Final = "BuildingDirectoryTargetDown"
#: The alert that fires while no target, or no client metric, is scraped.
METRICS_ABSENT: Final = "BuildingDirectoryMetricsAbsent"
#: The burn-rate alert that pages: the error budget burns fast.
BURN_FAST: Final = "BuildingDirectoryErrorBudgetBurnFast"
#: The burn-rate alert that opens a ticket: the error budget burns slowly.
BURN_SLOW: Final = "BuildingDirectoryErrorBudgetBurnSlow"
#: The two multi-window, multi-burn-rate alerts.
BURN_ALERTS: Final = (BURN_FAST, BURN_SLOW)

#: Where runbook links point unless told otherwise: the runbooks' folder in
#: this repository, relative (the dashboards use the same default). Set an
#: https address (a Git host's file view, a wiki) to make them clickable.
DEFAULT_RUNBOOK_BASE: Final = "alerts/runbooks"

_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Kubernetes label keys may carry a DNS prefix and dots: app.kubernetes.io/name.
_K8S_LABEL_KEY = re.compile(
    r"^([a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
)
_UNITS_SECONDS: Final = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}


def duration_seconds(duration: str) -> float:
    """Return a Prometheus duration (``1h30m``, ``15s``) in seconds.

    Raises:
        ConfigError: Not a Prometheus duration.
    """
    if not _DURATION.match(duration):
        raise ConfigError(
            f"{duration!r} is not a Prometheus duration such as 30s, 5m or 1h30m"
        )
    return sum(
        int(number) * _UNITS_SECONDS[unit]
        for number, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    )


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """How one alert fires once defaults and overrides are merged.

    Attributes:
        threshold: The limit the indicator is compared with; for a burn-rate
            alert, the burn factor. None for the availability alerts.
        for_: How long the condition must hold before the alert fires.
        severity: ``critical`` pages, ``warning`` opens a ticket (the names
            written into the ``severity`` label can be mapped).
        long_window: A burn-rate alert's long window, else None.
        short_window: A burn-rate alert's short window, else None.
    """

    threshold: float | None
    for_: str
    severity: Severity
    long_window: str | None = None
    short_window: str | None = None


@dataclass(frozen=True, slots=True)
class AlertOverride:
    """What a configuration changes in one alert; None keeps the default.

    In YAML the keys are ``threshold``, ``for``, ``severity`` and, for the
    burn-rate alerts, ``long_window`` and ``short_window``.
    """

    threshold: float | None = None
    for_: str | None = None
    severity: Severity | None = None
    long_window: str | None = None
    short_window: str | None = None

    def apply(self, settings: AlertSettings) -> AlertSettings:
        """Return ``settings`` with this override's values in place."""
        changes = {
            name: value
            for name in ("threshold", "for_", "severity", "long_window", "short_window")
            if (value := getattr(self, name)) is not None
        }
        return dataclasses.replace(settings, **changes)

    def merged(self, other: AlertOverride) -> AlertOverride:
        """Return this override with ``other``'s values on top."""
        changes = {
            name: value
            for name in ("threshold", "for_", "severity", "long_window", "short_window")
            if (value := getattr(other, name)) is not None
        }
        return dataclasses.replace(self, **changes)


def default_alert_settings() -> dict[str, AlertSettings]:
    """Return every alert's default settings, by alert name, in rule order.

    The indicator alerts take theirs from the catalogue. The burn-rate alerts
    follow the multi-window scheme of Google's SRE workbook: 14.4 times the
    budget over 1 h and 5 m pages (2 % of a 30-day budget gone in an hour),
    6 times over 6 h and 30 m opens a ticket (5 % gone in six hours).
    """
    settings = {
        indicator.alert.name: AlertSettings(
            threshold=indicator.alert.threshold.value,
            for_=indicator.alert.for_,
            severity=indicator.alert.severity,
        )
        for indicator in INDICATORS
        if indicator.alert is not None
    }
    settings[BURN_FAST] = AlertSettings(14.4, "2m", "critical", "1h", "5m")
    settings[BURN_SLOW] = AlertSettings(6.0, "15m", "warning", "6h", "30m")
    settings[TARGET_DOWN] = AlertSettings(None, "5m", "critical")
    settings[METRICS_ABSENT] = AlertSettings(None, "10m", "warning")
    return settings


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(sorted(mapping.items())))


@dataclass(frozen=True, slots=True)
class PrometheusRuleMeta:
    """The metadata of the Kubernetes ``PrometheusRule`` resource.

    Attributes:
        name: ``metadata.name``.
        namespace: ``metadata.namespace``.
        labels: ``metadata.labels``; the Prometheus Operator only loads rules
            whose labels match its ``ruleSelector`` (kube-prometheus-stack
            selects ``release: <its Helm release>``), so set them to match.
    """

    name: str = "building-directory"
    namespace: str = "monitoring"
    labels: Mapping[str, str] = field(
        default_factory=lambda: {
            "app.kubernetes.io/name": "building-directory",
            "app.kubernetes.io/component": "alert-rules",
        }
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _freeze(self.labels))
        for key, value in self.labels.items():
            if not _K8S_LABEL_KEY.match(key) or not isinstance(value, str):
                raise ConfigError(
                    f"prometheus_rule.labels: {key!r}: {value!r} is not a "
                    "Kubernetes label (a key such as 'release' and a string value)"
                )
        for name in ("name", "namespace"):
            if not re.match(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", getattr(self, name)):
                raise ConfigError(
                    f"prometheus_rule.{name}: {getattr(self, name)!r} is not a "
                    "Kubernetes object name (lower-case letters, digits, '-', '.')"
                )


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Everything the rules can be tuned by; every field has a default.

    Attributes:
        job: The ``job`` label of the service's scrape target; every selector
            matches it exactly (``absent()`` keeps only exact matchers).
        namespace: When set, every selector also matches this ``namespace``.
        aggregation_labels: The labels recording rules and alerts keep; by
            default ``job``, plus ``namespace`` when set. ``instance`` stays
            out unless listed: an alert per pod pages once per pod.
        window: The rate window of the recording rules and threshold alerts.
        min_events: The fewest events (lookups, cache operations...) in the
            window for an alert to fire: one miss out of one request is not a
            hit rate worth waking anyone for.
        error_budget: The share of lookups allowed to fail; the objective the
            burn-rate alerts protect is ``1 - error_budget`` (99 %).
        severity_names: Maps the severities (critical, warning, info) to the
            values written into the severity label, e.g. ``{critical: page}``.
        severity_label: The label the severity goes into.
        extra_labels: Labels added to every alert, such as ``team: search``.
        runbook_base: Runbook addresses are ``<runbook_base>/<AlertName>.md``.
        group_prefix: The rule groups are ``<prefix>.recording`` and
            ``<prefix>.alerts``.
        evaluation_interval: The groups' ``interval``; Prometheus's global
            evaluation interval when None.
        alerts: Per-alert overrides, by alert name.
        prometheus_rule: The metadata of the ``PrometheusRule`` resource.
    """

    job: str = "building-directory"
    namespace: str | None = None
    aggregation_labels: tuple[str, ...] | None = None
    window: str = "5m"
    min_events: int = 20
    error_budget: float = ERROR_BUDGET
    severity_names: Mapping[str, str] = field(default_factory=dict)
    severity_label: str = "severity"
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    runbook_base: str = DEFAULT_RUNBOOK_BASE
    group_prefix: str = "building-directory"
    evaluation_interval: str | None = None
    alerts: Mapping[str, AlertOverride] = field(default_factory=dict)
    prometheus_rule: PrometheusRuleMeta = field(default_factory=PrometheusRuleMeta)

    def __post_init__(self) -> None:
        for name in ("severity_names", "extra_labels", "alerts"):
            object.__setattr__(self, name, _freeze(getattr(self, name)))
        self._validate()

    @property
    def by(self) -> tuple[str, ...]:
        """The labels the rules aggregate by."""
        if self.aggregation_labels is not None:
            return self.aggregation_labels
        return ("job", "namespace") if self.namespace else ("job",)

    @property
    def selector_labels(self) -> dict[str, str]:
        """The exact matchers every selector carries, by label."""
        labels = {"job": self.job}
        if self.namespace:
            labels["namespace"] = self.namespace
        return labels

    @property
    def objective(self) -> float:
        """The share of lookups that must succeed, ``1 - error_budget``."""
        return 1 - self.error_budget

    def severity_name(self, severity: Severity) -> str:
        """Return the label value written for a severity."""
        return self.severity_names.get(severity, severity)

    def alert_settings(self) -> dict[str, AlertSettings]:
        """Return every alert's settings, defaults and overrides merged."""
        settings = default_alert_settings()
        for name, override in self.alerts.items():
            settings[name] = override.apply(settings[name])
        return settings

    def with_overrides(self, alerts: Mapping[str, AlertOverride]) -> RuleConfig:
        """Return a copy whose alert overrides are merged with ``alerts``."""
        merged = dict(self.alerts)
        for name, override in alerts.items():
            merged[name] = merged.get(name, AlertOverride()).merged(override)
        return dataclasses.replace(self, alerts=merged)

    def _validate(self) -> None:
        for name in ("window", "evaluation_interval"):
            value = getattr(self, name)
            if value is not None:
                _check_window(name, value)
        if not self.job or any(c in self.job for c in '"\\\n'):
            raise ConfigError(
                f"job: {self.job!r} must be a non-empty plain label value"
            )
        if self.namespace is not None and any(c in self.namespace for c in '"\\\n'):
            raise ConfigError(f"namespace: {self.namespace!r} is not a plain value")
        for label in (*self.by, self.severity_label, *self.extra_labels):
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ConfigError(f"{label!r} is not a usable Prometheus label name")
        if not self.by:
            raise ConfigError("aggregation_labels: keep at least 'job'")
        if len(set(self.by)) != len(self.by) or "le" in self.by:
            raise ConfigError(
                f"aggregation_labels {list(self.by)}: each label once, and not "
                "'le' (the histogram rules add it themselves)"
            )
        reserved = sorted(
            set(self.extra_labels) & {self.severity_label, "alertname", *self.by}
        )
        if reserved:
            raise ConfigError(
                f"extra_labels: {reserved} are set by the rules themselves; "
                "use severity_names or the alert's own settings"
            )
        for severity, label_value in self.severity_names.items():
            if not isinstance(label_value, str) or not label_value.strip():
                raise ConfigError(
                    f"severity_names.{severity}: {label_value!r} must be a non-empty "
                    "label value (Prometheus drops empty labels, and routing with them)"
                )
        missing = sorted(set(self.selector_labels) - set(self.by))
        if missing:
            raise ConfigError(
                f"aggregation_labels {list(self.by)} must include {missing}: the "
                "recorded series are selected by them"
            )
        if self.min_events < 1:
            raise ConfigError("min_events must be at least 1")
        if not 0 < self.error_budget < 1:
            raise ConfigError("error_budget must lie strictly between 0 and 1")
        unknown = sorted(set(self.severity_names) - set(SEVERITIES))
        if unknown:
            raise ConfigError(
                f"severity_names: unknown severities {unknown}; known: {SEVERITIES}"
            )
        if not re.match(r"^[A-Za-z0-9_.:-]+$", self.group_prefix):
            raise ConfigError(f"group_prefix: {self.group_prefix!r} is not a name")
        self._validate_alerts()

    def _validate_alerts(self) -> None:
        defaults = default_alert_settings()
        for name, override in self.alerts.items():
            where = f"alerts.{name}"
            if name not in defaults:
                raise ConfigError(f"{where}: unknown alert; known: {sorted(defaults)}")
            if not isinstance(override, AlertOverride):
                raise ConfigError(f"{where}: expected an AlertOverride")
            if override.threshold is not None and defaults[name].threshold is None:
                raise ConfigError(f"{where}: this alert takes no threshold")
            windows = (override.long_window, override.short_window)
            if name not in BURN_ALERTS and any(w is not None for w in windows):
                raise ConfigError(f"{where}: only burn-rate alerts take windows")
            if override.threshold is not None:
                _check_threshold(f"{where}.threshold", name, override.threshold)
            if override.severity is not None and override.severity not in SEVERITIES:
                raise ConfigError(
                    f"{where}.severity: {override.severity!r}; known: {SEVERITIES}"
                )
            if override.for_ is not None:
                _check_duration(f"{where}.for", override.for_)
            for key, value in (
                ("long_window", override.long_window),
                ("short_window", override.short_window),
            ):
                if value is not None:
                    _check_window(f"{where}.{key}", value)
        merged = self.alert_settings()
        for name in BURN_ALERTS:
            settings = merged[name]
            burn = cast(float, settings.threshold)
            if burn * self.error_budget >= 1:
                raise ConfigError(
                    f"alerts.{name}.threshold: a burn rate of {burn:g} with an error "
                    f"budget of {self.error_budget:g} needs more than 100 % of "
                    "lookups to fail, so the alert could never fire"
                )
            long_window = cast(str, settings.long_window)
            short_window = cast(str, settings.short_window)
            if duration_seconds(short_window) >= duration_seconds(long_window):
                raise ConfigError(
                    f"alerts.{name}: short_window {short_window} must be shorter "
                    f"than long_window {long_window}"
                )


def _check_threshold(where: str, alert: str, value: object) -> None:
    """A ratio's threshold lies in 0..1; a latency's or burn rate's is > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    units = {i.alert.name: i.unit for i in INDICATORS if i.alert is not None}
    if units.get(alert) == "ratio":
        if not 0 <= value <= 1:
            raise ConfigError(
                f"{where}: {value} is not a ratio between 0 and 1 (write 0.4 for 40 %)"
            )
    elif value <= 0:
        raise ConfigError(f"{where}: must be > 0, got {value}")


def _check_window(where: str, value: object) -> None:
    """A rate window or interval: a Prometheus duration longer than zero."""
    _check_duration(where, value)
    if duration_seconds(cast(str, value)) <= 0:
        raise ConfigError(f"{where}: {value!r} must be longer than 0")


def _check_duration(where: str, value: object) -> None:
    if not isinstance(value, str) or not _DURATION.match(value):
        raise ConfigError(
            f"{where}: {value!r} is not a Prometheus duration such as 30s, 5m or 1h"
        )


#: The shipped configuration: production windows and durations.
DEFAULT_CONFIG: Final = RuleConfig()

#: Alerts within a minute on a stack scraped every few seconds (the demo):
#: 1 m windows, short ``for:``, 5 events minimum. Needs a scrape interval of
#: 5 s or less, so a 30 s window holds enough samples.
DEMO_CONFIG: Final = RuleConfig(
    window="1m",
    min_events=5,
    alerts={
        **{
            indicator.alert.name: AlertOverride(for_="30s")
            for indicator in INDICATORS
            if indicator.alert is not None
        },
        BURN_FAST: AlertOverride(for_="15s", long_window="2m", short_window="30s"),
        BURN_SLOW: AlertOverride(for_="1m", long_window="10m", short_window="2m"),
        TARGET_DOWN: AlertOverride(for_="15s"),
        METRICS_ABSENT: AlertOverride(for_="30s"),
    },
)

#: The shipped configurations, by name.
PROFILES: Final[Mapping[str, RuleConfig]] = MappingProxyType(
    {"default": DEFAULT_CONFIG, "demo": DEMO_CONFIG}
)
