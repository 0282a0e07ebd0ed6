"""Turn grafanalib's JSON into JSON that Grafana 10, 11 and 12 import cleanly.

grafanalib 0.7 writes an old dashboard model: ``schemaVersion`` 12, legacy
top-level keys (``rows``, ``style``, ``hideControls``, ``sharedCrosshair``),
legacy panel and target keys, and ``null`` for every unset field. This module
is the one place that fixes it, after rendering and before serializing.

Why ``schemaVersion`` 36
------------------------
Grafana migrates a dashboard from its ``schemaVersion`` up to its own latest
one when it loads or imports it. Grafana 12 also migrates on the server, and
that server-side migration refuses dashboards older than schema 13 ("cannot
be migrated"), so grafanalib's 12 must go. The version claimed instead must
be one at which every dashboard-level construct emitted here is already
written the way that version expects: data source references as objects
``{"type", "uid"}`` on panels, targets, variables and annotations (what
schema 33 to 36 migrate to), grid positions, rows as ``row`` panels. That is
true from 36, what Grafana 8.5 writes and what Grafana's own Jsonnet library
(grafonnet) still writes for Grafana 10.4. Panel options (the heatmap's
``calculate``, the alert list's filters) are not versioned by the schema but
by each panel plugin, which migrates them by the panel's ``pluginVersion``;
they are written here in their current form.

Grafana 10 to 12 write later versions (10.4 writes 39, 11.5 40, 11.6 41, 12
up to 42), so each of them treats the JSON as older than itself and runs its
migrations 37 and up. Those touch only: legends (37, made a no-op here by
emitting ``showLegend``), tables (38, 39: none here), a non-string
``refresh`` (40: ours is a string), ``timepicker.time_options`` (41: dropped
here), and ``hideFrom`` overrides (42: none here). So each version ends up
with the JSON as written, and the JSON reads the same at 36 and at 42: the
tests decode it with the schema-42 dashboard models of Grafana's
``grafana-foundation-sdk`` and fail on any field those models cannot read.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

#: See the module docstring for why this version.
SCHEMA_VERSION: Final = 36

#: Top-level keys of the pre-grid dashboard model (rows of spans, a theme per
#: dashboard) and of dashboard import inputs, which provisioning does not use.
_LEGACY_DASHBOARD_KEYS: Final = (
    "__inputs",
    "gnetId",
    "hideControls",
    "id",
    "rows",
    "sharedCrosshair",
    "style",
)

#: Panel keys of the span-based layout and of the Angular panel editor.
_LEGACY_PANEL_KEYS: Final = ("editable", "error", "height", "minSpan", "span")

#: The only keys a row panel has in the current model.
_ROW_KEYS: Final = frozenset({"collapsed", "gridPos", "id", "panels", "title", "type"})

#: Target keys of Graphite-era and pre-Grafana 7 Prometheus queries; ``query``
#: only duplicates ``expr``.
_LEGACY_TARGET_KEYS: Final = ("intervalFactor", "metric", "query", "step", "target")

#: Variable keys removed in schema 28 (tags) or meaningful only for interval
#: variables (``auto*``).
_LEGACY_VARIABLE_KEYS: Final = (
    "auto",
    "auto_count",
    "auto_min",
    "tagValuesQuery",
    "tagsQuery",
    "useTags",
)


def _drop_nulls(value: Any, *, in_steps: bool = False) -> Any:
    """Remove ``null`` members, except a threshold step's ``value``.

    The first step of a threshold list has ``"value": null``: it starts at
    minus infinity, and that is how Grafana writes it.
    """
    if isinstance(value, dict):
        return {
            key: _drop_nulls(item, in_steps=key == "steps")
            for key, item in value.items()
            if item is not None or (in_steps and key == "value")
        }
    if isinstance(value, list):
        return [_drop_nulls(item, in_steps=in_steps) for item in value]
    return value


def _datasource_ref(value: Any, datasource: dict[str, str]) -> Any:
    """Turn ``"$datasource"`` or ``"${datasource}"`` into the object reference."""
    if isinstance(value, str) and value.strip("${}") == datasource["uid"].strip("${}"):
        return dict(datasource)
    return value


def _modernize_panel(
    panel: dict[str, Any], datasource: dict[str, str]
) -> dict[str, Any]:
    if panel.get("type") == "row":
        panel = {key: item for key, item in panel.items() if key in _ROW_KEYS}
        panel["panels"] = [
            _modernize_panel(p, datasource) for p in panel.get("panels", [])
        ]
        return panel
    for key in _LEGACY_PANEL_KEYS:
        panel.pop(key, None)
    if "datasource" in panel:
        panel["datasource"] = _datasource_ref(panel["datasource"], datasource)
    for target in panel.get("targets", []):
        for key in _LEGACY_TARGET_KEYS:
            target.pop(key, None)
        if "datasource" in target:
            target["datasource"] = _datasource_ref(target["datasource"], datasource)
    return panel


def modernize(raw: dict[str, Any], datasource: dict[str, str]) -> dict[str, Any]:
    """Return the dashboard as Grafana 10-12 expect it; ``raw`` is not changed.

    Args:
        raw: grafanalib's dashboard JSON (``to_json_data()`` encoded and
            decoded, or loaded from ``generate-dashboard`` output).
        datasource: The data source reference (``{"type", "uid"}``) that
            string references to the data source variable become.
    """
    dashboard: dict[str, Any] = _drop_nulls(copy.deepcopy(raw))
    for key in _LEGACY_DASHBOARD_KEYS:
        dashboard.pop(key, None)
    dashboard.get("timepicker", {}).pop("time_options", None)
    dashboard["panels"] = [
        _modernize_panel(panel, datasource) for panel in dashboard.get("panels", [])
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "interval":
            for key in _LEGACY_VARIABLE_KEYS:
                variable.pop(key, None)
        if "datasource" in variable:
            variable["datasource"] = _datasource_ref(variable["datasource"], datasource)
        # grafanalib writes a selection without a value ({"tags": []...}) when
        # there is no default; Grafana writes {} and picks one on load.
        if "value" not in variable.get("current", {}):
            variable["current"] = {}
    dashboard["schemaVersion"] = SCHEMA_VERSION
    return dashboard


def dumps(dashboard: dict[str, Any]) -> str:
    """Serialize deterministically: sorted keys, two-space indent, final newline."""
    return json.dumps(dashboard, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
