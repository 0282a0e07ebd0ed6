"""The overview dashboard: built from the catalogue, complete for a person on call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts import alert_names
from dashboards import overview, render, runbook_url
from dashboards.overview import JOB_INSTANCE, RATE_WINDOW
from instrumentation.indicators import (
    INDICATORS,
    LATENCY_P95,
    TARGET_INDICATORS,
    Indicator,
)

RUNBOOKS = Path(__file__).resolve().parents[2] / "alerts" / "runbooks"


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _by_title(
    dashboard: dict[str, Any], title: str, kind: str | None = None
) -> dict[str, Any]:
    [panel] = [
        p
        for p in _panels(dashboard)
        if p["title"] == title and kind in (None, p["type"])
    ]
    return panel


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [target["expr"] for target in panel.get("targets", [])]


def test_first_row_holds_a_stat_per_target_indicator(
    overview_json: dict[str, Any],
) -> None:
    """The four target indicators open the dashboard, in catalogue order."""
    first_row_y = overview_json["panels"][0]["gridPos"]["y"] + 1

    stats = [p for p in _panels(overview_json) if p["gridPos"]["y"] == first_row_y]

    assert [p["type"] for p in stats] == ["stat"] * 4
    assert [p["title"] for p in stats] == [i.title for i in TARGET_INDICATORS]


@pytest.mark.parametrize(
    "indicator", [pytest.param(i, id=i.key) for i in TARGET_INDICATORS]
)
def test_stat_is_coloured_by_target_and_alert_threshold(
    overview_json: dict[str, Any], indicator: Indicator
) -> None:
    """Green meets the target, red is past the alert threshold, orange between."""
    assert indicator.target is not None
    assert indicator.alert is not None
    panel = _by_title(overview_json, indicator.title, "stat")

    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]

    target, alert = indicator.target.value, indicator.alert.threshold.value
    if indicator.target.op in (">", ">="):
        expected = [("red", None), ("orange", alert), ("green", target)]
    else:
        expected = [("green", None), ("orange", target), ("red", alert)]
    assert [(step["color"], step["value"]) for step in steps] == expected
    assert panel["fieldConfig"]["defaults"]["color"] == {"mode": "thresholds"}


@pytest.mark.parametrize("indicator", [pytest.param(i, id=i.key) for i in INDICATORS])
def test_every_indicator_query_is_the_catalogue_s_own(
    overview_json: dict[str, Any], indicator: Indicator
) -> None:
    """Panels show the catalogue's PromQL verbatim: defined once, shown as is."""
    expected = indicator.promql(JOB_INSTANCE, RATE_WINDOW)

    titles = [p["title"] for p in _panels(overview_json) if expected in _exprs(p)]

    assert indicator.title in titles


def test_latency_quantiles_draw_the_target_and_alert_lines(
    overview_json: dict[str, Any],
) -> None:
    """p50/p95/p99 with dashed lines at the 200 ms target and the 1 s alert."""
    panel = _by_title(overview_json, "Lookup latency quantiles")

    defaults = panel["fieldConfig"]["defaults"]

    assert [t["legendFormat"] for t in panel["targets"]][:3] == [
        "p50 lookup",
        "p95 lookup",
        "p99 lookup",
    ]
    assert LATENCY_P95.promql(JOB_INSTANCE, RATE_WINDOW) in _exprs(panel)
    assert [s["value"] for s in defaults["thresholds"]["steps"]] == [None, 0.2, 1.0]
    assert defaults["custom"]["thresholdsStyle"] == {"mode": "dashed"}
    assert defaults["unit"] == "s"


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        pytest.param("Lookup latency quantiles", "timeseries", id="quantiles"),
        pytest.param("p95 lookup latency", "stat", id="p95-stat"),
    ],
)
def test_latency_panels_admit_the_bucket_precision(
    overview_json: dict[str, Any], title: str, kind: str
) -> None:
    """Latency panels show whole units and say the values are interpolated."""
    panel = _by_title(overview_json, title, kind)

    assert panel["fieldConfig"]["defaults"]["decimals"] == 0
    assert "interpolated" in panel["description"].lower()
    assert "0.2" in panel["description"] or "200 ms" in panel["description"]


