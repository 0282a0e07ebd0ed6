"""Render a :class:`~dashboards.spec.DashboardSpec` with grafanalib.

This is the only module that knows grafanalib. It builds grafanalib's stat,
time series, row and dashboard objects; the two panels grafanalib 0.7 only
builds in their legacy form (the heatmap before Grafana 9 and the alert list
before unified alerting) are written as plain dictionaries in their current
form, which grafanalib's encoder passes through unchanged.

grafanalib's JSON is not what Grafana 10-12 import cleanly (legacy keys,
``null`` everywhere, ``schemaVersion`` 12): :mod:`dashboards._compat` fixes
that afterwards. The grafanalib object alone is what ``generate-dashboard``
writes, for people who already use grafanalib's tooling.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib import core as gl

from dashboards.spec import (
    Annotation,
    DashboardSpec,
    Link,
    PanelSpec,
    Placement,
    Query,
    Step,
    Variable,
    layout,
)

#: Grafana's own annotation of alert state changes and manual notes; Grafana
#: adds it to every dashboard that lacks it, so emitting it keeps imports equal.
BUILT_IN_ANNOTATION: dict[str, Any] = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


class _PromTarget(gl.Target):  # type: ignore[misc]
    """A Prometheus target that opens in the code editor, as a range query."""

    def to_json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = super().to_json_data()
        data["editorMode"] = "code"
        data["range"] = not self.instant
        return data


def _grid(place: Placement) -> gl.GridPos:
    return gl.GridPos(h=place.height, w=place.width, x=place.x, y=place.y)


def _targets(queries: tuple[Query, ...], datasource: dict[str, str]) -> list[Any]:
    # refIds A, B, C... in query order: stable and unique within the panel.
    return [
        _PromTarget(
            expr=query.expr,
            legendFormat=query.legend,
            refId=chr(ord("A") + index),
            format=query.format,
            instant=query.instant,
            datasource=dict(datasource),
        )
        for index, query in enumerate(queries)
    ]


def _steps(steps: tuple[Step, ...]) -> list[dict[str, Any]]:
    # Grafana expects at least the base step; its own default base is green.
    steps = steps or (Step("green"),)
    return [{"color": step.color, "value": step.value} for step in steps]


def _links(links: tuple[Link, ...]) -> list[gl.DataLink]:
    return [
        gl.DataLink(title=link.title, linkUrl=link.url, isNewTab=True) for link in links
    ]


def _field_defaults(panel: PanelSpec) -> dict[str, Any]:
    """Field options grafanalib cannot take (float bounds) as an overlay."""
    defaults: dict[str, Any] = {}
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    return {"fieldConfig": {"defaults": defaults}} if defaults else {}


def _stat(panel: PanelSpec, place: Placement, datasource: dict[str, str]) -> gl.Stat:
    return gl.Stat(
        id=place.id,
        gridPos=_grid(place),
        title=panel.title,
        description=panel.description,
        dataSource=dict(datasource),
        targets=_targets(panel.queries, datasource),
        format=panel.unit,
        decimals=panel.decimals,
        thresholds=_steps(panel.steps),
        color={"mode": "thresholds"},
        colorMode="value",
        graphMode="area",
        reduceCalc="lastNotNull",
        textMode="value",
        noValue=panel.no_value or None,
        links=_links(panel.links),
        # Grafana's default (about one point per pixel) rather than 100.
        maxDataPoints=None,
        extraJson=_field_defaults(panel) or None,
    )


def _timeseries(
    panel: PanelSpec, place: Placement, datasource: dict[str, str]
) -> gl.TimeSeries:
    # showLegend became part of the legend options in schema 37; emitting it
    # keeps Grafana's legend migration a no-op.
    extra: dict[str, Any] = {"options": {"legend": {"showLegend": True}}}
    extra.update(_field_defaults(panel))
    return gl.TimeSeries(
        id=place.id,
        gridPos=_grid(place),
        title=panel.title,
        description=panel.description,
        dataSource=dict(datasource),
        targets=_targets(panel.queries, datasource),
        unit=panel.unit,
        valueDecimals=panel.decimals,
        thresholds=_steps(panel.steps),
        thresholdsStyleMode=panel.threshold_style,
        fillOpacity=10,
        showPoints="never",
        tooltipMode="multi",
        tooltipSort="desc",
        legendDisplayMode="list",
        legendPlacement="bottom",
        links=_links(panel.links),
        maxDataPoints=None,
        extraJson=extra,
    )


def _heatmap(
    panel: PanelSpec, place: Placement, datasource: dict[str, str]
) -> dict[str, Any]:
    """The heatmap panel of Grafana 9 and later, fed by pre-bucketed data."""
    y_axis: dict[str, Any] = {
        "axisPlacement": "left",
        "reverse": False,
        "unit": panel.unit,
    }
    if panel.decimals is not None:
        y_axis["decimals"] = panel.decimals
    return {
        "type": "heatmap",
        "id": place.id,
        "gridPos": _grid(place).to_json_data(),
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(datasource),
        "targets": [
            target.to_json_data() for target in _targets(panel.queries, datasource)
        ],
        "links": [link.to_json_data() for link in _links(panel.links)],
        "fieldConfig": {
            "defaults": {
                "custom": {
                    "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                    "scaleDistribution": {"type": "linear"},
                },
            },
            "overrides": [],
        },
        "options": {
            # The buckets come from Prometheus already counted: no re-bucketing.
            "calculate": False,
            "cellGap": 1,
            "cellValues": {"unit": panel.cell_unit},
            "color": {
                "exponent": 0.5,
                "fill": "dark-orange",
                "mode": "scheme",
                "reverse": False,
                "scale": "exponential",
                "scheme": "Oranges",
                "steps": 64,
            },
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-9},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto"},
            "showValue": "never",
            "tooltip": {"mode": "single", "yHistogram": False},
            "yAxis": y_axis,
        },
    }


def _alert_list(panel: PanelSpec, place: Placement) -> dict[str, Any]:
    """The alert list of unified alerting (Grafana 8 and later)."""
    return {
        "type": "alertlist",
        "id": place.id,
        "gridPos": _grid(place).to_json_data(),
        "title": panel.title,
        "description": panel.description,
        "links": [link.to_json_data() for link in _links(panel.links)],
        "options": {
            "alertInstanceLabelFilter": "",
            "alertName": panel.alert_filter,
            "dashboardAlerts": False,
            "groupBy": [],
            "groupMode": "default",
            "maxItems": 20,
            # 3: by importance, firing before pending.
            "sortOrder": 3,
            "stateFilter": {
                "error": True,
                "firing": True,
                "noData": False,
                "normal": False,
                "pending": True,
            },
            "viewMode": "list",
        },
    }


def _panel(panel: PanelSpec, place: Placement, datasource: dict[str, str]) -> Any:
    if panel.kind == "stat":
        return _stat(panel, place, datasource)
    if panel.kind == "timeseries":
        return _timeseries(panel, place, datasource)
    if panel.kind == "heatmap":
        return _heatmap(panel, place, datasource)
    return _alert_list(panel, place)


def _variable(variable: Variable, datasource: dict[str, str]) -> gl.Template:
    if variable.kind == "datasource":
        return gl.Template(
            name=variable.name,
            label=variable.label,
            type="datasource",
            query=variable.query,
            refresh=gl.REFRESH_ON_DASHBOARD_LOAD,
            regex="",
        )
    return gl.Template(
        name=variable.name,
        label=variable.label,
        type="query",
        query=variable.query,
        dataSource=dict(datasource),
        # Reload the values with the time range, so the lists only offer
        # jobs and instances that have data in it.
        refresh=gl.REFRESH_ON_TIME_RANGE_CHANGE,
        multi=variable.multi,
        includeAll=variable.include_all,
        allValue=variable.all_value or None,
        regex="",
        sort=gl.SORT_ALPHA_ASC,
    )


def _annotation(annotation: Annotation, datasource: dict[str, str]) -> dict[str, Any]:
    return {
        "datasource": dict(datasource),
        "enable": True,
        "hide": False,
        "expr": annotation.expr,
        "iconColor": annotation.color,
        "name": annotation.name,
        "tagKeys": ",".join(annotation.tag_keys),
        "textFormat": annotation.text,
        "titleFormat": annotation.title,
        "useValueForTime": False,
    }


def _dashboard_link(link: Link) -> gl.DashboardLink:
    return gl.DashboardLink(
        type="link",
        title=link.title,
        uri=link.url,
        tooltip=link.tooltip,
        icon="doc",
        targetBlank=True,
        keepTime=False,
    )


def to_grafanalib(spec: DashboardSpec) -> gl.Dashboard:
    """Build the grafanalib dashboard of a spec.

    Its ``to_json_data()`` is grafanalib's raw output; pass that through
    :func:`dashboards._compat.modernize` for JSON Grafana 10-12 import cleanly.
    """
    datasource = spec.datasource
    panels: list[Any] = []
    for row, row_place, placed in layout(spec):
        panels.append(
            gl.RowPanel(id=row_place.id, title=row.title, gridPos=_grid(row_place))
        )
        panels.extend(_panel(panel, place, datasource) for panel, place in placed)
    return gl.Dashboard(
        title=spec.title,
        uid=spec.uid,
        description=spec.description,
        tags=list(spec.tags),
        panels=panels,
        templating=gl.Templating(
            list=[_variable(variable, datasource) for variable in spec.variables]
        ),
        annotations=gl.Annotations(
            list=[
                BUILT_IN_ANNOTATION,
                *(_annotation(a, datasource) for a in spec.annotations),
            ]
        ),
        links=[_dashboard_link(link) for link in spec.links],
        refresh=spec.refresh,
        time=gl.Time(spec.time_from, "now"),
        timezone=spec.timezone,
        graphTooltip=gl.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        editable=True,
    )


def _encode(value: Any) -> Any:
    to_json_data = getattr(value, "to_json_data", None)
    if to_json_data is None:
        raise TypeError(f"cannot encode {type(value).__name__}")
    return to_json_data()


def raw_json(spec: DashboardSpec) -> dict[str, Any]:
    """Return grafanalib's JSON for a spec, decoded into plain dictionaries."""
    encoded: dict[str, Any] = json.loads(
        json.dumps(to_grafanalib(spec).to_json_data(), default=_encode)
    )
    return encoded
