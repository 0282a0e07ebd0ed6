"""The generated rule file and PrometheusRule: content, guards, determinism."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import (
    BURN_FAST,
    BURN_SLOW,
    DEFAULT_CONFIG,
    DEMO_CONFIG,
    METRICS_ABSENT,
    PROMETHEUS_RULE_FILENAME,
    RULES_FILENAME,
    TARGET_DOWN,
    AlertOverride,
    PrometheusRuleMeta,
    RuleConfig,
    alert_names,
    build,
    build_prometheus_rule,
    build_rules,
    group_names,
    record_name,
    render_prometheus_rule,
    render_rules,
)
from instrumentation.indicators import ERROR_RATE, INDICATORS, Ratio

_RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
_INDICATOR_ALERTS = [i.alert.name for i in INDICATORS if i.alert is not None]


def _rules(content: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for g in content["groups"] for r in g["rules"] if kind in r]


def test_every_indicator_has_a_recording_rule_named_level_metric_operations(
    default_rules: dict[str, Any],
) -> None:
    """Each catalogue indicator is recorded under its catalogue name."""
    records = [rule["record"] for rule in _rules(default_rules, "record")]

    assert {i.record for i in INDICATORS} <= set(records)
    assert all(_RECORD_NAME.match(name) for name in records)
    assert len(records) == len(set(records))


@pytest.mark.parametrize(
    ("name", "comparison", "severity", "for_"),
    [
        pytest.param(
            "BuildingCacheHitRateLow", "< 0.5", "warning", "10m", id="hit-rate"
        ),
        pytest.param(
            "BuildingDirectoryLatencyHigh", "> 1\n", "warning", "10m", id="p95"
        ),
        pytest.param(
            "BuildingDirectoryErrorRateHigh", "> 0.05", "critical", "5m", id="errors"
        ),
        pytest.param(
            "BuildingValidationFailuresHigh", "< 0.9", "warning", "10m", id="valid"
        ),
    ],
)
def test_the_four_spec_alerts_have_their_thresholds_and_severities(
    alerts_by_name: dict[str, dict[str, Any]],
    name: str,
    comparison: str,
    severity: str,
    for_: str,
) -> None:
    """SPEC.md: hit rate < 50 %, p95 > 1 s, errors > 5 %, validations < 90 %."""
    rule = alerts_by_name[name]

    assert comparison in rule["expr"]
    assert rule["labels"] == {"severity": severity}
    assert rule["for"] == for_


def test_every_alert_has_for_summary_description_with_value_and_runbook(
    alerts_by_name: dict[str, dict[str, Any]],
) -> None:
    """Each alert waits a for: and says what, how bad and where to read on."""
    for name, rule in alerts_by_name.items():
        annotations = rule["annotations"]

        assert rule["for"], name
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == f"alerts/runbooks/{name}.md"
    for name in (*_INDICATOR_ALERTS, BURN_FAST, BURN_SLOW):
        assert "{{ $value" in alerts_by_name[name]["annotations"]["description"]


def test_every_indicator_and_burn_alert_requires_minimum_traffic(
    alerts_by_name: dict[str, dict[str, Any]],
) -> None:
    """No indicator alert fires on fewer than min_events events in its window."""
    for name in (*_INDICATOR_ALERTS, BURN_FAST, BURN_SLOW):
        expr = alerts_by_name[name]["expr"]

        assert "and on (job)\nsum by (job) (increase(" in expr, name
        assert expr.endswith(f">= {DEFAULT_CONFIG.min_events}"), name


def test_ratios_divide_by_a_positive_denominator(
    default_rules: dict[str, Any],
) -> None:
    """0/0 gives no series: each ratio divides by '(denominator > 0)'."""
    expressions = {r["record"]: r["expr"] for r in _rules(default_rules, "record")}

    for indicator in INDICATORS:
        if isinstance(indicator.query, Ratio):
            expr = expressions[indicator.record]
            assert "\n/\n(sum by (job) (rate(" in expr, indicator.key
            assert expr.endswith(" > 0)"), indicator.key


def test_no_rule_matches_an_exact_bucket_bound(default_rules: dict[str, Any]) -> None:
    """Bucket labels differ across versions (le="1" or "1.0"): never matched."""
    text = yaml.safe_dump(default_rules)

    assert "le=" not in text


def test_every_selector_names_the_configured_job(default_rules: dict[str, Any]) -> None:
    """Each metric selector in every rule carries job="building-directory"."""
    for rule in _rules(default_rules, "expr"):
        selectors = re.findall(r"\b[a-z_:]+\{([^}]*)\}", rule["expr"])

        assert selectors, rule
        assert all('job="building-directory"' in s for s in selectors), rule


def test_a_namespace_reaches_every_selector_grouping_and_record_name() -> None:
    """With a namespace, rules select and keep it, and name their level by it."""
    content = build_rules(RuleConfig(namespace="shop"))

    for rule in _rules(content, "expr"):
        selectors = re.findall(r"\b[a-z_:]+\{([^}]*)\}", rule["expr"])
        assert all('namespace="shop"' in s for s in selectors), rule
        assert "sum by (job)" not in rule["expr"], rule
    records = [rule["record"] for rule in _rules(content, "record")]
    assert all(name.startswith("job_namespace:") for name in records)


def test_instance_stays_out_of_the_aggregation_unless_configured() -> None:
    """Ratios lose instance by default and keep it when it is configured."""
    default = render_rules()
    per_instance = render_rules(RuleConfig(aggregation_labels=("job", "instance")))

    assert "by (job)" in default
    assert "by (job, instance)" in per_instance


def test_severity_names_map_into_the_severity_label() -> None:
    """severity_names turns critical/warning into a user's own names."""
    config = RuleConfig(severity_names={"critical": "page", "warning": "ticket"})

    labels = {r["alert"]: r["labels"] for r in _rules(build_rules(config), "alert")}

    assert labels["BuildingDirectoryErrorRateHigh"] == {"severity": "page"}
    assert labels["BuildingCacheHitRateLow"] == {"severity": "ticket"}