def test_latency_heatmap_reads_prometheus_buckets_as_they_are(
    overview_json: dict[str, Any],
) -> None:
    """The current heatmap panel, not recalculated, fed by summed bucket rates."""
    panel = _by_title(overview_json, "Lookup latency distribution")

    [target] = panel["targets"]

    assert panel["type"] == "heatmap"
    assert panel["options"]["calculate"] is False
    assert panel["options"]["yAxis"]["unit"] == "s"
    assert target["format"] == "heatmap"
    assert target["expr"].startswith("sum by (le) (rate(")
    assert "building_directory_request_duration_seconds_bucket{" in target["expr"]


@pytest.mark.parametrize(
    "base",
    [
        pytest.param("alerts/runbooks", id="default-relative"),
        pytest.param(
            "https://git.example.org/bundle/blob/main/alerts/runbooks/", id="host"
        ),
    ],
)
def test_every_alert_has_a_runbook_link_under_the_base(base: str) -> None:
    """Dashboard links lead to <base>/<AlertName>.md for every alert of the rules,
    and each runbook they name is one the project ships."""
    dashboard = render(overview(runbook_base=base))

    urls = {link["url"] for link in dashboard["links"]}

    names = alert_names()
    assert len(names) == 9
    assert urls == {f"{base.rstrip('/')}/{name}.md" for name in names}
    assert all((RUNBOOKS / f"{name}.md").is_file() for name in names)


def test_indicator_panels_link_their_alert_s_runbook(
    overview_json: dict[str, Any],
) -> None:
    """A panel of an alerting indicator links the runbook of that alert."""
    for indicator in INDICATORS:
        if indicator.alert is None:
            continue
        url = runbook_url("alerts/runbooks", indicator.alert.name)

        panels = [p for p in _panels(overview_json) if p["title"] == indicator.title]

        assert panels
        assert all(url in [link["url"] for link in p["links"]] for p in panels)


def test_firing_alerts_show_as_a_list_and_as_annotations(
    overview_json: dict[str, Any],
) -> None:
    """An alert-list panel near the top, and an annotation on ALERTS."""
    [alert_list] = [p for p in _panels(overview_json) if p["type"] == "alertlist"]
    [annotation] = [a for a in overview_json["annotations"]["list"] if "expr" in a]

    assert alert_list["options"]["stateFilter"]["firing"] is True
    assert all(
        i.alert.name.startswith(alert_list["options"]["alertName"])
        for i in INDICATORS
        if i.alert is not None
    )
    assert annotation["expr"].startswith('ALERTS{alertstate="firing"')
    assert annotation["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_rows_cover_every_concern_of_the_issue(overview_json: dict[str, Any]) -> None:
    """Targets, alerts, traffic, latency, cache, data quality, errors, saturation."""
    rows = [p["title"] for p in overview_json["panels"] if p["type"] == "row"]

    assert rows == [
        "Targets",
        "Alerts",
        "Traffic",
        "Latency",
        "Cache",
        "Validation and data quality",
        "Errors",
        "Saturation",
    ]


@pytest.mark.parametrize(
    ("title", "labels"),
    [
        pytest.param(
            "Requests by operation and status", "operation, status", id="traffic"
        ),
        pytest.param("Cache operations by kind", "operation", id="cache"),
        pytest.param("Validations by result", "result", id="validations"),
        pytest.param(
            "Coordinate extraction by source and result", "source, result", id="coords"
        ),
        pytest.param("Denormalization by outcome", "status", id="denormalization"),
        pytest.param("Errors by type", "error_type", id="errors"),
    ],
)
def test_breakdown_panels_split_one_counter_by_its_labels(
    overview_json: dict[str, Any], title: str, labels: str
) -> None:
    """Each breakdown sums a counter's rate by the labels it is about."""
    [expr] = _exprs(_by_title(overview_json, title))

    assert expr.startswith(f"sum by ({labels}) (rate(")
    assert expr.endswith("[$__rate_interval]))")
