"""``bdobs dashboards``: build the dashboards, and check them without Grafana."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_OUT = Path("build/dashboards")


def _http_url(text: str) -> str:
    """An http(s) URL with a host, as Grafana's data source needs."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in text:
        raise argparse.ArgumentTypeError(
            f"expected an http:// or https:// URL with a host, got {text!r}"
        )
    return text


def _prometheus_duration(text: str) -> str:
    """A Prometheus duration above zero, such as 15s or 1m."""
    from alerts.config import duration_seconds
    from alerts.errors import ConfigError

    try:
        seconds = duration_seconds(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0, got {text!r}")
    return text


def register(subparsers: Any) -> None:
    """Add the ``dashboards`` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dashboards",
        help="build the Grafana dashboards and check them",
        description="Generate the Grafana dashboards from the indicator catalogue "
        "and prove they import and query cleanly without a Grafana server.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="write the dashboard JSON and the provisioning files",
        description="Writes <out>/dashboards/*.json and the Grafana provisioning "
        "files for the dashboards folder and a Prometheus data source. Fails, "
        "writing nothing, if a dashboard breaks a lint rule.",
    )
    build.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder ({DEFAULT_OUT})"
    )
    _add_runbook_base(build)
    build.add_argument(
        "--prometheus-url",
        type=_http_url,
        help="Prometheus address in the data source file (default: a loopback "
        "placeholder, http://127.0.0.1:9090)",
    )
    build.add_argument(
        "--scrape-interval",
        type=_prometheus_duration,
        help="Prometheus scrape interval, for $__rate_interval (default 15s)",
    )
    build.add_argument(
        "--dashboards-path",
        help="folder Grafana reads the dashboard JSON from "
        "(default /var/lib/grafana/dashboards/building-directory)",
    )
    build.set_defaults(handler=_build)

    check = commands.add_parser(
        "check",
        help="lint, decode with Grafana's models, parse and optionally query",
        description="Renders the dashboards in memory and runs every check: the "
        "lint rules, a decode with grafana-foundation-sdk's dashboard models "
        "(dev extra), a promtool parse of every PromQL expression, and with "
        "--prometheus-url an instant query of each against that Prometheus.",
    )
    _add_runbook_base(check)
    check.add_argument(
        "--prometheus-url", help="also run every query against this Prometheus"
    )
    check.add_argument(
        "--rate-interval",
        type=_prometheus_duration,
        default="1m",
        help="what $__rate_interval stands for in the queries (1m)",
    )
    check.add_argument(
        "--allow-empty",
        action="append",
        default=[],
        metavar="TEXT",
        help="a query whose place contains TEXT may return no data (repeatable)",
    )
    check.set_defaults(handler=_check)


def _add_runbook_base(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runbook-base",
        help="where runbook links point: <base>/<AlertName>.md "
        "(default: the repository-relative alerts/runbooks)",
    )


def _build(args: argparse.Namespace) -> int:
    from dashboards import provisioning
    from dashboards.errors import LintError
    from dashboards.generate import build
    from dashboards.overview import DEFAULT_RUNBOOK_BASE

    try:
        written = build(
            args.out,
            runbook_base=args.runbook_base or DEFAULT_RUNBOOK_BASE,
            prometheus_url=args.prometheus_url or provisioning.DEFAULT_PROMETHEUS_URL,
            scrape_interval=args.scrape_interval
            or provisioning.DEFAULT_SCRAPE_INTERVAL,
            dashboards_path=args.dashboards_path
            or provisioning.DEFAULT_DASHBOARDS_PATH,
        )
    except LintError as error:
        print(f"error: {error}")
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from dashboards.decode import decode_problems
    from dashboards.errors import DashboardError, Problem, ToolMissingError
    from dashboards.generate import render, specs
    from dashboards.lint import lint
    from dashboards.overview import DEFAULT_RUNBOOK_BASE
    from dashboards.verify import (
        DEFAULT_VARIABLES,
        check_promql,
        expressions,
        query_all,
    )

    variables = {**DEFAULT_VARIABLES, "__rate_interval": args.rate_interval}
    failed = False
    for spec in specs(runbook_base=args.runbook_base or DEFAULT_RUNBOOK_BASE):
        dashboard = render(spec)
        checks: list[tuple[str, Any]] = [
            ("lint", lambda d=dashboard: lint(d)),
            ("grafana-foundation-sdk decode", lambda d=dashboard: decode_problems(d)),
            (
                "promtool parse",
                lambda d=dashboard: check_promql(expressions(d), variables),
            ),
        ]
        if args.prometheus_url:
            checks.append(
                (
                    f"queries against {args.prometheus_url}",
                    lambda d=dashboard: query_all(
                        args.prometheus_url,
                        d,
                        variables,
                        allow_empty=args.allow_empty,
                    ),
                )
            )
        for name, run in checks:
            try:
                problems: list[Problem] = run()
            except ToolMissingError as error:
                print(f"{spec.uid}: {name}: skipped, {error}")
                continue
            except DashboardError as error:
                print(f"{spec.uid}: {name}: error, {error}")
                failed = True
                continue
            print(f"{spec.uid}: {name}: {'ok' if not problems else 'FAILED'}")
            for problem in problems:
                print(f"  {problem}")
            failed = failed or bool(problems)
    return 1 if failed else 0
