"""Grafana's own dashboard models (grafana-foundation-sdk) read every member."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest

from dashboards import decode_problems, render, specs
from dashboards._grafanalib import raw_json
from dashboards.overview import overview


def test_the_sdk_is_the_pinned_version() -> None:
    """The decode runs against the exact SDK version the dev extra pins."""
    assert version("grafana-foundation-sdk").lstrip("v") == "0.0.21"


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.uid) for s in specs()])
def test_the_models_read_every_member_of_every_dashboard(spec: Any) -> None:
    """Decoding and encoding again with the SDK loses and changes nothing."""
    assert decode_problems(render(spec)) == []


def test_decode_reports_the_members_the_models_drop(
    overview_copy: dict[str, Any],
) -> None:
    """A member Grafana's models do not know is reported by its path."""
    overview_copy["style"] = "dark"
    overview_copy["panels"][1]["targets"][0]["step"] = 10

    problems = decode_problems(overview_copy)

    assert {problem.message for problem in problems} == {
        "the models cannot read .style: dropped",
        "the models cannot read .panels[1].targets[0].step: dropped",
    }


def test_decode_rejects_grafanalib_s_raw_output() -> None:
    """Without the modernizing step, grafanalib's JSON cannot even be decoded."""
    [problem] = decode_problems(raw_json(overview()))

    assert "cannot be decoded" in problem.message


def test_decode_reports_the_legacy_keys_grafanalib_writes(
    overview_copy: dict[str, Any],
) -> None:
    """The pre-grid top-level keys are dropped by the current models."""
    overview_copy.update(
        rows=[], style="dark", hideControls=False, sharedCrosshair=False
    )

    problems = decode_problems(overview_copy)

    dropped = {p.message.removeprefix("the models cannot read .") for p in problems}
    assert dropped == {
        "rows: dropped",
        "style: dropped",
        "hideControls: dropped",
        "sharedCrosshair: dropped",
    }


def test_decode_reports_a_datasource_the_models_cannot_read(
    overview_copy: dict[str, Any],
) -> None:
    """A plain-string panel data source makes the decode fail outright."""
    overview_copy["panels"][1]["datasource"] = "Prometheus"

    [problem] = decode_problems(overview_copy)

    assert "cannot be decoded" in problem.message
