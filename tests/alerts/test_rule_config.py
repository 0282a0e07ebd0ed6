"""The rule configuration: defaults, YAML files, profiles and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import (
    BURN_FAST,
    DEFAULT_CONFIG,
    DEMO_CONFIG,
    TARGET_DOWN,
    ConfigError,
    RuleConfig,
    config_from_mapping,
    load_config,
    render_config,
    render_rules,
)
from alerts.config import duration_seconds
from instrumentation.indicators import INDICATORS


def test_indicator_alert_defaults_come_from_the_catalogue() -> None:
    """Threshold, for and severity of each indicator alert are the catalogue's."""
    settings = DEFAULT_CONFIG.alert_settings()

    for indicator in INDICATORS:
        if indicator.alert is None:
            continue
        merged = settings[indicator.alert.name]
        assert merged.threshold == indicator.alert.threshold.value
        assert merged.for_ == indicator.alert.for_
        assert merged.severity == indicator.alert.severity


def test_default_selects_the_job_and_aggregates_by_it_alone() -> None:
    """By default the rules select job="building-directory" and keep only job."""
    assert DEFAULT_CONFIG.selector_labels == {"job": "building-directory"}
    assert DEFAULT_CONFIG.by == ("job",)


def test_a_namespace_joins_the_selectors_and_the_aggregation() -> None:
    """Setting a namespace selects it exactly and keeps it in every result."""
    config = RuleConfig(namespace="shop")

    assert config.selector_labels == {"job": "building-directory", "namespace": "shop"}
    assert config.by == ("job", "namespace")


def test_config_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    """Keys left out of the file keep their defaults."""
    path = tmp_path / "rules.yml"
    path.write_text(
        "namespace: shop\n"
        "min_events: 50\n"
        "severity_names: {critical: page}\n"
        "alerts:\n"
        "  BuildingCacheHitRateLow: {threshold: 0.4}\n"
        "prometheus_rule:\n"
        "  labels: {release: kube-prometheus-stack}\n"
    )

    config = load_config(path)

    hit_rate = config.alert_settings()["BuildingCacheHitRateLow"]
    assert (config.namespace, config.min_events) == ("shop", 50)
    assert (hit_rate.threshold, hit_rate.for_) == (0.4, "10m")
    assert config.severity_name("critical") == "page"
    assert config.severity_name("warning") == "warning"
    assert dict(config.prometheus_rule.labels) == {"release": "kube-prometheus-stack"}
    assert config.prometheus_rule.namespace == "monitoring"
    assert config.window == DEFAULT_CONFIG.window


