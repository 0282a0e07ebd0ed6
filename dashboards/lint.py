"""Lint dashboard JSON in the spirit of Grafana's dashboard linter.

The rules carry the names of grafana/dashboard-linter's rules where they check
the same thing, so a reader who knows that tool knows these:

- ``template-datasource-rule``: a ``datasource`` variable selects the
  Prometheus; ``template-job-rule`` and ``template-instance-rule``: ``job``
  and ``instance`` variables exist, query that data source, are multi-select
  with "All" meaning ``.+``; ``template-on-time-change-reload-rule``: query
  variables reload with the time range.
- ``panel-datasource-rule``: every panel with queries uses the data source
  variable; ``target-datasource-rule`` the same for every query.
- ``datasource-hardcoded-rule``: no data source reference anywhere names a
  concrete data source uid (only ``$variable`` references, or Grafana's
  built-in annotation source).
- ``target-job-instance-rule``: every selector of every query has
  ``job=~"$job"`` and ``instance=~"$instance"``.
- ``target-rate-interval-rule``: every range selector is ``[$__rate_interval]``.
- ``panel-units-rule``: every panel with data has a known unit.
- ``panel-title-description-rule``: every panel has a title and a description;
  ``panel-healthy-description-rule`` (this project's): the description says
  what healthy looks like (``Healthy: ...``).
- ``panel-no-targets-rule``, ``panel-layout-rule``, ``dashboard-uid-rule``,
  ``dashboard-legacy-rule`` (no keys of the pre-grid model, a schema Grafana
  12 still migrates).

Queries are checked by a small PromQL scanner that knows string literals,
selectors, ranges and grouping clauses, which is all these rules need; that
the PromQL parses at all is :func:`dashboards.verify.check_promql`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from dashboards.errors import Problem

#: Panel types that show data and must have queries, units and a data source.
DATA_PANELS: Final = frozenset(
    {"stat", "timeseries", "heatmap", "gauge", "table", "bargauge"}
)

#: Unit ids of Grafana's value formats that dashboards here may use.
KNOWN_UNITS: Final = frozenset(
    {
        "none", "short", "percent", "percentunit", "bool", "bool_yes_no",
        "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations",
        "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm",
        "bytes", "decbytes", "bits", "decbits", "Bps", "bps", "pps", "hertz",
    }
)  # fmt: skip

#: The oldest schema Grafana 12's server-side migration accepts.
MIN_SCHEMA_VERSION: Final = 13

_LEGACY_KEYS: Final = ("rows", "style", "hideControls", "sharedCrosshair")
_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_VARIABLE_REF = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
# An identifier on its own, not the exponent or unit inside 1e-9 or 5m.
_WORD = re.compile(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*")
_MATCHER = re.compile(
    r"""([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS: Final = frozenset(
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
        "and", "or", "unless", "offset", "atan2", "inf", "nan", "Inf", "NaN",
    }
)  # fmt: skip
_RATE_INTERVAL: Final = "$__rate_interval"


def _variable_name(uid: object) -> str | None:
    """Return ``name`` for ``$name`` or ``${name}``, else None."""
    if isinstance(uid, str):
        match = _VARIABLE_REF.fullmatch(uid)
        if match:
            return match.group(1)
    return None


def _iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _where(panel: dict[str, Any]) -> str:
    return f"panel {panel.get('id')} {panel.get('title', '')!r}"


def _scan(expr: str) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Split PromQL into selectors, bare metric names and range durations.

    Returns:
        ``(selectors, bare_names, ranges)``: each selector as (metric name or
        "", matcher text); identifiers that select a metric without braces;
        the text inside every ``[...]``.
    """
    selectors: list[tuple[str, str]] = []
    ranges: list[str] = []
    rest: list[str] = []  # the expression with strings, braces and ranges blanked
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            end = i + 1
            while end < len(expr) and expr[end] != char:
                end += 2 if expr[end] == "\\" else 1
            rest.append(" ")
            i = end + 1
        elif char in "{[":
            closing = "}" if char == "{" else "]"
            end, quote = i + 1, ""
            while end < len(expr) and (quote or expr[end] != closing):
                if quote and expr[end] == "\\":
                    end += 1
                elif expr[end] in "\"'`" and (not quote or expr[end] == quote):
                    quote = "" if quote else expr[end]
                end += 1
            inner = expr[i + 1 : end]
            if char == "[":
                ranges.append(inner.strip())
            else:
                before = "".join(rest).rstrip()
                name = _IDENTIFIER.search(before[::-1])
                metric = ""
                if name and name.start() == 0:
                    metric = name.group(0)[::-1]
                    rest[:] = list(before[: len(before) - len(metric)])
                selectors.append((metric, inner))
            rest.append(" ")
            i = end + 1
        else:
            rest.append(char)
            i += 1
    remaining = _GROUPING.sub(" ", "".join(rest))
    bare = [
        match.group(0)
        for match in _WORD.finditer(remaining)
        if match.group(0) not in _KEYWORDS
        and not remaining[match.end() :].lstrip().startswith("(")
    ]
    return selectors, bare, ranges


def _has_matcher(matchers: str, label: str) -> bool:
    for name, op, quoted in _MATCHER.findall(matchers):
        if (
            name == label
            and op in ("=", "=~")
            and _variable_name(quoted[1:-1]) == label
        ):
            return True
    return False


def _lint_expr(expr: str, where: str) -> list[Problem]:
    problems = []
    selectors, bare, ranges = _scan(expr)
    for name in bare:
        problems.append(
            Problem(
                "target-job-instance-rule",
                where,
                f"{name} is selected without job and instance matchers",
            )
        )
    for metric, matchers in selectors:
        missing = [
            label for label in ("job", "instance") if not _has_matcher(matchers, label)
        ]
        if missing:
            wanted = ", ".join(f'{label}=~"${label}"' for label in missing)
            problems.append(
                Problem(
                    "target-job-instance-rule",
                    where,
                    f"selector {metric or ''}{{{matchers}}} lacks {wanted}",
                )
            )
    for window in ranges:
        if window != _RATE_INTERVAL:
            problems.append(
                Problem(
                    "target-rate-interval-rule",
                    where,
                    f"range [{window}] should be [{_RATE_INTERVAL}]",
                )
            )
    return problems


def _lint_datasource_refs(value: Any, path: str, problems: list[Problem]) -> None:
    """Report every data source reference that names a concrete data source."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasource" and item is not None:
                _check_reference(item, path, problems)
            _lint_datasource_refs(item, f"{path}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _lint_datasource_refs(item, f"{path}[{index}]", problems)


def _check_reference(reference: Any, path: str, problems: list[Problem]) -> None:
    if isinstance(reference, dict):
        uid = reference.get("uid")
        builtin = reference.get("type") == "grafana" and str(uid).startswith("-- ")
        if builtin or _variable_name(uid) is not None:
            return
        message = f"data source uid {uid!r} is hard-coded; use $datasource"
    else:
        message = f"data source {reference!r} is not a {{type, uid}} reference"
    problems.append(Problem("datasource-hardcoded-rule", path or "dashboard", message))


def _datasource_variable(dashboard: dict[str, Any]) -> tuple[str | None, list[Problem]]:
    variables = dashboard.get("templating", {}).get("list", [])
    sources = [v for v in variables if v.get("type") == "datasource"]
    if not sources:
        return None, [
            Problem(
                "template-datasource-rule", "dashboard", "has no data source variable"
            )
        ]
    source = sources[0]
    problems = []
    if source.get("query") != "prometheus":
        problems.append(
            Problem(
                "template-datasource-rule",
                f"variable {source.get('name')!r}",
                f"selects {source.get('query')!r} data sources, not prometheus",
            )
        )
    return source.get("name"), problems


def _lint_label_variable(
    dashboard: dict[str, Any], name: str, datasource: str | None
) -> list[Problem]:
    rule = f"template-{name}-rule"
    where = f"variable {name!r}"
    variables = dashboard.get("templating", {}).get("list", [])
    found = [v for v in variables if v.get("name") == name]
    if not found:
        return [Problem(rule, "dashboard", f"has no {name} variable")]
    variable = found[0]
    problems = []
    if variable.get("type") != "query":
        problems.append(Problem(rule, where, "should be a query variable"))
    if _variable_name((variable.get("datasource") or {}).get("uid")) != datasource:
        problems.append(Problem(rule, where, f"should query ${datasource}"))
    if not variable.get("multi") or not variable.get("includeAll"):
        problems.append(Problem(rule, where, "should be multi-select with All"))
    if variable.get("allValue") != ".+":
        problems.append(Problem(rule, where, "All should mean .+"))
    if variable.get("refresh") != 2:
        problems.append(
            Problem(
                "template-on-time-change-reload-rule",
                where,
                "should reload on time range change (refresh 2)",
            )
        )
    return problems


def _unit(panel: dict[str, Any]) -> str:
    if panel.get("type") == "heatmap":
        return str(panel.get("options", {}).get("yAxis", {}).get("unit", ""))
    return str(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""))


def _lint_panel(panel: dict[str, Any], datasource: str | None) -> list[Problem]:
    where = _where(panel)
    problems = []
    if not str(panel.get("title", "")).strip():
        problems.append(Problem("panel-title-description-rule", where, "has no title"))
    if panel.get("type") == "row":
        return problems
    description = str(panel.get("description", "")).strip()
    if not description:
        problems.append(
            Problem("panel-title-description-rule", where, "has no description")
        )
    elif "Healthy" not in description:
        problems.append(
            Problem(
                "panel-healthy-description-rule",
                where,
                "description does not say what healthy looks like ('Healthy: ...')",
            )
        )
    if panel.get("type") not in DATA_PANELS:
        return problems

    targets = panel.get("targets", [])
    if not targets:
        problems.append(Problem("panel-no-targets-rule", where, "has no queries"))
    unit = _unit(panel)
    if unit not in KNOWN_UNITS:
        problems.append(
            Problem("panel-units-rule", where, f"has no or an unknown unit: {unit!r}")
        )
    panel_source = panel.get("datasource")
    if not isinstance(panel_source, dict) or (
        _variable_name(panel_source.get("uid")) != datasource
    ):
        problems.append(
            Problem("panel-datasource-rule", where, f"should use ${datasource}")
        )
    for target in targets:
        target_where = f"{where} query {target.get('refId', '?')}"
        source = target.get("datasource")
        if (
            not isinstance(source, dict)
            or _variable_name(source.get("uid")) != datasource
        ):
            problems.append(
                Problem(
                    "target-datasource-rule", target_where, f"should use ${datasource}"
                )
            )
        problems.extend(_lint_expr(str(target.get("expr", "")), target_where))
    return problems


def _lint_layout(dashboard: dict[str, Any]) -> list[Problem]:
    problems = []
    seen_ids: set[Any] = set()
    cells: dict[tuple[int, int], str] = {}
    for panel in _iter_panels(dashboard):
        where = _where(panel)
        if panel.get("id") in seen_ids:
            problems.append(Problem("panel-layout-rule", where, "duplicate panel id"))
        seen_ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        x, y, w, h = (grid.get(key) for key in ("x", "y", "w", "h"))
        if not all(isinstance(n, int) for n in (x, y, w, h)):
            problems.append(Problem("panel-layout-rule", where, "has no grid position"))
            continue
        if x < 0 or w < 1 or h < 1 or x + w > 24:
            problems.append(
                Problem("panel-layout-rule", where, "lies outside the grid")
            )
        for cell in ((cx, cy) for cx in range(x, x + w) for cy in range(y, y + h)):
            if cell in cells:
                problems.append(
                    Problem("panel-layout-rule", where, f"overlaps {cells[cell]}")
                )
                break
            cells[cell] = where
    return problems


def lint(dashboard: dict[str, Any]) -> list[Problem]:
    """Check one dashboard's JSON; an empty list means it passed.

    Args:
        dashboard: The dashboard as Grafana imports it (decoded JSON).
    """
    problems: list[Problem] = []
    if not _UID.fullmatch(str(dashboard.get("uid", ""))):
        problems.append(
            Problem(
                "dashboard-uid-rule", "dashboard", "uid is not 1-40 of [A-Za-z0-9_-]"
            )
        )
    if not str(dashboard.get("title", "")).strip():
        problems.append(Problem("dashboard-uid-rule", "dashboard", "has no title"))
    legacy = [key for key in _LEGACY_KEYS if key in dashboard]
    if legacy:
        problems.append(
            Problem("dashboard-legacy-rule", "dashboard", f"has legacy keys {legacy}")
        )
    schema = dashboard.get("schemaVersion")
    if not isinstance(schema, int) or schema < MIN_SCHEMA_VERSION:
        problems.append(
            Problem(
                "dashboard-legacy-rule",
                "dashboard",
                f"schemaVersion {schema!r} is below {MIN_SCHEMA_VERSION}, which "
                "Grafana 12 cannot migrate",
            )
        )

    datasource, found = _datasource_variable(dashboard)
    problems.extend(found)
    for name in ("job", "instance"):
        problems.extend(_lint_label_variable(dashboard, name, datasource))
    _lint_datasource_refs(dashboard, "", problems)

    for panel in _iter_panels(dashboard):
        problems.extend(_lint_panel(panel, datasource))
    problems.extend(_lint_layout(dashboard))

    for annotation in dashboard.get("annotations", {}).get("list", []):
        source = annotation.get("datasource") or {}
        if annotation.get("builtIn"):
            continue
        if _variable_name(source.get("uid")) != datasource:
            problems.append(
                Problem(
                    "panel-datasource-rule",
                    f"annotation {annotation.get('name')!r}",
                    f"should use ${datasource}",
                )
            )
    return problems