def test_extra_labels_join_every_alert() -> None:
    """extra_labels are added to each alert beside the severity."""
    config = RuleConfig(extra_labels={"team": "search"})

    for rule in _rules(build_rules(config), "alert"):
        assert rule["labels"]["team"] == "search"


def test_an_overridden_threshold_changes_the_expression_and_the_texts() -> None:
    """A new threshold shows in expr, summary and description, not the old one."""
    config = RuleConfig(
        alerts={"BuildingCacheHitRateLow": AlertOverride(threshold=0.4, for_="15m")}
    )

    rule = {r["alert"]: r for r in _rules(build_rules(config), "alert")}[
        "BuildingCacheHitRateLow"
    ]

    assert "< 0.4\n" in rule["expr"]
    assert rule["for"] == "15m"
    assert rule["annotations"]["summary"] == "Cache hit rate is below 40 %"
    assert "< 40 % for 15m" in rule["annotations"]["description"]


def test_burn_rate_alerts_use_both_windows_and_the_budget(
    alerts_by_name: dict[str, dict[str, Any]],
) -> None:
    """Fast: 14.4 × 1 % over 1h and 5m; slow: 6 × 1 % over 6h and 30m."""
    fast = alerts_by_name[BURN_FAST]["expr"]
    slow = alerts_by_name[BURN_SLOW]["expr"]

    assert "ratio_rate1h{" in fast
    assert "ratio_rate5m{" in fast
    assert fast.count("> (14.4 * 0.01)") == 2
    assert "ratio_rate6h{" in slow
    assert "ratio_rate30m{" in slow
    assert slow.count("> (6 * 0.01)") == 2


@pytest.mark.parametrize(
    "config",
    [pytest.param(DEFAULT_CONFIG, id="default"), pytest.param(DEMO_CONFIG, id="demo")],
)
def test_every_window_an_alert_reads_is_recorded(config: RuleConfig) -> None:
    """Each recorded series an alert selects has a recording rule."""
    content = build_rules(config)

    records = {rule["record"] for rule in _rules(content, "record")}
    for rule in _rules(content, "alert"):
        used = set(re.findall(r"\b([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)\{", rule["expr"]))
        assert used <= records, rule["alert"]


