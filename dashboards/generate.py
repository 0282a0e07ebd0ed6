"""Render the dashboards to JSON and write them with their provisioning files.

:func:`render` is the whole pipeline for one dashboard: the description is
rendered by grafanalib, grafanalib's JSON is modernized for Grafana 10-12, and
the result is a plain dictionary. :func:`build` lints every dashboard (a
problem stops the build before anything is written), then writes::

    <out>/dashboards/<uid>.json
    <out>/provisioning/dashboards/building-directory.yml
    <out>/provisioning/datasources/prometheus.yml

The same arguments always give byte-identical files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dashboards import provisioning
from dashboards._compat import dumps
from dashboards._compat import modernize as _modernize
from dashboards._grafanalib import raw_json
from dashboards.errors import LintError
from dashboards.lint import lint
from dashboards.overview import DEFAULT_RUNBOOK_BASE, overview
from dashboards.spec import DashboardSpec

logger = logging.getLogger(__name__)

__all__ = ["build", "dumps", "render", "specs"]


def specs(*, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> list[DashboardSpec]:
    """Describe every dashboard of the bundle."""
    return [overview(runbook_base=runbook_base)]


def render(spec: DashboardSpec) -> dict[str, Any]:
    """Render one dashboard to the JSON Grafana 10-12 import (as a dictionary)."""
    return _modernize(raw_json(spec), spec.datasource)


def build(
    out_dir: Path,
    *,
    runbook_base: str = DEFAULT_RUNBOOK_BASE,
    prometheus_url: str = provisioning.DEFAULT_PROMETHEUS_URL,
    scrape_interval: str = provisioning.DEFAULT_SCRAPE_INTERVAL,
    dashboards_path: str = provisioning.DEFAULT_DASHBOARDS_PATH,
) -> list[Path]:
    """Write the dashboards and the provisioning files under ``out_dir``.

    Args:
        out_dir: Where to write; created if missing.
        runbook_base: Where runbook links point (``<base>/<AlertName>.md``).
        prometheus_url: The Prometheus address in the data source file.
        scrape_interval: Prometheus's scrape interval, for ``$__rate_interval``.
        dashboards_path: The folder the dashboard provider reads, as Grafana's
            server sees it (copy ``<out>/dashboards/*.json`` there).

    Returns:
        The files written, in a stable order.

    Raises:
        LintError: A dashboard breaks a lint rule; nothing was written.
    """
    rendered = {spec.uid: render(spec) for spec in specs(runbook_base=runbook_base)}
    problems = [
        problem for dashboard in rendered.values() for problem in lint(dashboard)
    ]
    if problems:
        raise LintError(problems)

    files = {
        **{Path("dashboards", f"{uid}.json"): dumps(d) for uid, d in rendered.items()},
        Path("provisioning", "dashboards", "building-directory.yml"): (
            provisioning.dashboard_provider(dashboards_path)
        ),
        Path("provisioning", "datasources", "prometheus.yml"): (
            provisioning.prometheus_datasource(
                prometheus_url, scrape_interval=scrape_interval
            )
        ),
    }
    written = []
    for relative, text in sorted(files.items()):
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        logger.info("wrote %s", path)
        written.append(path)
    return written
