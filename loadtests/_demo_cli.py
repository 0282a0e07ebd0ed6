"""``bdobs demo``: build, load, fault and report, on servers it starts itself."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from loadtests._cli_args import duration, positive_number

#: Seconds: below this the baseline has too few requests to judge anything.
MIN_BASELINE: Final = 20.0


def register(subparsers: Any) -> None:
    """Add the ``demo`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the whole bundle end to end and write a report",
        description="Builds the dashboards and rules, starts Redis, the "
        "simulator, the service and Prometheus on loopback ports, loads the "
        "rules, runs the baseline load test and a fault phase (Redis stopped, "
        "then a slow upstream), records the alerts and writes a report. "
        "Every process it starts is stopped at the end, also on Ctrl-C.",
    )
    parser.add_argument(
        "--duration",
        type=duration,
        default=120.0,
        help="baseline duration, at least 20s: e.g. 30s, 2m (default) or 5m for the "
        "full baseline",
    )
    parser.add_argument(
        "--rate",
        type=positive_number,
        default=100.0,
        help="baseline requests per minute (default 100)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("build/demo"), help="report folder"
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="measure and apply cache warming of the most used buildings first",
    )
    parser.add_argument(
        "--redis-outage",
        type=duration,
        default=45.0,
        help="how long Redis stays stopped in the fault phase (default 45s)",
    )
    parser.add_argument(
        "--slow-phase",
        type=duration,
        default=50.0,
        help="how long the upstream stays slow in the fault phase (default 50s)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail when a baseline target is inconclusive, not only when it fails",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from loadtests.demo import DemoOptions, run_demo, summary_table

    if args.duration < MIN_BASELINE:
        print(
            f"error: --duration must be at least {MIN_BASELINE:g}s: a shorter "
            "baseline has too few requests to judge any target",
            file=sys.stderr,
        )
        return 2
    options = DemoOptions(
        out=args.out,
        duration=args.duration,
        rate_per_minute=args.rate,
        warm=args.warm,
        redis_outage=args.redis_outage,
        slow_phase=args.slow_phase,
        strict=args.strict,
    )
    try:
        result = run_demo(options, say=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("interrupted: every process the demo started has been stopped")
        return 130
    except Exception as error:  # the CLI reports; the traceback is in -v mode
        print(f"error: {error}", file=sys.stderr)
        if args.verbose:
            raise
        return 1
    print()
    print(summary_table(result))
    print(f"report: {options.out / 'report.html'}")
    return result.exit_code
