"""The build: JSON Grafana 10-12 import, written deterministically with provisioning."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import OVERVIEW_UID, LintError, build, lint, overview, render
from dashboards import generate as generate_module
from dashboards.spec import DashboardSpec, PanelSpec, Query, RowSpec, Variable

_DATA_PANELS = ("stat", "timeseries", "heatmap")


def _walk(value: Any) -> list[Any]:
    found = [value]
    if isinstance(value, dict):
        found += [item for child in value.values() for item in _walk(child)]
    elif isinstance(value, list):
        found += [item for child in value for item in _walk(child)]
    return found


def _data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] in _DATA_PANELS]


def test_rendered_dashboard_passes_every_lint_rule(
    overview_json: dict[str, Any],
) -> None:
    """The generated overview breaks no lint rule."""
    assert lint(overview_json) == []


def test_every_data_panel_has_unit_description_and_datasource_variable(
    overview_json: dict[str, Any],
) -> None:
    """Units, a 'Healthy:' description and $datasource on every panel with data."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}

    for panel in _data_panels(overview_json):
        unit = (
            panel["options"]["yAxis"]["unit"]
            if panel["type"] == "heatmap"
            else panel["fieldConfig"]["defaults"]["unit"]
        )
        assert unit, panel["title"]
        assert "Healthy" in panel["description"], panel["title"]
        assert panel["datasource"] == datasource, panel["title"]
        assert all(t["datasource"] == datasource for t in panel["targets"])


def test_every_query_filters_job_and_instance_and_rates_over_rate_interval(
    overview_json: dict[str, Any],
) -> None:
    """Every selector carries both variables; every range is $__rate_interval."""
    exprs = [t["expr"] for p in _data_panels(overview_json) for t in p["targets"]]

    for expr in exprs:
        selectors = re.findall(r"\w+\{([^}]*)\}", expr)
        assert selectors, expr
        for matchers in selectors:
            assert 'job=~"$job"' in matchers, expr
            assert 'instance=~"$instance"' in matchers, expr
        assert set(re.findall(r"\[([^\]]+)\]", expr)) <= {"$__rate_interval"}, expr
        assert ("rate(" in expr) == ("[$__rate_interval]" in expr), expr


def test_output_has_no_nulls_legacy_keys_or_old_schema(
    overview_json: dict[str, Any],
) -> None:
    """Only threshold bases are null; no pre-grid keys; schema 36."""
    nulls = [
        value
        for value in _walk(overview_json)
        if isinstance(value, dict)
        for key, item in value.items()
        if item is None and not (key == "value" and "color" in value)
    ]

    assert nulls == []
    assert not {"rows", "style", "hideControls", "sharedCrosshair"} & set(overview_json)
    assert overview_json["schemaVersion"] == 36
    assert "time_options" not in overview_json["timepicker"]


def test_uid_and_panel_ids_are_stable(overview_json: dict[str, Any]) -> None:
    """The uid is the documented constant; ids are the same on every render."""
    again = render(overview())

    assert overview_json["uid"] == again["uid"] == OVERVIEW_UID
    assert [p["id"] for p in overview_json["panels"]] == [
        p["id"] for p in again["panels"]
    ]
    assert [p["id"] for p in again["panels"]] == list(
        range(1, len(again["panels"]) + 1)
    )


def test_build_output_is_byte_identical_from_run_to_run(tmp_path: Path) -> None:
    """Two builds write the same files with the same bytes."""
    first = build(tmp_path / "one")
    second = build(tmp_path / "two")

    assert [p.relative_to(tmp_path / "one") for p in first] == [
        p.relative_to(tmp_path / "two") for p in second
    ]
    for one, two in zip(first, second, strict=True):
        assert one.read_bytes() == two.read_bytes(), one.name


def test_build_writes_sorted_indented_json_with_a_final_newline(tmp_path: Path) -> None:
    """The JSON file is the rendered dashboard, serialized deterministically."""
    build(tmp_path)

    path = tmp_path / "dashboards" / f"{OVERVIEW_UID}.json"
    text = path.read_text(encoding="utf-8")

    assert json.loads(text) == render(overview())
    assert (
        text
        == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False)
        + "\n"
    )


def test_dashboard_provider_loads_the_dashboards_folder(tmp_path: Path) -> None:
    """The provider is a file provider pointing at the given folder."""
    build(tmp_path, dashboards_path="/srv/grafana/dashboards")

    document = yaml.safe_load(
        (tmp_path / "provisioning/dashboards/building-directory.yml").read_text()
    )

    assert document["apiVersion"] == 1
    [provider] = document["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "Building Directory"
    assert provider["options"]["path"] == "/srv/grafana/dashboards"
    assert provider["allowUiUpdates"] is False


def test_datasource_file_provisions_the_prometheus_the_dashboards_query(
    tmp_path: Path,
) -> None:
    """A default Prometheus data source at the given URL and scrape interval."""
    build(tmp_path, prometheus_url="http://127.0.0.1:19090", scrape_interval="2s")

    document = yaml.safe_load(
        (tmp_path / "provisioning/datasources/prometheus.yml").read_text()
    )

    assert document["apiVersion"] == 1
    [source] = document["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://127.0.0.1:19090"
    assert source["isDefault"] is False  # never clashes with an existing default
    assert source["jsonData"]["timeInterval"] == "2s"


def test_build_writes_nothing_when_a_dashboard_breaks_a_lint_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lint problem stops the build before any file exists."""
    unfiltered = PanelSpec(
        "timeseries", "Up", "Healthy: 1.", "short", (Query("up"),), width=24
    )
    broken = DashboardSpec(
        "broken",
        "Broken",
        "d",
        (RowSpec("Row", (unfiltered,)),),
        (Variable("datasource", "Data source", "datasource", "prometheus"),),
    )
    monkeypatch.setattr(generate_module, "specs", lambda **_: [broken])

    with pytest.raises(LintError) as raised:
        build(tmp_path / "out")

    rules = {problem.rule for problem in raised.value.problems}
    assert {"target-job-instance-rule", "template-job-rule"} <= rules
    assert not (tmp_path / "out").exists()
