"""Run a load-test scenario end to end and return its verdict.

:func:`run_load_test` starts the stack unless it is given one (a
:class:`~loadtests.stack.Stack` it may fault, or the URLs of a running one),
scrapes the service's ``/metrics``, runs Locust headless in its own process
(``--processes N`` for a distributed run), carries out the scenario's fault
schedule from this process while Locust runs, reports progress, scrapes again,
judges the run and writes the report folder::

    report/
      verdict.json    the verdict (see loadtests.verdict)
      summary.txt     the same, as a table
      locust.html     Locust's own report (rounded percentiles)
      locust_stats.json  Locust's final totals
      locust.log      Locust's log
      metrics.prom    the service's /metrics at the end of the run
      samples/        every request, unrounded, one file per Locust process

It stops what it started, also on Ctrl-C, and undoes faults it switched on
(clears the simulator's faults, starts Redis again) even when the run breaks.
Every run is bounded in time: Locust's ``-t``, plus a hard limit on its
process.

Example::

    verdict = run_load_test("smoke", report_dir=Path("build/loadtest/smoke"))
    sys.exit(verdict.exit_code)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from loadtests import _pids
from loadtests._checks import RunFacts
from loadtests._samples import STARTED_FILE, read_samples, sample_files
from loadtests._scrape import Scrape, ScrapeError, fetch
from loadtests.scenarios import FaultStep, Scenario, get
from loadtests.servers import LOOPBACK, ServerError, free_port
from loadtests.stack import Stack, StackError, StackUrls, send_faults
from loadtests.verdict import FaultEvent, Verdict, judge, write_report
from loadtests.workload import Workload

logger = logging.getLogger(__name__)

#: The Locust file, run by path: importing it here would patch this process
#: with gevent.
LOCUSTFILE: Final = Path(__file__).resolve().with_name("locustfile.py")
#: Seconds Locust may take beyond the run's duration to start and stop.
STARTUP_AND_SHUTDOWN: Final = 60.0
_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")
_HIT = ("building_cache_operations_total", "hit")
_MISS = ("building_cache_operations_total", "miss")


class LoadTestError(ServerError):
    """A load test could not be run: bad parameters, or Locust broke."""


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands, reported every few seconds while Locust runs.

    Attributes:
        elapsed: Seconds since the load started.
        duration: The run's duration.
        rate_per_minute: Requests per minute the service handled since the
            last report (from its validation counter); None before the first.
        hit_rate: Cache hit rate since the load started; None before any lookup.
        requests: Requests the service handled since the load started.
        event: A fault step carried out since the last report, if any.
    """

    elapsed: float
    duration: float
    rate_per_minute: float | None
    hit_rate: float | None
    requests: int
    event: str | None = None

    def line(self) -> str:
        """Render as one line for a terminal."""
        rate = "-" if self.rate_per_minute is None else f"{self.rate_per_minute:.0f}"
        hit = "-" if self.hit_rate is None else f"{self.hit_rate:.1%}"
        text = (
            f"{self.elapsed:5.0f}/{self.duration:.0f} s  {self.requests:6d} requests"
            f"  {rate:>5} /min  hit rate {hit}"
        )
        return text if self.event is None else f"{text}  [{self.event}]"


