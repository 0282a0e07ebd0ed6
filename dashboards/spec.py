"""A small description of dashboards, independent of the library that renders it.

Dashboards are described with the frozen values below and handed to one
renderer (today grafanalib, see :mod:`dashboards._grafanalib`). Swapping the
generator means writing another renderer for these few types; the dashboards
themselves (:mod:`dashboards.overview`) do not change.

The description holds only what the dashboards need: stat, time series,
heatmap and alert-list panels in titled rows, Prometheus queries, threshold
steps, links, template variables and annotation queries. Every value is
checked when it is built, so a mistake fails where it is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

PanelKind = Literal["stat", "timeseries", "heatmap", "alertlist"]
ThresholdStyle = Literal["off", "line", "dashed", "area", "line+area", "dashed+area"]

#: Columns of Grafana's dashboard grid.
GRID_WIDTH: Final = 24

_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL query of a panel.

    Attributes:
        expr: The PromQL, with dashboard variables (``$job``,
            ``$__rate_interval``) left for Grafana to substitute.
        legend: The legend format, e.g. ``{{operation}}``.
        format: ``time_series``, or ``heatmap`` for histogram buckets.
        instant: Evaluate at one instant instead of over the time range.
    """

    expr: str
    legend: str = ""
    format: Literal["time_series", "heatmap"] = "time_series"
    instant: bool = False

    def __post_init__(self) -> None:
        if not self.expr.strip():
            raise ValueError("a query needs an expression")


@dataclass(frozen=True, slots=True)
class Step:
    """One threshold step: from ``value`` upwards, use ``color``.

    Attributes:
        color: A Grafana colour name (``green``, ``orange``, ``red``...).
        value: Where the step starts; None for the base step, which starts at
            minus infinity.
    """

    color: str
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A link shown on a dashboard or a panel.

    Attributes:
        title: The link text.
        url: Where it leads.
        tooltip: Shown on hover (dashboard links only).
    """

    title: str
    url: str
    tooltip: str = ""


@dataclass(frozen=True, slots=True)
class PanelSpec:
    """One panel.

    Attributes:
        kind: ``stat``, ``timeseries``, ``heatmap`` or ``alertlist``.
        title: The panel title.
        description: What the panel shows and what healthy looks like.
        unit: A Grafana unit id (``percentunit``, ``s``, ``reqps``...); for a
            heatmap, the unit of its y axis (the bucket bounds).
        queries: The PromQL queries; none for an alert list.
        width: Grid columns, 1 to 24.
        height: Grid rows.
        decimals: Decimals shown; None lets Grafana choose.
        steps: Threshold steps in increasing order, the first without a value.
            A stat panel is coloured by them; a time series draws them as
            lines when ``threshold_style`` is not ``off``.
        threshold_style: How a time series draws its thresholds.
        min: Lower bound of the value axis.
        max: Upper bound of the value axis.
        no_value: Text shown when the queries return nothing.
        links: Panel links, such as runbooks.
        cell_unit: For a heatmap, the unit of a cell's value.
        alert_filter: For an alert list, show only alerts whose name contains
            this text.
    """

    kind: PanelKind
    title: str
    description: str
    unit: str = ""
    queries: tuple[Query, ...] = ()
    width: int = 12
    height: int = 8
    decimals: int | None = None
    steps: tuple[Step, ...] = ()
    threshold_style: ThresholdStyle = "off"
    min: float | None = None
    max: float | None = None
    no_value: str = ""
    links: tuple[Link, ...] = ()
    cell_unit: str = ""
    alert_filter: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.width <= GRID_WIDTH:
            raise ValueError(f"panel {self.title!r}: width must be 1 to {GRID_WIDTH}")
        if self.height < 1:
            raise ValueError(f"panel {self.title!r}: height must be at least 1")
        if (self.kind == "alertlist") != (not self.queries):
            raise ValueError(
                f"panel {self.title!r}: an alert list has no queries, "
                "every other panel has at least one"
            )
        if self.steps:
            if self.steps[0].value is not None:
                raise ValueError(f"panel {self.title!r}: the first step has no value")
            values = [step.value for step in self.steps[1:]]
            if None in values or values != sorted(values):  # type: ignore[type-var]
                raise ValueError(f"panel {self.title!r}: steps must increase")


@dataclass(frozen=True, slots=True)
class RowSpec:
    """A titled row of panels, laid out left to right and wrapped at 24 columns."""

    title: str
    panels: tuple[PanelSpec, ...]


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable.

    Attributes:
        name: Referenced as ``$name`` in queries.
        label: Shown in the variable bar.
        kind: ``datasource`` (``query`` is the plugin type, e.g.
            ``prometheus``) or ``query`` (``query`` is a Prometheus variable
            query such as ``label_values(metric, job)``).
        query: See ``kind``.
        multi: Several values may be selected.
        include_all: Offer an "All" value.
        all_value: The regular expression "All" stands for.
    """

    name: str
    label: str
    kind: Literal["datasource", "query"]
    query: str
    multi: bool = False
    include_all: bool = False
    all_value: str = ""

    def __post_init__(self) -> None:
        if not _VARIABLE_NAME.fullmatch(self.name):
            raise ValueError(f"variable name {self.name!r} is not an identifier")


