"""Check a dashboard's PromQL: that it parses, and that a real Prometheus answers it.

Every expression of a dashboard is collected (panel queries, annotation
queries, and the selectors of ``label_values(...)`` variables) and its
dashboard variables are substituted the way Grafana would (``$job`` becomes
the "All" regular expression ``.+``, ``$__rate_interval`` a window):

- :func:`check_promql` hands them to ``promtool check rules`` as recording
  rules, Prometheus's own parser, without any server;
- :func:`query_all` runs each one as an instant query against a Prometheus
  and reports the ones that fail or return nothing.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from dashboards.errors import Problem, PrometheusQueryError, ToolMissingError

logger = logging.getLogger(__name__)

#: What the dashboard variables stand for when no Grafana substitutes them:
#: every job and instance ("All"), and a rate window of a minute (four scrapes
#: at Prometheus's default 15 s interval, as Grafana's $__rate_interval).
DEFAULT_VARIABLES: Final[Mapping[str, str]] = {
    "__rate_interval": "1m",
    "job": ".+",
    "instance": ".+",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"label_values\((.+),\s*(\w+)\)\s*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Expression:
    """One PromQL expression of a dashboard.

    Attributes:
        where: Where it comes from, e.g. ``panel 2 'Cache hit rate' query A``.
        expr: The PromQL with the dashboard's variables in it.
    """

    where: str
    expr: str


def expressions(dashboard: Mapping[str, Any]) -> list[Expression]:
    """Collect every PromQL expression of a dashboard, in dashboard order.

    A ``label_values(selector, label)`` variable contributes
    ``count by (label) (selector)``: the query that returns the same values.
    """
    found = []
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        match = _LABEL_VALUES.fullmatch(query) if isinstance(query, str) else None
        if match:
            selector, label = match.groups()
            found.append(
                Expression(
                    f"variable {variable.get('name')!r}",
                    f"count by ({label}) ({selector.strip()})",
                )
            )
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            found.append(
                Expression(f"annotation {annotation.get('name')!r}", annotation["expr"])
            )
    panels = dashboard.get("panels", [])
    for panel in [*panels, *(inner for p in panels for inner in p.get("panels", []))]:
        for target in panel.get("targets", []):
            if target.get("expr"):
                where = (
                    f"panel {panel.get('id')} {panel.get('title', '')!r} "
                    f"query {target.get('refId', '?')}"
                )
                found.append(Expression(where, target["expr"]))
    return found


def substitute(expr: str, variables: Mapping[str, str] = DEFAULT_VARIABLES) -> str:
    """Replace ``$name`` and ``${name}`` by their values; leave unknown ones."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, match.group(0))

    return _VARIABLE.sub(value, expr)


def _unresolved(expr: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in _VARIABLE.finditer(expr)]


def _promtool_check(promtool: str, exprs: list[str], workdir: Path) -> tuple[bool, str]:
    rules = [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = workdir / "dashboard-exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def check_promql(
    found: Iterable[Expression],
    variables: Mapping[str, str] = DEFAULT_VARIABLES,
    *,
    promtool: str | None = None,
) -> list[Problem]:
    """Parse every expression with ``promtool check rules``.

    All expressions go into one rule file; when promtool rejects it, each is
    checked alone to say which ones fail and why.

    Args:
        found: The expressions, e.g. from :func:`expressions`.
        variables: Values for the dashboard variables.
        promtool: The promtool binary; found on ``PATH`` unless given.

    Raises:
        ToolMissingError: promtool is not installed.
    """
    binary = promtool or shutil.which("promtool")
    if binary is None:
        raise ToolMissingError(
            "promtool not found; install it with "
            "'apt-get install -y --no-install-recommends prometheus'"
        )
    problems = []
    checked: list[tuple[Expression, str]] = []
    for expression in found:
        text = substitute(expression.expr, variables)
        unknown = _unresolved(text)
        if unknown:
            problems.append(
                Problem(
                    "promql-parse", expression.where, f"unknown variables {unknown}"
                )
            )
        else:
            checked.append((expression, text))

    with tempfile.TemporaryDirectory(prefix="bdobs-promtool-") as tmp:
        workdir = Path(tmp)
        ok, _ = _promtool_check(binary, [text for _, text in checked], workdir)
        if not ok:
            for expression, text in checked:
                ok, output = _promtool_check(binary, [text], workdir)
                if not ok:
                    reason = output.splitlines()[-1] if output else "rejected"
                    problems.append(Problem("promql-parse", expression.where, reason))
    return problems


def query_all(
    prometheus_url: str,
    dashboard: Mapping[str, Any],
    variables: Mapping[str, str] = DEFAULT_VARIABLES,
    *,
    allow_empty: Collection[str] = (),
    timeout: float = 10.0,
) -> list[Problem]:
    """Run every expression of a dashboard as an instant query.

    Args:
        prometheus_url: The Prometheus base URL, e.g. ``http://127.0.0.1:9090``.
        dashboard: The dashboard JSON (decoded).
        variables: Values for the dashboard variables. With a short run, make
            ``__rate_interval`` a few scrape intervals long.
        allow_empty: Expressions that may return nothing, named by any part of
            their ``where`` (a panel title, ``annotation 'Firing alerts'``).
        timeout: Seconds per query.

    Returns:
        One problem per expression Prometheus rejects, and per expression
        that returns no series unless allowed.

    Raises:
        PrometheusQueryError: Prometheus could not be reached or answered
            something that is not its API's JSON.
    """
    problems = []
    with httpx.Client(base_url=prometheus_url, timeout=timeout) as client:
        for expression in expressions(dashboard):
            query = substitute(expression.expr, variables)
            try:
                response = client.get("/api/v1/query", params={"query": query})
                body = response.json()
            except httpx.HTTPError as error:
                raise PrometheusQueryError(
                    f"cannot query {prometheus_url}: {error}"
                ) from error
            except ValueError as error:
                raise PrometheusQueryError(
                    f"{prometheus_url} answered {response.status_code} without JSON"
                ) from error
            logger.debug("queried %s: %s", expression.where, body.get("status"))
            if body.get("status") != "success":
                problems.append(
                    Problem(
                        "prometheus-query",
                        expression.where,
                        f"Prometheus rejected {query!r}: {body.get('error')}",
                    )
                )
            elif not body.get("data", {}).get("result") and not any(
                allowed in expression.where for allowed in allow_empty
            ):
                problems.append(
                    Problem(
                        "prometheus-no-data",
                        expression.where,
                        f"{query!r} returned no data",
                    )
                )
    return problems
