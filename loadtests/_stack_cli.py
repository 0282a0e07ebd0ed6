"""``bdobs stack up|down|status``: the system under test on loopback ports."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadtests.stack import DEFAULT_WORKDIR, STATE_FILE, scrape_config

_URL_ORDER = (
    "service_url",
    "metrics_url",
    "directory_url",
    "redis_url",
    "prometheus_url",
    "prometheus_rules_dir",
)


def register(subparsers: Any) -> None:
    """Add the ``stack`` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "stack",
        help="start or stop Redis, the simulator, the service and Prometheus",
        description="Runs the whole system under test on free 127.0.0.1 ports: "
        "redis-server, the Building Directory simulator, the reference service "
        "and a Prometheus scraping it. State and logs go to the work folder.",
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    actions = parser.add_subparsers(title="actions", metavar="ACTION")

    up = actions.add_parser(
        "up",
        help="start the stack (foreground until Ctrl-C, or --detach)",
        description="Start every part not given as an existing server, wait "
        "until each is healthy, print the URLs and write them to state.json.",
    )
    _add_workdir(up)
    up.add_argument(
        "--detach",
        action="store_true",
        help="return once the stack is up; stop it with 'bdobs stack down'",
    )
    up.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL") or None,
        help="use this Redis instead of starting one (default: $REDIS_URL)",
    )
    up.add_argument(
        "--directory-url",
        default=os.environ.get("BUILDING_DIRECTORY_URL") or None,
        help="use this Building Directory instead of the simulator "
        "(default: $BUILDING_DIRECTORY_URL)",
    )
    up.add_argument(
        "--prometheus-url",
        default=os.environ.get("PROMETHEUS_URL") or None,
        help="use this Prometheus instead of starting one; prints the scrape "
        "job to add to it (default: $PROMETHEUS_URL)",
    )
    up.add_argument(
        "--no-prometheus", action="store_true", help="run without any Prometheus"
    )
    up.add_argument("--workers", type=int, default=1, help="service workers (1)")
    up.add_argument("--service-port", type=int, help="service port (a free one)")
    up.add_argument(
        "--scrape-interval", default="2s", help="Prometheus scrape interval (2s)"
    )
    up.add_argument(
        "--latency-ms",
        type=float,
        default=150.0,
        help="simulator mean latency; 150 gives 100-200 ms plus a tail (150)",
    )
    up.add_argument("--seed", type=int, default=7, help="simulator data seed (7)")
    up.add_argument("--size", type=int, default=2000, help="simulator buildings")
    up.add_argument(
        "--rules-dir", type=Path, help="rule files for the stack's Prometheus"
    )
    up.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per part to come up"
    )
    up.set_defaults(handler=_up)

    down = actions.add_parser(
        "down",
        help="stop a stack started with 'bdobs stack up'",
        description="Stop every process recorded in state.json (after checking "
        "each is still the process that was started) and remove the file.",
    )
    _add_workdir(down)
    down.set_defaults(handler=_down)

    status = actions.add_parser("status", help="show a stack's URLs and processes")
    _add_workdir(status)
    status.set_defaults(handler=_status)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_workdir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help=f"state, logs and data folders ({DEFAULT_WORKDIR})",
    )


