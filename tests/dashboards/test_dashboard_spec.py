"""The internal description of dashboards: validation and layout."""

from __future__ import annotations

import pytest

from dashboards.spec import (
    DashboardSpec,
    PanelSpec,
    Query,
    RowSpec,
    Step,
    Variable,
    layout,
)

_QUERY = (Query('up{job=~"$job",instance=~"$instance"}'),)
_DATASOURCE = Variable("datasource", "Data source", "datasource", "prometheus")


def _panel(title: str, width: int, height: int = 8) -> PanelSpec:
    return PanelSpec(
        "timeseries", title, "Healthy: up.", "short", _QUERY, width=width, height=height
    )


def test_layout_wraps_panels_that_would_pass_the_last_column() -> None:
    """Panels flow left to right and wrap below the tallest panel of the line."""
    row = RowSpec("r", (_panel("a", 16, 5), _panel("b", 8, 9), _panel("c", 12)))
    spec = DashboardSpec("uid", "t", "d", (row,), (_DATASOURCE,))

    [(_, row_place, panels)] = layout(spec)

    places = {panel.title: place for panel, place in panels}
    assert (row_place.y, row_place.height, row_place.width) == (0, 1, 24)
    assert (places["a"].x, places["a"].y) == (0, 1)
    assert (places["b"].x, places["b"].y) == (16, 1)
    assert (places["c"].x, places["c"].y) == (0, 10)


def test_layout_numbers_rows_and_panels_in_reading_order() -> None:
    """Ids count up from 1 over rows and their panels, top to bottom."""
    rows = (
        RowSpec("r1", (_panel("a", 12), _panel("b", 12))),
        RowSpec("r2", (_panel("c", 24),)),
    )
    spec = DashboardSpec("uid", "t", "d", rows, (_DATASOURCE,))

    placed = layout(spec)

    ids = [
        (row.title, place.id, [(p.title, q.id) for p, q in panels])
        for row, place, panels in placed
    ]
    assert ids == [("r1", 1, [("a", 2), ("b", 3)]), ("r2", 4, [("c", 5)])]
    assert placed[1][1].y == 9  # below the first row's 8-high panels


@pytest.mark.parametrize(
    "width", [pytest.param(0, id="zero"), pytest.param(25, id="25")]
)
def test_panel_refuses_a_width_outside_the_grid(width: int) -> None:
    """A panel is 1 to 24 columns wide."""
    with pytest.raises(ValueError, match="width"):
        _panel("a", width)


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param((Step("red", 0.5),), id="first-step-with-value"),
        pytest.param(
            (Step("red"), Step("green", 0.7), Step("orange", 0.5)), id="decreasing"
        ),
    ],
)
def test_panel_refuses_badly_ordered_threshold_steps(steps: tuple[Step, ...]) -> None:
    """Threshold steps start at minus infinity and increase."""
    with pytest.raises(ValueError, match="step"):
        PanelSpec("stat", "s", "Healthy.", "short", _QUERY, steps=steps)


@pytest.mark.parametrize(
    ("kind", "queries"),
    [
        pytest.param("alertlist", _QUERY, id="alertlist-with-query"),
        pytest.param("stat", (), id="stat-without-query"),
    ],
)
def test_panel_refuses_queries_that_do_not_fit_its_kind(
    kind: str, queries: tuple[Query, ...]
) -> None:
    """An alert list has no queries; every other panel has some."""
    with pytest.raises(ValueError, match="queries"):
        PanelSpec(kind, "p", "Healthy.", "short", queries)  # type: ignore[arg-type]


def test_dashboard_refuses_to_lack_its_datasource_variable() -> None:
    """Every panel refers to the data source variable, so it must exist."""
    job = Variable("job", "Job", "query", "label_values(up, job)")

    with pytest.raises(ValueError, match="datasource"):
        DashboardSpec("uid", "t", "d", (), (job,))


def test_dashboard_datasource_reference_names_the_variable() -> None:
    """Panels reference the data source through the variable, never a uid."""
    spec = DashboardSpec("uid", "t", "d", (), (_DATASOURCE,))

    assert spec.datasource == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_refuses_a_uid_grafana_would_reject() -> None:
    """A uid is 1 to 40 characters of letters, digits, - and _."""
    with pytest.raises(ValueError, match="uid"):
        DashboardSpec("x" * 41, "t", "d", (), (_DATASOURCE,))
