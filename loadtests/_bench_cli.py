"""``bdobs bench``: time the cached client against raw Redis and its peers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``bench`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="benchmark the cache against raw Redis, peer libraries and no cache",
        description="Starts its own redis-server, simulator and service on "
        "loopback ports, times every case interleaved over several rounds and "
        "prints medians with their spread, ratios and the goals they meet.",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per case (7)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer operations and a 5 s service run"
    )
    parser.add_argument(
        "--no-service", action="store_true", help="skip the service-level benchmark"
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="skip cashews and aiocache"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from loadtests.bench import format_report, run_bench

    if args.rounds < 3:
        print(
            "error: --rounds must be at least 3 for a median and a spread",
            file=sys.stderr,
        )
        return 2
    scale = 0.1 if args.quick else 1.0
    print("benchmarking: starting redis-server and the simulator on loopback ...")
    report = run_bench(
        rounds=args.rounds,
        ops=int(2000 * scale),
        near_ops=int(50_000 * scale),
        miss_ops=200 if not args.quick else 50,
        peers=not args.no_peers,
        service=not args.no_service,
        service_duration=5.0 if args.quick else 10.0,
    )
    print(format_report(report), end="")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(report.to_json())
        print(f"wrote {args.json}")
    missed = [goal for goal in report.goals if not goal.met]
    if missed:
        print(
            f"exit 1: {len(missed)} of {len(report.goals)} goals missed on this "
            "machine in this run (see [MISS] above); timing goals vary with load "
            "and machine, so compare medians over several runs"
        )
        return 1
    print(f"all {len(report.goals)} goals met")
    return 0