class _Stop(Exception):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) asked the foreground stack to stop."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def _up(args: argparse.Namespace) -> int:
    if args.detach:
        return _up_detached(args)
    from loadtests.stack import Stack, StackError

    try:
        stack = Stack(
            args.workdir,
            redis_url=args.redis_url,
            directory_url=args.directory_url,
            prometheus_url=args.prometheus_url,
            prometheus=not args.no_prometheus,
            service_workers=args.workers,
            service_port=args.service_port,
            scrape_interval=args.scrape_interval,
            simulator_latency=args.latency_ms / 1000,
            simulator_seed=args.seed,
            simulator_size=args.size,
            rules_dir=args.rules_dir,
            timeout=args.timeout,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    previous = {
        signum: signal.signal(signum, _raise_stop)
        # SIGINT too: a shell starts background jobs with SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    code = 0
    started = False
    try:
        print(f"starting the stack in {stack.workdir} ...", flush=True)
        urls = stack.start()
        started = True
        state = stack.write_state(owner=True)
        _print_urls(urls.to_dict(), state)
        if args.prometheus_url:
            print("add this scrape job to your Prometheus:")
            print(stack.scrape_config())
        print("running; Ctrl-C or 'bdobs stack down' stops it", flush=True)
        while not (dead := stack.dead_parts()):
            time.sleep(0.5)
        print(
            f"error: {', '.join(dead)} exited; logs in {stack.workdir}",
            file=sys.stderr,
        )
        code = 1
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except _Stop:
        if started:
            print("stopping ...", flush=True)
        else:
            print("interrupted while starting; stopping what was started")
            code = 130
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave processes.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stack.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if started:
        print("stopped", flush=True)
    return code


def _print_urls(urls: dict[str, str | None], state: Path) -> None:
    for name in _URL_ORDER:
        if urls.get(name) is not None:
            print(f"  {name:<22} {urls[name]}")
    print(f"  {'state':<22} {state}")


def _forwarded(args: argparse.Namespace) -> list[str]:
    """Rebuild the ``up`` options for the detached process."""
    argv = ["--workdir", str(args.workdir.resolve())]
    options = {
        "--redis-url": args.redis_url,
        "--directory-url": args.directory_url,
        "--prometheus-url": args.prometheus_url,
        "--workers": args.workers,
        "--service-port": args.service_port,
        "--scrape-interval": args.scrape_interval,
        "--latency-ms": args.latency_ms,
        "--seed": args.seed,
        "--size": args.size,
        "--rules-dir": None if args.rules_dir is None else args.rules_dir.resolve(),
        "--timeout": args.timeout,
    }
    for option, value in options.items():
        if value is not None:
            argv += [option, str(value)]
    if args.no_prometheus:
        argv.append("--no-prometheus")
    return argv


def _up_detached(args: argparse.Namespace) -> int:
    from loadtests.stack import read_state

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "stack.log"
    argv = [sys.executable, "-m", "bdobs.cli", "stack", "up", *_forwarded(args)]
    earlier_log = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        owner = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    print(f"starting the stack in {workdir} (log: {log_path}) ...", flush=True)
    deadline = time.monotonic() + 4 * args.timeout + 30
    while time.monotonic() < deadline:
        state = read_state(workdir)
        if state is not None and (state.get("owner") or {}).get("pid") == owner.pid:
            _print_urls(state["urls"], workdir / STATE_FILE)
            if args.prometheus_url:
                print("add this scrape job to your Prometheus:")
                print(scrape_config(state["urls"]["service_url"], args.scrape_interval))
            down = "bdobs stack down"
            if workdir != DEFAULT_WORKDIR.resolve():
                down += f" --workdir {shlex.quote(str(args.workdir))}"
            print(f"detached (pid {owner.pid}); stop it with '{down}'")
            return 0
        if owner.poll() is not None:
            with log_path.open("rb") as log:
                log.seek(earlier_log)
                tail = log.read().decode(errors="replace").splitlines()[-20:]
            print("error: the stack did not come up:", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)
            return 1
        time.sleep(0.2)
    owner.terminate()
    owner.wait(30)
    print(f"error: the stack did not come up in time; see {log_path}", file=sys.stderr)
    return 1


def _down(args: argparse.Namespace) -> int:
    from loadtests.stack import StackError, stop_from_state

    try:
        stopped = stop_from_state(args.workdir)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not stopped:
        print(f"nothing running from {args.workdir}")
    else:
        print(f"stopped: {', '.join(stopped)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from loadtests.stack import StackError, read_state, running_parts

    try:
        state = read_state(args.workdir)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if state is None:
        print(f"no stack in {args.workdir}")
        return 1
    _print_urls(state["urls"], args.workdir / STATE_FILE)
    running = running_parts(state)
    print(f"running: {', '.join(running) if running else 'nothing'}")
    return 0 if running else 1
