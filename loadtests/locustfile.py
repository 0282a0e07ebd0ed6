"""Locust users that create requests through the reference service.

Started by :mod:`loadtests.runner` (``bdobs loadtest run``), never imported by
the test suite: importing Locust patches the process with gevent. Each user
sends ``POST /requests`` once every ``--bdobs-user-interval`` seconds
(``constant_throughput``) for building ids drawn from the workload given as
JSON in ``--bdobs-workload``, each user from its own stream of the seed.

Requests are named by workload class (``POST /requests [unknown]``), and an
outcome expected for the class (404 for an unknown id, 422 for an inactive
building) is marked a success: Locust's failures are the unexpected outcomes
only.

Every process that runs users appends each request, unrounded, to its own
``samples-<pid>.csv`` in ``--bdobs-samples-dir`` (see
:mod:`loadtests._samples`). The master (or the single process) writes the
wall-clock time the load started to ``load-started`` in the same folder, so
the runner can time its fault schedule. Custom arguments reach the workers
with the master's spawn message, so distributed runs need nothing more.

A user waiting 4 s or more between requests closes its connection after each
one, rather than racing uvicorn's 5 s keep-alive timeout.

The process exit code is 0 unless a user raised an exception: failed requests
are for the verdict to judge, not a crash of the load generator.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import HttpUser, constant_throughput, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

from loadtests._samples import STARTED_FILE, SampleWriter
from loadtests.workload import (
    EXPECTED_STATUS,
    Workload,
    WorkloadSampler,
    unexpected_outcome,
)

logger = logging.getLogger(__name__)

#: Exit code of a run in which a user raised an exception.
USER_ERROR_EXIT = 3

#: Users that wait this long between requests open a fresh connection each
#: time: uvicorn closes a connection idle for 5 s, and a request sent on it
#: just as it closes fails without reaching the service.
FRESH_CONNECTION_AFTER = 4.0

_streams = itertools.count()
_writer: SampleWriter | None = None
_environment: Environment | None = None


def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--bdobs-workload",
        default="{}",
        help="the workload as JSON (loadtests.workload.Workload.to_dict())",
    )
    parser.add_argument(
        "--bdobs-samples-dir", default="", help="folder of the raw samples files"
    )
    parser.add_argument(
        "--bdobs-user-interval",
        type=float,
        default=1.0,
        help="seconds between two requests of one user",
    )
    parser.add_argument(
        "--bdobs-expected",
        default="{}",
        help="expected status per request class, as JSON; defaults otherwise",
    )
    parser.add_argument(
        "--bdobs-request-timeout",
        type=float,
        default=10.0,
        help="seconds a user waits for an answer",
    )


def _options(environment: Environment) -> Any:
    options = environment.parsed_options
    if options is None:
        raise RuntimeError("this locustfile must be run by the locust command")
    return options


def _samples_writer(environment: Environment) -> SampleWriter | None:
    """Return this process's writer; opened on first use, after any fork."""
    global _writer
    folder = _options(environment).bdobs_samples_dir
    if not folder:
        return None
    if _writer is None or _writer.path.name != f"samples-{os.getpid()}.csv":
        _writer = SampleWriter(Path(folder))
    return _writer


def _record(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    start_time: float | None = None,
    response: Any = None,
    **_kwargs: Any,
) -> None:
    environment = _environment
    if environment is None:
        return
    writer = _samples_writer(environment)
    if writer is None:
        return
    status = getattr(response, "status_code", 0) or 0
    started = start_time if start_time is not None else time.time()
    writer.write(started, response_time, int(status), exception is None, name)


def _remember(environment: Environment, **_kwargs: Any) -> None:
    global _environment
    _environment = environment


def _mark_start(environment: Environment, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    folder = _options(environment).bdobs_samples_dir
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / STARTED_FILE).write_text(f"{time.time():.6f}\n")


def _exit_code(environment: Environment, **_kwargs: Any) -> None:
    if _writer is not None:
        _writer.close()
    runner = environment.runner
    crashed = runner is not None and bool(runner.exceptions)
    environment.process_exit_code = USER_ERROR_EXIT if crashed else 0


class RequestServiceUser(HttpUser):
    """Creates requests for buildings drawn from the workload."""

    def on_start(self) -> None:
        """Read the options and open this user's stream of the workload."""
        options = _options(self.environment)
        workload = Workload.from_dict(json.loads(options.bdobs_workload))
        runner = self.environment.runner
        worker = getattr(runner, "worker_index", 0) if runner is not None else 0
        self._sampler = WorkloadSampler(workload, worker * 100_000 + next(_streams))
        self._expected = {**EXPECTED_STATUS, **json.loads(options.bdobs_expected)}
        self._timeout = options.bdobs_request_timeout
        interval = options.bdobs_user_interval
        self._pace = constant_throughput(1 / interval)
        self._headers = (
            {"Connection": "close"} if interval >= FRESH_CONNECTION_AFTER else {}
        )

    def wait_time(self) -> float:
        """Wait so that this user sends one request per interval."""
        return float(self._pace(self))

    @task
    def create_request(self) -> None:
        """Send one ``POST /requests`` and judge its outcome by its class."""
        draw = self._sampler.draw()
        body = {
            "building_id": draw.building_id,
            "title": "Leaking radiator",
            "description": "Load test request",
        }
        with self.client.post(
            "/requests",
            json=body,
            headers=self._headers,
            name=draw.name,
            catch_response=True,
            timeout=self._timeout,
        ) as response:
            status = int(response.status_code or 0)
            problem = unexpected_outcome(draw.request_class, status, self._expected)
            if problem is None:
                response.success()
            else:
                response.failure(problem)


def _listen(hook: Any, handler: Callable[..., None]) -> None:
    # Locust's EventHook.add_listener carries no type hints.
    hook.add_listener(handler)


_listen(events.init_command_line_parser, _arguments)
_listen(events.request, _record)
_listen(events.init, _remember)
_listen(events.test_start, _mark_start)
_listen(events.quitting, _exit_code)
