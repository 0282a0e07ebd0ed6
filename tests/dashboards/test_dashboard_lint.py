"""The linter reports each kind of mistake it is meant to catch."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards import lint, render
from dashboards.spec import DashboardSpec, PanelSpec, Query, RowSpec, Variable


def _rules(dashboard: dict[str, Any]) -> set[str]:
    return {problem.rule for problem in lint(dashboard)}


def _first_data_panel(dashboard: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in dashboard["panels"] if p["type"] == "timeseries")


def _spec_with(panel: PanelSpec) -> DashboardSpec:
    variables = (
        Variable("datasource", "Data source", "datasource", "prometheus"),
        *(
            Variable(
                name,
                name.title(),
                "query",
                f"label_values(up, {name})",
                multi=True,
                include_all=True,
                all_value=".+",
            )
            for name in ("job", "instance")
        ),
    )
    return DashboardSpec("spec", "Spec", "d", (RowSpec("Row", (panel,)),), variables)


_GOOD_QUERY = (Query('up{job=~"$job",instance=~"$instance"}'),)


def test_a_well_formed_spec_renders_lint_clean() -> None:
    """The helper spec is clean, so each failure below comes from its one change."""
    panel = PanelSpec("timeseries", "Up", "Healthy: 1.", "short", _GOOD_QUERY)

    assert lint(render(_spec_with(panel))) == []


def test_lint_reports_a_panel_without_unit() -> None:
    """A panel with data but no unit breaks panel-units-rule."""
    panel = PanelSpec("timeseries", "Up", "Healthy: 1.", "", _GOOD_QUERY)

    assert _rules(render(_spec_with(panel))) == {"panel-units-rule"}


def test_lint_reports_an_unknown_unit() -> None:
    """A misspelt unit is as bad as none."""
    panel = PanelSpec("stat", "Up", "Healthy: 1.", "percent_unit", _GOOD_QUERY)

    assert _rules(render(_spec_with(panel))) == {"panel-units-rule"}


@pytest.mark.parametrize(
    ("description", "rule"),
    [
        pytest.param("", "panel-title-description-rule", id="none"),
        pytest.param(
            "Lookups per second.", "panel-healthy-description-rule", id="no-healthy"
        ),
    ],
)
def test_lint_reports_a_description_that_does_not_say_what_healthy_is(
    description: str, rule: str
) -> None:
    """Every panel says what healthy looks like."""
    panel = PanelSpec("timeseries", "Up", description, "short", _GOOD_QUERY)

    assert _rules(render(_spec_with(panel))) == {rule}


def test_lint_reports_a_hard_coded_datasource_uid(
    overview_copy: dict[str, Any],
) -> None:
    """A panel pinned to one data source by uid breaks two rules."""
    _first_data_panel(overview_copy)["datasource"] = {
        "type": "prometheus",
        "uid": "P1809F7CD0C75ACF3",
    }

    problems = lint(overview_copy)

    assert {p.rule for p in problems} == {
        "datasource-hardcoded-rule",
        "panel-datasource-rule",
    }
    assert any("P1809F7CD0C75ACF3" in p.message for p in problems)


def test_lint_reports_a_datasource_given_by_name(overview_copy: dict[str, Any]) -> None:
    """A string data source (grafanalib's plain form) is not a reference."""
    panel = _first_data_panel(overview_copy)
    panel["targets"][0]["datasource"] = "Prometheus"

    assert _rules(overview_copy) == {
        "datasource-hardcoded-rule",
        "target-datasource-rule",
    }


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("sum(rate(x_total[$__rate_interval]))", id="no-matchers"),
        pytest.param(
            'sum(rate(x_total{job=~"$job"}[$__rate_interval]))', id="no-instance"
        ),
        pytest.param(
            'sum(rate(x_total{job="api",instance=~"$instance"}[$__rate_interval]))',
            id="fixed-job",
        ),
        pytest.param(
            'x{job=~"$job",instance=~"$instance"} / ignoring(a) y',
            id="bare-second-operand",
        ),
    ],
)
def test_lint_reports_selectors_without_job_and_instance_variables(
    overview_copy: dict[str, Any], expr: str
) -> None:
    """Every selector filters by $job and $instance."""
    _first_data_panel(overview_copy)["targets"][0]["expr"] = expr

    assert _rules(overview_copy) == {"target-job-instance-rule"}


def test_lint_reports_a_fixed_rate_window(overview_copy: dict[str, Any]) -> None:
    """rate() over [5m] instead of [$__rate_interval] is reported."""
    _first_data_panel(overview_copy)["targets"][0]["expr"] = (
        'sum(rate(x_total{job=~"$job",instance=~"$instance"}[5m]))'
    )

    assert _rules(overview_copy) == {"target-rate-interval-rule"}


def test_lint_ignores_braces_inside_strings(overview_copy: dict[str, Any]) -> None:
    """A regex with braces in a label value is not a selector."""
    _first_data_panel(overview_copy)["targets"][0]["expr"] = (
        'x{job=~"$job",instance=~"$instance",code=~"5[0-9]{2}"}'
    )

    assert lint(overview_copy) == []


@pytest.mark.parametrize(
    ("name", "change", "rule"),
    [
        pytest.param(
            "job", {"allValue": ".*"}, "template-job-rule", id="job-all-value"
        ),
        pytest.param(
            "instance", {"multi": False}, "template-instance-rule", id="instance-single"
        ),
        pytest.param(
            "job", {"refresh": 1}, "template-on-time-change-reload-rule", id="refresh"
        ),
        pytest.param(
            "datasource", {"query": "loki"}, "template-datasource-rule", id="loki"
        ),
    ],
)
def test_lint_reports_variables_unlike_the_linter_s_conventions(
    overview_copy: dict[str, Any], name: str, change: dict[str, Any], rule: str
) -> None:
    """Variables follow Grafana's dashboard-linter conventions."""
    [variable] = [v for v in overview_copy["templating"]["list"] if v["name"] == name]
    variable.update(change)

    assert _rules(overview_copy) == {rule}


def test_lint_reports_a_missing_job_variable(overview_copy: dict[str, Any]) -> None:
    """Without a job variable the dashboard cannot be filtered by job."""
    overview_copy["templating"]["list"] = [
        v for v in overview_copy["templating"]["list"] if v["name"] != "job"
    ]

    assert _rules(overview_copy) == {"template-job-rule"}


def test_lint_reports_legacy_keys_and_schema(overview_copy: dict[str, Any]) -> None:
    """grafanalib's raw schema and keys are what Grafana 12 refuses to migrate."""
    overview_copy.update(rows=[], style="dark", schemaVersion=12)

    problems = [p for p in lint(overview_copy) if p.rule == "dashboard-legacy-rule"]

    assert len(problems) == 2


def test_lint_reports_overlapping_panels(overview_copy: dict[str, Any]) -> None:
    """Two panels in the same grid cells are reported."""
    panels = [p for p in overview_copy["panels"] if p["type"] == "timeseries"]
    panels[1]["gridPos"] = dict(panels[0]["gridPos"])

    assert _rules(overview_copy) == {"panel-layout-rule"}
