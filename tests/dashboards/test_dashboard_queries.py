"""Every PromQL expression parses, and a real Prometheus answers it with data."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import (
    DEFAULT_VARIABLES,
    Expression,
    PrometheusQueryError,
    check_promql,
    expressions,
    query_all,
    substitute,
)
from instrumentation.indicators import ERROR_RATE
from loadtests.servers import free_port


def test_expressions_collects_panels_annotations_and_variables(
    overview_json: dict[str, Any],
) -> None:
    """Every target, the ALERTS annotation and both label_values variables."""
    targets = [t for p in overview_json["panels"] for t in p.get("targets", [])]

    found = expressions(overview_json)

    assert len(found) == len(targets) + 1 + 2
    assert found[0] == Expression(
        "variable 'job'", "count by (job) (building_directory_requests_total)"
    )
    assert found[2].where == "annotation 'Firing alerts'"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        pytest.param("x[$__rate_interval]", "x[1m]", id="builtin"),
        pytest.param('x{job=~"$job"}', 'x{job=~".+"}', id="plain"),
        pytest.param('x{job=~"${job}"}', 'x{job=~".+"}', id="braced"),
        pytest.param('x{job=~"${job:regex}"}', 'x{job=~".+"}', id="formatted"),
        pytest.param('x{a="$other"}', 'x{a="$other"}', id="unknown-kept"),
    ],
)
def test_substitute_replaces_dashboard_variables(expr: str, expected: str) -> None:
    """Variables become their values the way Grafana writes them into queries."""
    assert substitute(expr, DEFAULT_VARIABLES) == expected


def test_promtool_parses_every_expression(overview_json: dict[str, Any]) -> None:
    """promtool accepts every expression once the variables are substituted."""
    assert check_promql(expressions(overview_json)) == []


def test_promtool_names_the_expression_that_does_not_parse() -> None:
    """Only the broken expression is reported, with promtool's reason."""
    found = [
        Expression("good", 'sum(rate(x{job=~"$job"}[$__rate_interval]))'),
        Expression("broken", "sum(rate(x[$__rate_interval])"),
        Expression("unknown", 'x{a=~"$nowhere"}'),
    ]

    problems = check_promql(found)

    assert [(p.where, p.rule) for p in problems] == [
        ("unknown", "promql-parse"),
        ("broken", "promql-parse"),
    ]
    assert "parse error" in problems[1].message


@pytest.mark.slow
def test_every_query_returns_data_from_a_real_prometheus(
    scraped_prometheus: str,
    overview_json: dict[str, Any],
    short_run_variables: dict[str, str],
) -> None:
    """Scraping live metrics, Prometheus answers every expression with series."""
    problems = query_all(scraped_prometheus, overview_json, short_run_variables)

    assert problems == []


@pytest.mark.slow
def test_query_all_reports_rejected_and_empty_queries(
    scraped_prometheus: str, short_run_variables: dict[str, str]
) -> None:
    """A query Prometheus rejects and one with no series are each reported."""
    dashboard = {
        "panels": [
            {
                "id": 1,
                "title": "t",
                "targets": [
                    {
                        "refId": "A",
                        "expr": "sum(rate(no_such_metric[$__rate_interval]))",
                    },
                    {"refId": "B", "expr": "rate(up)"},
                    {"refId": "C", "expr": "up"},
                ],
            }
        ]
    }

    problems = query_all(scraped_prometheus, dashboard, short_run_variables)

    assert [(p.rule, p.where) for p in problems] == [
        ("prometheus-no-data", "panel 1 't' query A"),
        ("prometheus-query", "panel 1 't' query B"),
    ]


@pytest.mark.slow
def test_query_all_allows_named_expressions_to_be_empty(
    scraped_prometheus: str,
) -> None:
    """An expression listed in allow_empty may return nothing."""
    dashboard = {
        "annotations": {"list": [{"name": "Deploys", "expr": "no_such_metric"}]}
    }

    problems = query_all(scraped_prometheus, dashboard, allow_empty=["Deploys"])

    assert problems == []


def test_query_all_raises_when_prometheus_cannot_be_reached(
    overview_json: dict[str, Any],
) -> None:
    """No server is a failure of the check, not a finding about the dashboard."""
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(PrometheusQueryError, match="cannot query"):
        query_all(url, overview_json, timeout=1.0)


def test_error_rate_panel_shows_zero_while_lookups_succeed(tmp_path: Path) -> None:
    """With lookups and no errors, the error-rate query returns 0, not nothing."""
    expr = substitute(ERROR_RATE.promql('job=~"$job",instance=~"$instance"', "5m"))
    series = (
        "building_directory_requests_total"
        '{{operation="get_building",status="{}",job="a",instance="i"}}'
    )
    (tmp_path / "rules.yml").write_text("groups: []\n")
    test = {
        "rule_files": ["rules.yml"],
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series.format("success"), "values": "0+60x10"},
                    {"series": series.format("error"), "values": "0+0x10"},
                ],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "{}", "value": 0}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))

    result = subprocess.run(
        ["promtool", "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