@dataclass
class _Faults:
    """Carries out a fault schedule and remembers what to undo."""

    steps: tuple[FaultStep, ...]
    duration: float
    stack: Stack | None
    directory_url: str
    done: list[FaultEvent] = field(default_factory=list)
    windows: list[tuple[float, float | None]] = field(default_factory=list)
    simulator_touched: bool = False
    redis_stopped: bool = False

    def due(self, started_at: float, now: float) -> list[FaultStep]:
        return [
            step
            for step in self.steps[len(self.done) :]
            if now >= started_at + step.at * self.duration
        ]

    def run(self, step: FaultStep, started_at: float) -> FaultEvent:
        now = time.time()
        try:
            self._apply(step)
        except (ServerError, OSError) as error:
            event = FaultEvent(now, now - started_at, step.what(), False, str(error))
            logger.warning("fault step failed: %s: %s", step.describe(), error)
        else:
            event = FaultEvent(now, now - started_at, step.what())
            logger.info("fault step done: %s", step.describe())
        self.done.append(event)
        if step.starts_fault:
            self.windows.append((now, None))
        elif self.windows and self.windows[-1][1] is None:
            self.windows[-1] = (self.windows[-1][0], now)
        return event

    def _apply(self, step: FaultStep) -> None:
        if step.action == "set_faults":
            self.simulator_touched = True
            send_faults(
                self.directory_url, "PUT", json.dumps(dict(step.faults)).encode()
            )
        elif step.action == "clear_faults":
            send_faults(self.directory_url, "DELETE", None)
        elif step.action == "stop_redis":
            if self.stack is None:
                raise StackError("no Stack to stop Redis in")
            self.redis_stopped = True
            self.stack.stop_redis()
        elif step.action == "start_redis":
            if self.stack is None:
                raise StackError("no Stack to start Redis in")
            self.stack.start_redis()
            self.redis_stopped = False

    def undo(self) -> None:
        """Leave the stack as found: faults cleared, Redis running."""
        if self.simulator_touched:
            with contextlib.suppress(ServerError, OSError):
                send_faults(self.directory_url, "DELETE", None)
        if self.redis_stopped and self.stack is not None:
            with contextlib.suppress(ServerError, OSError):
                self.stack.start_redis()
            self.redis_stopped = False

    def closed_windows(self, end: float) -> tuple[tuple[float, float], ...]:
        return tuple(
            (start, end if stop is None else stop) for start, stop in self.windows
        )


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in _LOOPBACK_HOSTS:
        raise LoadTestError(
            f"load tests only target this machine (loopback), got {url}"
        )


def _locust_argv(
    *,
    service_url: str,
    users: int,
    spawn_rate: float,
    duration: int,
    report_dir: Path,
    workload: Workload,
    user_interval: float,
    expected_status: Mapping[str, int],
    processes: int,
) -> list[str]:
    argv = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", service_url,
        "--users", str(users),
        "--spawn-rate", f"{spawn_rate:g}",
        "--run-time", f"{duration}s",
        "--only-summary",
        "--html", str(report_dir / "locust.html"),
        "--json-file", str(report_dir / "locust_stats"),
        "--bdobs-workload", json.dumps(workload.to_dict(), sort_keys=True),
        "--bdobs-samples-dir", str(report_dir / "samples"),
        "--bdobs-user-interval", f"{user_interval:g}",
        "--bdobs-expected", json.dumps(dict(expected_status), sort_keys=True),
    ]  # fmt: skip
    if processes > 1:
        # The master would listen on every interface and on port 5557 unless told.
        port = free_port()
        argv += [
            "--processes", str(processes),
            "--master-bind-host", LOOPBACK,
            "--master-bind-port", str(port),
            "--master-host", LOOPBACK,
            "--master-port", str(port),
        ]  # fmt: skip
    return argv


def _locust_totals(report_dir: Path) -> dict[str, int] | None:
    try:
        entries = json.loads((report_dir / "locust_stats.json").read_text())
    except (OSError, ValueError):
        return None
    return {
        "requests": sum(int(entry.get("num_requests", 0)) for entry in entries),
        "failures": sum(int(entry.get("num_failures", 0)) for entry in entries),
    }


