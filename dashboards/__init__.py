"""Grafana dashboards for the Building Directory client, built from the catalogue.

The dashboards are described with small frozen values (:mod:`dashboards.spec`)
filled from the indicator catalogue (:mod:`dashboards.overview`), rendered by
grafanalib and modernized for Grafana 10-12 (:mod:`dashboards.generate`), then
proven without a Grafana server: linted (:mod:`dashboards.lint`), decoded with
Grafana's own models (:mod:`dashboards.decode`), parsed by promtool and queried
against a real Prometheus (:mod:`dashboards.verify`).

Example:
    >>> from pathlib import Path
    >>> from dashboards import build
    >>> build(Path("build/dashboards"))  # doctest: +SKIP
"""

from dashboards.decode import decode_problems
from dashboards.errors import (
    DashboardError,
    LintError,
    Problem,
    PrometheusQueryError,
    ToolMissingError,
)
from dashboards.generate import build, dumps, render, specs
from dashboards.lint import lint
from dashboards.overview import (
    DEFAULT_RUNBOOK_BASE,
    OVERVIEW_UID,
    overview,
    runbook_url,
)
from dashboards.spec import (
    Annotation,
    DashboardSpec,
    Link,
    PanelSpec,
    Query,
    RowSpec,
    Step,
    Variable,
)
from dashboards.verify import (
    DEFAULT_VARIABLES,
    Expression,
    check_promql,
    expressions,
    query_all,
    substitute,
)

__all__ = [
    "DEFAULT_RUNBOOK_BASE",
    "DEFAULT_VARIABLES",
    "OVERVIEW_UID",
    "Annotation",
    "DashboardError",
    "DashboardSpec",
    "Expression",
    "Link",
    "LintError",
    "PanelSpec",
    "Problem",
    "PrometheusQueryError",
    "Query",
    "RowSpec",
    "Step",
    "ToolMissingError",
    "Variable",
    "build",
    "check_promql",
    "decode_problems",
    "dumps",
    "expressions",
    "lint",
    "overview",
    "query_all",
    "render",
    "runbook_url",
    "specs",
    "substitute",
]