@dataclass(frozen=True, slots=True)
class Annotation:
    """An annotation query: events drawn on every time series panel.

    Attributes:
        name: Shown in the annotation toggles.
        expr: PromQL; every returned series is an event while it has values.
        title: Title format, e.g. ``{{alertname}}``.
        text: Text format.
        tag_keys: Labels shown as the event's tags.
        color: The marker colour.
    """

    name: str
    expr: str
    title: str
    text: str = ""
    tag_keys: tuple[str, ...] = ()
    color: str = "red"


@dataclass(frozen=True, slots=True)
class DashboardSpec:
    """One dashboard.

    Attributes:
        uid: Stable identifier (1 to 40 of ``A-Z a-z 0-9 _ -``): links and
            provisioning keep working across rebuilds.
        title: The dashboard title.
        description: What the dashboard is for.
        rows: The rows, top to bottom.
        variables: Template variables; the one named ``datasource_variable``
            selects the data source of every panel, annotation and variable.
        datasource_type: The plugin id of that data source.
        datasource_variable: The name of the data source variable.
        tags: Dashboard tags.
        links: Dashboard links (runbooks).
        annotations: Annotation queries (firing alerts).
        refresh: Auto-refresh interval.
        time_from: Start of the default time range, relative to now.
        timezone: ``browser`` or ``utc``.
    """

    uid: str
    title: str
    description: str
    rows: tuple[RowSpec, ...]
    variables: tuple[Variable, ...]
    datasource_type: str = "prometheus"
    datasource_variable: str = "datasource"
    tags: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    refresh: str = "30s"
    time_from: str = "now-1h"
    timezone: str = "browser"

    def __post_init__(self) -> None:
        if not _UID.fullmatch(self.uid):
            raise ValueError(f"dashboard uid {self.uid!r} is not 1-40 of [A-Za-z0-9_-]")
        names = [variable.name for variable in self.variables]
        if len(set(names)) != len(names):
            raise ValueError(f"dashboard {self.uid!r}: duplicate variable names")
        if self.datasource_variable not in names:
            missing = self.datasource_variable
            raise ValueError(f"dashboard {self.uid!r}: no variable named {missing!r}")

    @property
    def datasource(self) -> dict[str, str]:
        """The data source reference every panel, target and variable uses."""
        return {"type": self.datasource_type, "uid": f"${{{self.datasource_variable}}}"}


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a row or panel sits in the grid, and its panel id."""

    id: int
    x: int
    y: int
    width: int
    height: int


def layout(
    dashboard: DashboardSpec,
) -> list[tuple[RowSpec, Placement, list[tuple[PanelSpec, Placement]]]]:
    """Place every row and panel on the grid and number them.

    Rows take one grid row each; their panels follow left to right and wrap
    when the next one would pass column 24. Ids count up from 1 in reading
    order, so they stay the same as long as the order does.

    Returns:
        For each row: the row, its placement, and its placed panels.
    """
    placed = []
    next_id = 1
    y = 0
    for row in dashboard.rows:
        row_place = Placement(next_id, 0, y, GRID_WIDTH, 1)
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        panels = []
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x = 0
                y += line_height
                line_height = 0
            panels.append((panel, Placement(next_id, x, y, panel.width, panel.height)))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
        placed.append((row, row_place, panels))
    return placed