def test_demo_profile_records_at_its_short_windows() -> None:
    """The demo records the error ratio at 30s, 1m, 2m and 10m."""
    records = {r["record"] for r in _rules(build_rules(DEMO_CONFIG), "record")}

    for window in ("30s", "1m", "2m", "10m"):
        assert record_name(ERROR_RATE, window, ("job",)) in records


def test_availability_alerts_keep_the_labels_an_operator_needs(
    alerts_by_name: dict[str, dict[str, Any]],
) -> None:
    """Target down keeps up's labels; metrics absent uses exact matchers only."""
    down = alerts_by_name[TARGET_DOWN]["expr"]
    absent = alerts_by_name[METRICS_ABSENT]["expr"]

    assert down == 'up{job="building-directory"} == 0'
    assert 'absent(up{job="building-directory"})' in absent
    assert "=~" not in absent
    assert "unless on (job, instance) building_directory_requests_total" in absent


def test_rendering_twice_gives_the_same_bytes() -> None:
    """The same configuration always renders byte-identical files."""
    assert render_rules(DEMO_CONFIG) == render_rules(DEMO_CONFIG)
    assert render_prometheus_rule() == render_prometheus_rule()


def test_two_builds_write_byte_identical_files(tmp_path: Path) -> None:
    """bdobs alerts build run twice writes the same bytes."""
    first = build(tmp_path / "first")
    second = build(tmp_path / "second")

    assert [p.name for p in first] == [RULES_FILENAME, PROMETHEUS_RULE_FILENAME]
    for one, other in zip(first, second, strict=True):
        assert one.read_bytes() == other.read_bytes()


def test_override_order_does_not_change_the_output() -> None:
    """Overrides given in another order render the same file."""
    first = {
        "BuildingCacheHitRateLow": AlertOverride(for_="20m"),
        TARGET_DOWN: AlertOverride(for_="1m"),
    }
    second = dict(reversed(first.items()))

    assert render_rules(RuleConfig(alerts=first)) == render_rules(
        RuleConfig(alerts=second)
    )


def test_rule_file_parses_back_to_what_was_built(default_rules_text: str) -> None:
    """The YAML text holds exactly the built groups, in order."""
    assert yaml.safe_load(default_rules_text) == build_rules()
    assert group_names() == [
        "building-directory.recording",
        "building-directory.alerts",
    ]


def test_prometheus_rule_wraps_the_same_groups_with_configured_metadata() -> None:
    """The PrometheusRule carries the configured name, namespace and labels."""
    config = RuleConfig(
        prometheus_rule=PrometheusRuleMeta(
            name="bd-rules", namespace="observability", labels={"release": "kps"}
        )
    )

    resource = yaml.safe_load(render_prometheus_rule(config))

    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"] == {
        "name": "bd-rules",
        "namespace": "observability",
        "labels": {"release": "kps"},
    }
    assert resource["spec"] == build_rules(config)
    assert build_prometheus_rule(config) == resource


def test_alert_names_lists_every_alert_once() -> None:
    """Five indicator alerts, two burn-rate alerts and two availability alerts."""
    names = alert_names()

    assert names == [
        *_INDICATOR_ALERTS,
        BURN_FAST,
        BURN_SLOW,
        TARGET_DOWN,
        METRICS_ABSENT,
    ]
    assert len(names) == len(set(names)) == 9


def test_an_https_runbook_base_makes_absolute_links() -> None:
    """runbook_base is joined with one slash, whatever its trailing slash."""
    config = RuleConfig(runbook_base="https://git.example.org/ops/runbooks/")

    urls = {
        r["annotations"]["runbook_url"] for r in _rules(build_rules(config), "alert")
    }

    assert "https://git.example.org/ops/runbooks/BuildingCacheDegraded.md" in urls
