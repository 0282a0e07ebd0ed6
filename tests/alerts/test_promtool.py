"""The promtool wrapper and the promtool unit tests shipped in alerts/tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import (
    DEMO_CONFIG,
    RULES_FILENAME,
    UNIT_TESTS_DIR,
    CheckFailedError,
    RuleConfig,
    ToolMissingError,
    alert_names,
    build,
    build_rules,
    check_rules,
    find_tool,
    render_prometheus_rule,
    render_rules,
    test_rules,
)

_CASES = ("firing", "healthy", "zero traffic", "low traffic")


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(RuleConfig(), id="default"),
        pytest.param(DEMO_CONFIG, id="demo"),
        pytest.param(
            RuleConfig(namespace="shop", severity_names={"critical": "page"}),
            id="namespaced",
        ),
    ],
)
def test_generated_rule_files_pass_promtool_check(
    config: RuleConfig, tmp_path: Path
) -> None:
    """promtool accepts the rule file of every shipped or tuned configuration."""
    rules, _ = build(tmp_path, config)

    check_rules(rules)


def test_prometheus_rule_groups_pass_promtool_check(tmp_path: Path) -> None:
    """The PrometheusRule's spec is a valid rule file on its own."""
    resource = yaml.safe_load(render_prometheus_rule())
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(resource["spec"]))

    check_rules(path)


def test_check_rules_reports_each_problem_with_its_file(
    tmp_path: Path, broken_rules_text: str
) -> None:
    """A rule that does not parse raises CheckFailedError naming file and rule."""
    good = tmp_path / "good.yml"
    good.write_text(render_rules())
    broken = tmp_path / "broken.yml"
    broken.write_text(broken_rules_text)

    with pytest.raises(CheckFailedError) as raised:
        check_rules(good, broken)

    assert raised.value.command == "promtool check rules"
    assert len(raised.value.messages) == 1
    assert str(broken) in raised.value.messages[0]
    assert "could not parse expression" in raised.value.messages[0]


def test_shipped_unit_tests_pass_against_the_default_rules(unit_test_dir: Path) -> None:
    """Every promtool unit test passes against a fresh default build."""
    (unit_test_dir / RULES_FILENAME).write_text(render_rules())

    test_rules(*sorted(unit_test_dir.glob("*.test.yml")))


@pytest.mark.parametrize(
    ("config", "failing_case", "count"),
    [
        pytest.param(RuleConfig(min_events=1), "low traffic", 7, id="no-traffic-guard"),
        pytest.param(
            RuleConfig(severity_names={"warning": "ticket"}),
            "firing",
            8,
            id="other-severity-names",
        ),
    ],
)
def test_unit_tests_catch_rules_that_drift(
    unit_test_dir: Path, config: RuleConfig, failing_case: str, count: int
) -> None:
    """Rules without the traffic guard, or with other labels, fail the tests.

    Seven alerts have a low-traffic case that a guard of 1 event lets fire;
    the warning alerts have eight firing cases between them.
    """
    rules = render_rules(config)
    (unit_test_dir / RULES_FILENAME).write_text(rules)
    files = sorted(unit_test_dir.glob("*.test.yml"))

    with pytest.raises(CheckFailedError) as raised:
        test_rules(*files)

    failed_cases = [m for m in raised.value.messages if f"name: {failing_case}" in m]
    assert len(failed_cases) == count
    assert len(raised.value.messages) == count


def _unit_tests(alert: str) -> dict[str, Any]:
    path = UNIT_TESTS_DIR / f"{alert}.test.yml"
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.mark.parametrize("alert", alert_names())
def test_every_alert_has_firing_healthy_zero_and_low_traffic_cases(alert: str) -> None:
    """Each alert's unit-test file covers the four cases and only that alert."""
    tests = _unit_tests(alert)["tests"]

    names = [group["name"] for group in tests]
    assert all(any(n.startswith(f"{case}:") for n in names) for case in _CASES)
    checks = [c for group in tests for c in group.get("alert_rule_test", [])]
    assert {check["alertname"] for check in checks} == {alert}
    for group in tests:
        assert group.get("alert_rule_test"), group["name"]


@pytest.mark.parametrize("alert", alert_names())
def test_every_firing_case_asserts_labels_and_all_annotations(alert: str) -> None:
    """A firing case expects the severity, the job and the three annotations."""
    rule = next(
        r
        for g in build_rules()["groups"]
        for r in g["rules"]
        if r.get("alert") == alert
    )
    firing = [g for g in _unit_tests(alert)["tests"] if g["name"].startswith("firing")]

    expected = [
        e for g in firing for c in g["alert_rule_test"] for e in c["exp_alerts"]
    ]
    assert expected
    for alert_case in expected:
        assert alert_case["exp_labels"]["severity"] == rule["labels"]["severity"]
        assert alert_case["exp_labels"]["job"] == "building-directory"
        assert set(alert_case["exp_annotations"]) == {
            "summary",
            "description",
            "runbook_url",
        }


def test_missing_promtool_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without promtool on PATH the error says which package to install."""
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(ToolMissingError, match="'prometheus'"):
        find_tool("promtool")
    with pytest.raises(ToolMissingError, match="'prometheus-alertmanager'"):
        find_tool("amtool")