def _prepare(report_dir: Path) -> None:
    """Empty the report folder of an earlier run's files (only those)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    samples = report_dir / "samples"
    for path in sample_files(samples):
        path.unlink()
    (samples / STARTED_FILE).unlink(missing_ok=True)
    for name in (
        "verdict.json", "summary.txt", "locust.html", "locust_stats.json",
        "locust.log", "metrics.prom",
    ):  # fmt: skip
        (report_dir / name).unlink(missing_ok=True)


def _load_started(report_dir: Path) -> float | None:
    try:
        return float((report_dir / "samples" / STARTED_FILE).read_text())
    except (OSError, ValueError):
        return None


def _progress(
    first: Scrape, previous: Scrape, current: Scrape, started_at: float, duration: float
) -> Progress:
    def total(scrape: Scrape, metric: str, label: str | None = None) -> float:
        return sum(
            value
            for name, labels, value in scrape.samples
            if name == metric and (label is None or labels.get("operation") == label)
        )

    handled = total(current, "building_validations_total") - total(
        first, "building_validations_total"
    )
    step = total(current, "building_validations_total") - total(
        previous, "building_validations_total"
    )
    # The first scrape precedes Locust's start-up: count from the load's start.
    seconds = current.at - max(previous.at, started_at)
    hits = total(current, *_HIT) - total(first, *_HIT)
    misses = total(current, *_MISS) - total(first, *_MISS)
    return Progress(
        elapsed=max(0.0, current.at - started_at),
        duration=duration,
        rate_per_minute=step / seconds * 60 if seconds > 0 else None,
        hit_rate=hits / (hits + misses) if hits + misses > 0 else None,
        requests=round(handled),
    )


def run_load_test(
    scenario: Scenario | str,
    *,
    report_dir: Path,
    duration: float | None = None,
    rate_per_minute: float | None = None,
    users: int | None = None,
    processes: int = 1,
    workload: Workload | None = None,
    stack: Stack | None = None,
    urls: StackUrls | None = None,
    stack_options: Mapping[str, Any] | None = None,
    progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 5.0,
) -> Verdict:
    """Run a scenario and return its verdict; see the module docstring.

    Args:
        scenario: The scenario, or its name.
        report_dir: Where the report goes; earlier report files are replaced.
        duration: Seconds of load; the scenario's default unless given.
        rate_per_minute: Requests per minute; the scenario's default unless given.
        users: Locust users; enough for the rate at the scenario's per-user
            interval unless given (then the interval follows from the rate).
        processes: Locust processes running users; above 1 runs Locust
            distributed (``--processes N``, a master and N workers).
        workload: The ids to ask for; the scenario's own unless given.
        stack: A started stack to load and fault; the caller stops it.
        urls: The URLs of a running stack to load instead. Simulator faults go
            to its directory URL; Redis faults need ``stack``.
        stack_options: Keyword arguments of the :class:`Stack` this run
            starts when given neither ``stack`` nor ``urls``.
        progress: Called with a :class:`Progress` every ``progress_interval``
            seconds and after each fault step.
        progress_interval: Seconds between progress reports and scrapes.

    Raises:
        KeyError: No scenario by that name.
        LoadTestError: Bad parameters, a stack that cannot be faulted as the
            scenario needs, or Locust failing to run.
        StackError: The stack did not start.
    """
    chosen = get(scenario) if isinstance(scenario, str) else scenario
    asked = duration if duration is not None else chosen.duration
    rate = rate_per_minute if rate_per_minute is not None else chosen.rate_per_minute
    if not (math.isfinite(asked) and math.isfinite(rate)) or asked <= 0 or rate <= 0:
        raise LoadTestError(
            f"duration and rate must be finite and > 0, got {asked} s and {rate}/min"
        )
    seconds = math.ceil(asked)
    if processes < 1:
        raise LoadTestError(f"processes must be >= 1, got {processes}")
    user_count = users if users is not None else chosen.users_for(rate)
    if user_count < processes:
        raise LoadTestError(f"{user_count} users cannot fill {processes} processes")
    if user_count < 1:
        raise LoadTestError(f"users must be >= 1, got {user_count}")
    interval = user_count / (rate / 60)
    chosen_workload = workload or chosen.workload
    if stack is not None and urls is not None:
        raise LoadTestError("give a stack or its urls, not both")
    if chosen.needs_simulator and urls is not None and not urls.directory_url:
        raise LoadTestError(
            f"scenario {chosen.name!r} sets simulator faults: give the "
            "simulator's URL with the service's"
        )
    if chosen.needs_own_redis and urls is not None:
        raise LoadTestError(
            f"scenario {chosen.name!r} stops and starts Redis: it needs a stack "
            "this run starts, or a Stack object, not just URLs"
        )

    # Absolute, since Locust runs inside this folder and is told file paths.
    report_dir = report_dir.resolve()
    _prepare(report_dir)
    own_stack: Stack | None = None
    if urls is None:
        if stack is None:
            options = {
                "prometheus": False,
                "simulator_latency": chosen.simulator_latency,
                "simulator_seed": chosen_workload.dataset_seed,
                "simulator_size": chosen_workload.dataset_size,
                **(stack_options or {}),
            }
            own_stack = stack = Stack(report_dir / "stack", **options)
            logger.info("starting the stack in %s", own_stack.workdir)
            own_stack.start()
        urls = stack.urls
    try:
        _check_loopback(urls.service_url)
        return _run(
            chosen,
            chosen_workload,
            urls=urls,
            stack=stack,
            report_dir=report_dir,
            seconds=seconds,
            rate=rate,
            users=user_count,
            interval=interval,
            processes=processes,
            progress=progress,
            progress_interval=progress_interval,
        )
    finally:
        if own_stack is not None:
            own_stack.stop()


def _run(
    scenario: Scenario,
    workload: Workload,
    *,
    urls: StackUrls,
    stack: Stack | None,
    report_dir: Path,
    seconds: int,
    rate: float,
    users: int,
    interval: float,
    processes: int,
    progress: Callable[[Progress], None] | None,
    progress_interval: float,
) -> Verdict:
    faults = _Faults(scenario.faults, seconds, stack, urls.directory_url)
    argv = _locust_argv(
        service_url=urls.service_url,
        users=users,
        spawn_rate=rate / 60,
        duration=seconds,
        report_dir=report_dir,
        workload=workload,
        user_interval=interval,
        expected_status=scenario.expected_status,
        processes=processes,
    )
    first = fetch(urls.metrics_url)
    scrapes = [first]
    log_path = report_dir / "locust.log"
    logger.info("running locust: %s", " ".join(argv))
    with log_path.open("ab") as log:
        # Its own session: Ctrl-C in a terminal reaches this process only,
        # which stops Locust in order; its forked workers share the session.
        locust = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=report_dir,
            start_new_session=True,
        )
        try:
            started_at = _watch(
                locust, faults, scrapes, urls, report_dir, seconds,
                progress, progress_interval,
            )  # fmt: skip
        finally:
            _stop(locust)
            faults.undo()

    final = fetch(urls.metrics_url)
    scrapes.append(final)
    (report_dir / "metrics.prom").write_text(final.text)
    if locust.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise LoadTestError(
            f"locust exited with {locust.returncode}; see {log_path}:\n{tail}"
        )
    samples = read_samples(report_dir / "samples")
    end = max((sample.end for sample in samples), default=time.time())
    facts = RunFacts(
        samples=samples,
        scrapes=scrapes,
        duration=seconds,
        rate_per_minute=rate,
        started_at=started_at,
        fault_windows=faults.closed_windows(end),
    )
    verdict = judge(
        scenario,
        workload,
        facts,
        users=users,
        processes=processes,
        fault_log=faults.done,
        locust_totals=_locust_totals(report_dir),
    )
    write_report(verdict, report_dir)
    return verdict


def _stop(locust: subprocess.Popen[bytes]) -> None:
    """Stop Locust by its process id (SIGTERM, then SIGKILL), and its workers."""
    if locust.poll() is None:
        # SIGTERM makes Locust shut down in order: stop users, write reports,
        # stop its workers.
        locust.send_signal(signal.SIGTERM)
        try:
            locust.wait(15)
        except subprocess.TimeoutExpired:
            locust.kill()
            locust.wait(5)
    _pids.kill_session_leftovers(locust.pid)


def _watch(
    locust: subprocess.Popen[bytes],
    faults: _Faults,
    scrapes: list[Scrape],
    urls: StackUrls,
    report_dir: Path,
    seconds: int,
    progress: Callable[[Progress], None] | None,
    progress_interval: float,
) -> float:
    """Wait for Locust to end, faulting and reporting on the way.

    Returns:
        The wall-clock time the load started.
    """
    deadline = time.monotonic() + seconds + STARTUP_AND_SHUTDOWN
    started_at: float | None = None
    next_report = time.monotonic() + progress_interval
    previous = scrapes[0]
    while locust.poll() is None:
        if time.monotonic() > deadline:
            raise LoadTestError(
                f"locust did not finish within {seconds + STARTUP_AND_SHUTDOWN:.0f} s; "
                f"see {report_dir / 'locust.log'}"
            )
        if started_at is None:
            started_at = _load_started(report_dir)
        event = None
        if started_at is not None:
            for step in faults.due(started_at, time.time()):
                done = faults.run(step, started_at)
                event = done.action if done.ok else f"{done.action} FAILED"
        if started_at is not None and (event or time.monotonic() >= next_report):
            next_report = time.monotonic() + progress_interval
            try:
                current = fetch(urls.metrics_url)
            except ScrapeError as error:
                logger.warning("progress scrape failed: %s", error)
            else:
                scrapes.append(current)
                if progress is not None:
                    report = _progress(
                        scrapes[0], previous, current, started_at, seconds
                    )
                    progress(replace(report, event=event))
                previous = current
        time.sleep(0.1)
    return started_at if started_at is not None else time.time()
