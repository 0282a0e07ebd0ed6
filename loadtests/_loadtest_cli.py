"""``bdobs loadtest run|list``: Locust scenarios and their verdict."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loadtests._cli_args import duration, positive_number

#: Exit code when the run itself could not be carried out (not a verdict).
RUN_BROKEN = 2


def register(subparsers: Any) -> None:
    """Add the ``loadtest`` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "loadtest",
        help="run a Locust scenario against the service and judge the targets",
        description="Runs Locust headless against the reference service and "
        "judges each target of the SPEC from raw per-request samples and the "
        "service's own counters.",
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    actions = parser.add_subparsers(title="actions", metavar="ACTION")

    run = actions.add_parser(
        "run",
        help="run a scenario; exit 0 only when every check passed",
        description="Start the stack (unless given a running one), run the "
        "scenario with Locust, show progress, write the report folder "
        "(verdict.json, summary.txt, locust.html, metrics.prom, raw samples) "
        "and exit 0 only when every check passed (1: a check failed or was "
        "inconclusive; 2: the run could not be carried out).",
    )
    run.add_argument("--scenario", required=True, help="see 'bdobs loadtest list'")
    run.add_argument(
        "--duration", type=duration, help="e.g. 30s, 5m (the scenario's default)"
    )
    run.add_argument(
        "--rate", type=positive_number, help="requests per minute (the scenario's)"
    )
    run.add_argument("--users", type=int, help="Locust users (from the rate)")
    run.add_argument(
        "--workers",
        "--processes",
        dest="processes",
        type=int,
        default=1,
        help="Locust worker processes; above 1 runs a master and N workers",
    )
    run.add_argument(
        "--report",
        type=Path,
        help="report folder (build/loadtest/<scenario>)",
    )
    run.add_argument(
        "--service-url",
        help="load this running service instead of starting a stack",
    )
    run.add_argument(
        "--directory-url",
        help="the running simulator, for fault scenarios (with --service-url)",
    )
    run.add_argument(
        "--stack-dir",
        type=Path,
        help="load the stack started by 'bdobs stack up' from this folder",
    )
    workload = run.add_argument_group("workload (the scenario's unless given)")
    workload.add_argument("--pool-size", type=int, help="buildings asked for")
    workload.add_argument("--zipf-s", type=float, help="Zipf exponent of popularity")
    workload.add_argument(
        "--unknown-share", type=float, help="share of unknown ids (0 to 1)"
    )
    workload.add_argument("--seed", type=int, help="seed of the draws")
    stack = run.add_argument_group("the stack this run starts")
    stack.add_argument(
        "--latency-ms", type=float, help="simulator mean latency (scenario's)"
    )
    stack.add_argument(
        "--service-workers", type=int, default=1, help="uvicorn workers (1)"
    )
    stack.add_argument(
        "--prometheus", action="store_true", help="also start a Prometheus"
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(handler=_run)

    listing = actions.add_parser("list", help="list the scenarios")
    listing.set_defaults(handler=_list)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return RUN_BROKEN


def _list(_args: argparse.Namespace) -> int:
    from loadtests.scenarios import SCENARIOS

    for scenario in SCENARIOS.values():
        print(
            f"{scenario.name}: {scenario.rate_per_minute:g}/min for "
            f"{scenario.duration:g} s"
        )
        print(f"  {scenario.description}")
        print(f"  expects: {scenario.expected_outcome}")
        for step in scenario.faults:
            print(f"  fault {step.describe()}")
    return 0


class _Terminated(KeyboardInterrupt):
    """A signal to stop: Ctrl-C, SIGTERM or SIGHUP; faults are undone and the
    stack stopped on the way out."""


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_terminated(signum: int, _frame: object) -> None:
    # A second Ctrl-C must not cut the cleanup short and leave processes.
    for other in _STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise _Terminated(signal.Signals(signum).name)


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    previous = {
        signum: signal.signal(signum, _raise_terminated)
        # SIGINT too: a shell starts background jobs with SIGINT ignored.
        for signum in _STOP_SIGNALS
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from loadtests.runner import LoadTestError, Progress, run_load_test
    from loadtests.scenarios import get
    from loadtests.servers import ServerError
    from loadtests.stack import StackUrls, read_state

    try:
        scenario = get(args.scenario)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return RUN_BROKEN
    overrides = {
        key: value
        for key, value in (
            ("pool_size", args.pool_size),
            ("zipf_s", args.zipf_s),
            ("unknown_share", args.unknown_share),
            ("seed", args.seed),
        )
        if value is not None
    }
    try:
        workload = replace(scenario.workload, **overrides)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return RUN_BROKEN

    urls = None
    if args.stack_dir is not None:
        state = read_state(args.stack_dir)
        if state is None:
            print(f"error: no running stack in {args.stack_dir}", file=sys.stderr)
            return RUN_BROKEN
        urls = _urls_from_state(state["urls"])
    elif args.service_url is not None:
        urls = StackUrls(
            redis_url="",
            directory_url=(args.directory_url or "").rstrip("/"),
            service_url=args.service_url.rstrip("/"),
            prometheus_url=None,
            prometheus_rules_dir=None,
        )
    stack_options: dict[str, Any] = {
        "service_workers": args.service_workers,
        "prometheus": args.prometheus,
    }
    if args.latency_ms is not None:
        stack_options["simulator_latency"] = args.latency_ms / 1000
    report = args.report or Path("build/loadtest") / scenario.name

    def show(progress: Progress) -> None:
        print(progress.line(), flush=True)

    print(f"running scenario {scenario.name}; report in {report}", flush=True)
    try:
        with _stop_on_signals():
            verdict = run_load_test(
                scenario,
                report_dir=report,
                duration=args.duration,
                rate_per_minute=args.rate,
                users=args.users,
                processes=args.processes,
                workload=workload,
                urls=urls,
                stack_options=stack_options,
                progress=None if args.quiet else show,
            )
    except (LoadTestError, ServerError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return RUN_BROKEN
    print()
    print(verdict.summary(), end="")
    print(f"report: {report}")
    return verdict.exit_code


def _urls_from_state(urls: dict[str, Any]) -> Any:
    from loadtests.stack import StackUrls

    rules = urls.get("prometheus_rules_dir")
    return StackUrls(
        redis_url=urls["redis_url"],
        directory_url=urls["directory_url"],
        service_url=urls["service_url"],
        prometheus_url=urls.get("prometheus_url"),
        prometheus_rules_dir=None if rules is None else Path(rules),
    )