def test_config_file_merges_alert_overrides_with_the_profile(tmp_path: Path) -> None:
    """A file on top of the demo profile keeps the demo's short for:."""
    path = tmp_path / "rules.yml"
    path.write_text("alerts:\n  BuildingCacheHitRateLow: {threshold: 0.3}\n")

    config = load_config(path, base=DEMO_CONFIG)

    hit_rate = config.alert_settings()["BuildingCacheHitRateLow"]
    assert (hit_rate.threshold, hit_rate.for_) == (0.3, "30s")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"jobb": "x"}, "unknown key.*jobb", id="top-level-typo"),
        pytest.param(
            {"alerts": {"BuildingCacheHitRateLow": {"treshold": 0.4}}},
            "unknown key.*alerts.BuildingCacheHitRateLow.treshold",
            id="alert-field-typo",
        ),
        pytest.param(
            {"alerts": {"CacheHitRateLow": {"for": "5m"}}},
            "CacheHitRateLow: unknown alert",
            id="unknown-alert",
        ),
        pytest.param(
            {"prometheus_rule": {"labelz": {}}},
            "unknown key.*prometheus_rule.labelz",
            id="metadata-typo",
        ),
    ],
)
def test_unknown_keys_are_rejected_by_name(data: object, message: str) -> None:
    """A misspelt key is an error naming it, never silently ignored."""
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"min_events": "many"}, "min_events: expected int", id="text"),
        pytest.param({"min_events": True}, "min_events: expected int", id="bool"),
        pytest.param({"min_events": 0}, "at least 1", id="zero-events"),
        pytest.param({"window": "5 minutes"}, "not a Prometheus duration", id="dur"),
        pytest.param({"error_budget": 1.5}, "between 0 and 1", id="budget"),
        pytest.param(
            {"alerts": {TARGET_DOWN: {"threshold": 1}}},
            "takes no threshold",
            id="threshold-on-target-down",
        ),
        pytest.param(
            {"alerts": {"BuildingCacheHitRateLow": {"long_window": "1h"}}},
            "only burn-rate alerts take windows",
            id="window-on-indicator-alert",
        ),
        pytest.param(
            {"alerts": {BURN_FAST: {"short_window": "2h"}}},
            "must be shorter than long_window",
            id="short-not-shorter",
        ),
        pytest.param({"window": "0s"}, "longer than 0", id="zero-window"),
        pytest.param(
            {"alerts": {BURN_FAST: {"long_window": "0m"}}},
            "longer than 0",
            id="zero-burn-window",
        ),
        pytest.param(
            {"alerts": {BURN_FAST: {"threshold": 200}}},
            "could never fire",
            id="burn-rate-above-everything-failing",
        ),
        pytest.param(
            {"severity_names": {"critical": ""}},
            "non-empty label value",
            id="empty-severity-name",
        ),
        pytest.param(
            {"extra_labels": {"severity": "x"}},
            "set by the rules themselves",
            id="extra-label-overrides-severity",
        ),
        pytest.param(
            {"aggregation_labels": ["job", "le"]},
            "not 'le'",
            id="aggregating-by-le",
        ),
        pytest.param(
            {"aggregation_labels": ["job", "job"]},
            "each label once",
            id="aggregating-twice",
        ),
        pytest.param(
            {"alerts": {"BuildingCacheHitRateLow": {"threshold": 5}}},
            "not a ratio between 0 and 1",
            id="hit-rate-threshold-in-percent",
        ),
        pytest.param(
            {"alerts": {"BuildingDirectoryLatencyHigh": {"threshold": -1}}},
            "must be > 0",
            id="negative-latency-threshold",
        ),
        pytest.param(
            {"alerts": {BURN_FAST: {"threshold": float("nan")}}},
            "not a finite number",
            id="nan-burn-rate",
        ),
        pytest.param(
            {"alerts": {TARGET_DOWN: {"severity": "urgent"}}},
            "severity",
            id="unknown-severity",
        ),
        pytest.param(
            {"severity_names": {"fatal": "page"}},
            "unknown severities",
            id="unknown-severity-name",
        ),
        pytest.param(
            {"namespace": "shop", "aggregation_labels": ["job"]},
            "must include \\['namespace'\\]",
            id="namespace-aggregated-away",
        ),
        pytest.param(
            {"prometheus_rule": {"name": "Building Directory"}},
            "Kubernetes object name",
            id="bad-object-name",
        ),
    ],
)
def test_invalid_values_are_rejected_with_a_clear_message(
    data: object, message: str
) -> None:
    """A value of the wrong kind or out of range is a ConfigError saying why."""
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data)


def test_unreadable_yaml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not YAML raises ConfigError naming the file."""
    path = tmp_path / "rules.yml"
    path.write_text("alerts: [unclosed\n")

    with pytest.raises(ConfigError, match=r"rules\.yml"):
        load_config(path)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(DEFAULT_CONFIG, id="default"),
        pytest.param(DEMO_CONFIG, id="demo"),
        pytest.param(RuleConfig(namespace="shop", min_events=7), id="namespaced"),
    ],
)
def test_printed_config_reads_back_to_the_same_rules(
    config: RuleConfig, tmp_path: Path
) -> None:
    """``alerts config`` output, read back with --config, builds the same file."""
    path = tmp_path / "rules.yml"
    path.write_text(render_config(config))

    reread = load_config(path)

    assert render_rules(reread) == render_rules(config)


def test_demo_profile_fires_within_a_minute_and_default_keeps_real_durations() -> None:
    """Demo: every for: at most 1m and a 1m window; default: for: 2m or more."""
    demo = DEMO_CONFIG.alert_settings().values()
    default = DEFAULT_CONFIG.alert_settings().values()

    assert DEMO_CONFIG.window == "1m"
    assert DEMO_CONFIG.min_events < DEFAULT_CONFIG.min_events
    assert max(duration_seconds(s.for_) for s in demo) <= 60
    assert min(duration_seconds(s.for_) for s in default) >= 120
    assert DEFAULT_CONFIG.window == "5m"


def test_configurations_compare_by_value() -> None:
    """Two configurations built from the same values are equal."""
    assert RuleConfig(min_events=5) == RuleConfig(min_events=5)
    assert RuleConfig(min_events=5) != DEFAULT_CONFIG
