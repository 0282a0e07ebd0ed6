"""``bdobs alerts``: build, check and load the Prometheus rules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("build/alerts")


def register(subparsers: Any) -> None:
    """Add the ``alerts`` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "alerts",
        help="build, check and load the Prometheus alert rules",
        description="Generate the recording and alerting rules from the indicator "
        "catalogue, check them with promtool and amtool, and load them into a "
        "running Prometheus.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="write the rule file and the PrometheusRule resource",
        description="Writes <out>/building-directory.rules.yml (a plain Prometheus "
        "rule file) and <out>/building-directory.prometheusrule.yml (a Kubernetes "
        "PrometheusRule). The same configuration always gives the same bytes.",
    )
    build.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder ({DEFAULT_OUT})"
    )
    _add_config(build)
    build.set_defaults(handler=_build)

    check = commands.add_parser(
        "check",
        help="promtool check and unit tests, amtool, runbooks",
        description="Builds the rules in a temporary folder (or takes --rules) and "
        "runs promtool check rules, the promtool unit tests of alerts/tests, "
        "amtool check-config on the example Alertmanager configuration, and "
        "looks for every alert's runbook. Exits 1 if any check fails.",
    )
    _add_config(check)
    check.add_argument("--rules", type=Path, help="check this rule file instead")
    check.add_argument(
        "--tests",
        type=Path,
        help="folder of promtool unit tests (*.test.yml) to run instead of the "
        "shipped ones",
    )
    check.add_argument(
        "--alertmanager-config",
        type=Path,
        help="Alertmanager configuration for amtool (default: the example)",
    )
    check.set_defaults(handler=_check)

    load = commands.add_parser(
        "load",
        help="validate, replace atomically, reload Prometheus, confirm",
        description="Writes the rules into --rules-dir after promtool accepts "
        "them, keeps the previous file as <name>.bak, asks Prometheus to reload "
        "(it needs --web.enable-lifecycle) and waits until /api/v1/rules shows the "
        "new groups. An invalid file never replaces the live one; a failed "
        "reload puts the previous file back.",
    )
    load.add_argument(
        "--prometheus-url", required=True, help="the Prometheus to reload"
    )
    load.add_argument(
        "--rules-dir",
        type=Path,
        required=True,
        help="a folder whose *.yml files that Prometheus loads as rules",
    )
    _add_config(load)
    load.add_argument("--rules", type=Path, help="load this rule file instead")
    load.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for Prometheus (30)",
    )
    load.set_defaults(handler=_load)

    show = commands.add_parser(
        "config",
        help="print the effective configuration as YAML",
        description="Prints every setting with its value, defaults included, in "
        "the format --config reads: a starting point for your own file.",
    )
    _add_config(show)
    show.set_defaults(handler=_show_config)


def _add_config(parser: argparse.ArgumentParser) -> None:
    from alerts.config import PROFILES

    parser.add_argument(
        "--config",
        type=Path,
        help="YAML file overriding the profile's settings (see 'alerts config')",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="default",
        help="settings to start from: default (production durations) or demo "
        "(alerts within a minute on a stack scraped every few seconds)",
    )


def _config(args: argparse.Namespace) -> Any:
    from alerts._config_file import load_config
    from alerts.config import PROFILES

    base = PROFILES[args.profile]
    return base if args.config is None else load_config(args.config, base=base)


def _build(args: argparse.Namespace) -> int:
    from alerts.errors import ConfigError
    from alerts.rules import build

    try:
        config = _config(args)
    except ConfigError as error:
        print(f"error: {error}")
        return 2
    for path in build(args.out, config):
        print(f"wrote {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from alerts.checks import ALERTMANAGER_EXAMPLE, check
    from alerts.errors import ConfigError

    try:
        config = _config(args)
    except ConfigError as error:
        print(f"error: {error}")
        return 2
    results = check(
        config,
        rules=args.rules,
        tests=args.tests,
        alertmanager_config=args.alertmanager_config or ALERTMANAGER_EXAMPLE,
    )
    for result in results:
        print(f"{'ok    ' if result.passed else 'FAILED'} {result.name}")
        for message in result.messages:
            print("         " + message.replace("\n", "\n         "))
    failed = sum(not result.passed for result in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _load(args: argparse.Namespace) -> int:
    from alerts.errors import AlertsError
    from alerts.loader import load_rules
    from alerts.rules import render_rules

    try:
        if args.rules is not None:
            text = args.rules.read_text(encoding="utf-8")
        else:
            text = render_rules(_config(args))
        report = load_rules(
            args.prometheus_url, args.rules_dir, text, timeout=args.timeout
        )
    except OSError as error:
        print(f"error: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    except AlertsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"loaded {report.path} ({', '.join(report.groups)}) in {report.seconds:.1f} s"
    )
    if report.shown_from:
        print(
            f"warning: Prometheus names {', '.join(report.shown_from)} as the file "
            f"of these groups, not {report.path}; unless it sees this folder "
            "under another path (a container mount), it is not reading the "
            "file just written",
            file=sys.stderr,
        )
    if report.backup is not None:
        print(f"previous file kept as {report.backup}")
    return 0


def _show_config(args: argparse.Namespace) -> int:
    from alerts._config_file import render_config
    from alerts.errors import ConfigError

    try:
        config = _config(args)
    except ConfigError as error:
        print(f"error: {error}")
        return 2
    print(render_config(config), end="")
    return 0
