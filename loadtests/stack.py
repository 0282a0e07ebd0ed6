"""The whole system under test on loopback: Redis, simulator, service, Prometheus.

:class:`Stack` starts each part as a child process on a free port bound to
127.0.0.1, waits until each is healthy, writes the URLs, process ids and log
paths to ``state.json`` in its folder, and stops by process id everything it
started::

    with Stack(Path("build/stack"), simulator_latency=0) as urls:
        httpx.post(f"{urls.service_url}/requests", json={"building_id": ...})

Any part can be an existing server instead (``redis_url``, ``directory_url``,
``prometheus_url``); the stack then starts only the others. Its Prometheus
scrapes the service as job ``building-directory`` and loads every ``*.yml``
rule file of its rules folder.

:func:`stop_from_state` stops a stack from another process, such as
``bdobs stack down``: it checks that each process id still belongs to the
process that was started (same start time and command line) before it sends
any signal, so a recycled process id is never hit.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from instrumentation.config import ENVIRONMENT_VARIABLES
from loadtests import _pids
from loadtests.servers import (
    LOOPBACK,
    ManagedProcess,
    PrometheusServer,
    RedisServer,
    ServerError,
    free_port,
    http_ok,
    wait_until,
)

logger = logging.getLogger(__name__)

#: The ``job`` label of the service's scrape target, as the alert rules and
#: dashboards select it by default.
JOB_NAME: Final = "building-directory"
STATE_FILE: Final = "state.json"
DEFAULT_WORKDIR: Final = Path("build/stack")

_PARTS: Final = ("redis", "simulator", "service", "prometheus")


class StackError(ServerError):
    """A part of the stack did not start, or the stack cannot do what was asked."""


@dataclass(frozen=True, slots=True)
class StackUrls:
    """Where each part of a running stack answers.

    Attributes:
        redis_url: The Redis the service caches in.
        directory_url: The Building Directory API (the simulator unless given).
        service_url: The reference request service.
        prometheus_url: The Prometheus scraping the service; None when the
            stack runs without one.
        prometheus_rules_dir: The folder of rule files that Prometheus loads,
            when the stack started it.
    """

    redis_url: str
    directory_url: str
    service_url: str
    prometheus_url: str | None
    prometheus_rules_dir: Path | None

    @property
    def metrics_url(self) -> str:
        """The service's ``/metrics`` endpoint."""
        return f"{self.service_url}/metrics"

    def to_dict(self) -> dict[str, str | None]:
        """Return the URLs as plain strings, for the state file and printing."""
        rules = self.prometheus_rules_dir
        return {
            "redis_url": self.redis_url,
            "directory_url": self.directory_url,
            "service_url": self.service_url,
            "metrics_url": self.metrics_url,
            "prometheus_url": self.prometheus_url,
            "prometheus_rules_dir": None if rules is None else str(rules),
        }


class Stack:
    """Redis, the simulator, the service and Prometheus, started and stopped as one.

    Args:
        workdir: The stack's folder: state file, logs, data folders.
        redis_url: Use this Redis instead of starting one.
        directory_url: Use this Building Directory instead of the simulator.
        prometheus_url: Use this Prometheus instead of starting one (it must be
            told to scrape the service: see :meth:`scrape_config`).
        prometheus: Whether to run a Prometheus at all.
        service_workers: uvicorn workers of the service (one port, one target).
        service_port: The service's port; a free one unless given.
        scrape_interval: How often Prometheus scrapes the service.
        simulator_latency: Mean latency of the simulator in seconds (0.15
            gives 100-200 ms plus a tail); 0 answers at once.
        simulator_seed: Seed of the simulator's data set.
        simulator_size: Number of buildings in the simulator.
        service_env: More environment variables for the service; they win
            over the stack's own (``{"REDIS_URL": ""}`` runs it without cache).
            The client's variables of this process's environment are not
            passed on: the service's settings are the stack's and these.
        rules_dir: A folder of rule files for the stack's Prometheus, instead
            of its own (initially empty) rules folder.
        webhook_secret: The service's webhook secret; a random one unless given
            (or set in ``service_env``).
        timeout: Seconds each part may take to become healthy.
    """

    def __init__(
        self,
        workdir: Path = DEFAULT_WORKDIR,
        *,
        redis_url: str | None = None,
        directory_url: str | None = None,
        prometheus_url: str | None = None,
        prometheus: bool = True,
        service_workers: int = 1,
        service_port: int | None = None,
        scrape_interval: str = "2s",
        simulator_latency: float = 0.15,
        simulator_seed: int = 7,
        simulator_size: int = 2000,
        service_env: dict[str, str] | None = None,
        rules_dir: Path | None = None,
        webhook_secret: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if service_workers < 1:
            raise ValueError(f"service_workers must be >= 1, got {service_workers}")
        if not 0 <= simulator_latency <= 10:
            raise ValueError(
                f"simulator_latency is in seconds (0 to 10), got {simulator_latency}"
            )
        self.workdir = workdir.resolve()
        self.redis_url = redis_url
        self.directory_url = directory_url
        self.prometheus_url = prometheus_url
        self.prometheus = prometheus
        self.service_workers = service_workers
        self.service_port = service_port
        self.scrape_interval = scrape_interval
        self.simulator_latency = simulator_latency
        self.simulator_seed = simulator_seed
        self.simulator_size = simulator_size
        self.service_env = dict(service_env or {})
        self.rules_dir = None if rules_dir is None else rules_dir.resolve()
        self.webhook_secret = (
            webhook_secret
            or self.service_env.get("WEBHOOK_SECRET")
            or secrets.token_hex(16)
        )
        self.timeout = timeout
        self._redis: RedisServer | None = None
        self._redis_stopped = False
        self._processes: dict[str, ManagedProcess] = {}
        self._prometheus: PrometheusServer | None = None
        self._urls: StackUrls | None = None
        self._wrote_state = False
        self._started: dict[str, int] = {}

    @property
    def state_path(self) -> Path:
        """The state file: URLs, process ids and log paths."""
        return self.workdir / STATE_FILE

    @property
    def urls(self) -> StackUrls:
        """The URLs of the running stack.

        Raises:
            StackError: The stack is not running.
        """
        if self._urls is None:
            raise StackError("the stack is not running; call start() first")
        return self._urls

    def start(self) -> StackUrls:
        """Start every part that was not given, wait until healthy, write the state.

        Returns:
            Where each part answers.

        Raises:
            StackError: A part did not come up in time (named, with its log), or
                a stack started from the same folder is still running.
        """
        running = read_state(self.workdir)
        if running is not None and running_parts(running):
            raise StackError(
                f"a stack started from {self.workdir} is still running; "
                f"stop it first with 'bdobs stack down --workdir {self.workdir}'"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._urls = self._start_parts()
        except BaseException:
            self.stop()
            raise
        self.write_state()
        return self._urls

    def _start_parts(self) -> StackUrls:
        redis_url = self.redis_url
        if redis_url is not None:
            _check_given_redis(redis_url, min(self.timeout, 5.0))
        if self.directory_url is not None:
            _check_given_directory(self.directory_url, min(self.timeout, 5.0))
        if redis_url is None:
            redis = RedisServer(self.workdir / "redis")
            self._redis = redis
            _named("redis", redis.start, self.timeout, self._started)
            redis_url = redis.url

        directory_url = self.directory_url
        if directory_url is None:
            directory_url = self._start_simulator()

        service_url = self._start_service(redis_url, directory_url)

        prometheus_url = self.prometheus_url
        rules_dir: Path | None = None
        if prometheus_url is None and self.prometheus:
            prometheus = self._prometheus_server(service_url)
            self._prometheus = prometheus
            _named("prometheus", prometheus.start, self.timeout, self._started)
            prometheus_url = prometheus.url
            rules_dir = self.rules_dir or prometheus.rules_dir
        elif prometheus_url is not None:
            logger.info(
                "using the Prometheus at %s; add this scrape job to it:\n%s",
                prometheus_url,
                self.scrape_config(service_url),
            )
        return StackUrls(
            redis_url=redis_url,
            directory_url=directory_url.rstrip("/"),
            service_url=service_url,
            prometheus_url=prometheus_url,
            prometheus_rules_dir=rules_dir,
        )

    def _start_simulator(self) -> str:
        port = free_port()
        argv = [
            sys.executable, "-m", "loadtests.simulator",
            "--port", str(port),
            "--latency-ms", repr(self.simulator_latency * 1000),
            "--seed", str(self.simulator_seed),
            "--size", str(self.simulator_size),
        ]  # fmt: skip
        url = f"http://{LOOPBACK}:{port}"
        self._run_python("simulator", argv, url, env={})
        return url

    def _start_service(self, redis_url: str, directory_url: str) -> str:
        port = self.service_port or free_port()
        argv = [
            sys.executable, "-m", "loadtests.service",
            "--port", str(port),
            "--workers", str(self.service_workers),
            "--metrics-dir", str(self.workdir / "service-metrics"),
        ]  # fmt: skip
        # The client's variables of the caller's shell (CACHE_NEAR_SIZE,
        # REDIS_TIMEOUT, ...) stay out: a run depends only on what it is given.
        env = {
            **dict.fromkeys(ENVIRONMENT_VARIABLES, ""),
            "REDIS_URL": redis_url,
            "BUILDING_DIRECTORY_URL": directory_url,
            "WEBHOOK_SECRET": self.webhook_secret,
            **self.service_env,
        }
        url = f"http://{LOOPBACK}:{port}"
        self._run_python("service", argv, url, env=env)
        return url

    def _run_python(
        self, part: str, argv: list[str], url: str, *, env: dict[str, str]
    ) -> None:
        process = ManagedProcess(
            part,
            argv,
            log_path=self.workdir / f"{part}.log",
            env=env,
            cwd=Path.cwd(),
        )
        self._processes[part] = process
        process.start()
        if process.pid is not None:
            self._started[part] = process.pid
        try:
            wait_until(
                lambda: http_ok(f"{url}/healthz") or not process.alive(),
                timeout=self.timeout,
                what=f"the {part} at {url}",
                interval=0.1,
            )
        except ServerError:
            reason = f"did not answer {url}/healthz within {self.timeout:.0f} s"
        else:
            if process.alive():
                return
            reason = "exited early"
        raise StackError(
            f"{part} {reason}; last lines of {process.log_path}:\n{process.log_tail()}"
        )

    def _prometheus_server(self, service_url: str) -> PrometheusServer:
        rule_files: tuple[str, ...] = ("rules/*.yml",)
        if self.rules_dir is not None:
            rule_files = (str(self.rules_dir / "*.yml"),)
        data = self.workdir / "prometheus" / "data"
        # A fresh TSDB: series of an earlier stack would blur its hit rate.
        shutil.rmtree(data, ignore_errors=True)
        return PrometheusServer(
            self.workdir / "prometheus",
            scrape_targets=[service_url.removeprefix("http://")],
            scrape_interval=self.scrape_interval,
            job_name=JOB_NAME,
            rule_files=rule_files,
        )

    def scrape_config(self, service_url: str | None = None) -> str:
        """Return the Prometheus scrape job that an existing Prometheus needs."""
        return scrape_config(service_url or self.urls.service_url, self.scrape_interval)

    def started_pids(self) -> dict[str, int]:
        """Return the process id of every part this stack started, running or not."""
        return dict(self._started)

    def pids(self) -> dict[str, int]:
        """Return the process id of every part this stack started and runs."""
        found: dict[str, int] = {}
        if self._redis is not None and self._redis.pid and self._redis.alive():
            found["redis"] = self._redis.pid
        for part, process in self._processes.items():
            if process.pid is not None and process.alive():
                found[part] = process.pid
        prometheus = self._prometheus
        if prometheus is not None and prometheus.pid and prometheus.alive():
            found["prometheus"] = prometheus.pid
        return found

    def dead_parts(self) -> list[str]:
        """Return the parts this stack started that have exited unexpectedly."""
        dead = [
            part for part, process in self._processes.items() if not process.alive()
        ]
        if (
            self._redis is not None
            and not self._redis_stopped
            and not self._redis.alive()
        ):
            dead.insert(0, "redis")
        if self._prometheus is not None and not self._prometheus.alive():
            dead.append("prometheus")
        return dead

    def write_state(self, *, owner: bool = False) -> Path:
        """Write ``state.json``: URLs, processes, log paths, the webhook secret.

        Args:
            owner: Record this process as the one that owns the stack, so that
                :func:`stop_from_state` asks it to stop everything first.
        """
        processes = {part: _pids.identity(pid) for part, pid in self.pids().items()}
        logs = {part: str(path) for part, path in self._log_paths().items()}
        for part, entry in processes.items():
            entry["log"] = logs.get(part)
        state: dict[str, Any] = {
            "version": 1,
            "workdir": str(self.workdir),
            "urls": self.urls.to_dict(),
            "processes": processes,
            "owner": _pids.identity(os.getpid()) if owner else None,
            "webhook_secret": self.webhook_secret,
            "service_workers": self.service_workers,
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".tmp")
        # The file holds the webhook secret: readable by its owner only.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
            handle.write("\n")
        temporary.replace(self.state_path)
        self._wrote_state = True
        return self.state_path

    def _log_paths(self) -> dict[str, Path]:
        logs = {part: process.log_path for part, process in self._processes.items()}
        if self._redis is not None:
            logs["redis"] = self._redis.workdir / "redis.log"
        if self._prometheus is not None:
            logs["prometheus"] = self._prometheus.workdir / "prometheus.log"
        return logs

    def stop(self) -> None:
        """Stop every part this stack started, last started first, by process id."""
        leaders = list(self.pids().values())
        if self._prometheus is not None:
            self._prometheus.stop()
        for part in reversed(list(self._processes)):
            self._processes[part].stop(timeout=10.0)
        if self._redis is not None:
            self._redis.stop()
        for leader in leaders:
            _pids.kill_session_leftovers(leader)
        self._urls = None
        if self._wrote_state:
            self.state_path.unlink(missing_ok=True)
            self._wrote_state = False

    def stop_redis(self, *, kill: bool = False) -> None:
        """Stop the stack's Redis, to see the service degrade (fault injection).

        Args:
            kill: Kill it at once (SIGKILL) as a crash would, instead of a
                clean shutdown.

        Raises:
            StackError: The stack uses a Redis it did not start.
        """
        redis = self._own_redis()
        if kill:
            redis.kill()
        else:
            redis.stop()
        self._redis_stopped = True

    def start_redis(self) -> None:
        """Start the stack's Redis again on the same port, empty."""
        old = self._own_redis()
        old.stop()
        redis = RedisServer(old.workdir, port=old.port)
        self._redis = redis
        _named("redis", redis.start, self.timeout, self._started)
        self._redis_stopped = False
        if self._urls is not None:
            self.write_state()

    def _own_redis(self) -> RedisServer:
        if self._redis is None:
            raise StackError("this stack uses a Redis it did not start")
        return self._redis

    def set_faults(self, **faults: float | bool) -> dict[str, Any]:
        """Replace the simulator's faults (see :mod:`loadtests.simulator`).

        Args:
            **faults: Any of ``error_rate``, ``timeout_rate``, ``extra_latency``,
                ``down``, ``malformed_rate``, ``timeout_seconds``; the others
                are reset.

        Returns:
            The faults now in force.
        """
        return self._faults("PUT", json.dumps(faults).encode())

    def clear_faults(self) -> dict[str, Any]:
        """Switch every simulator fault off; return the faults now in force."""
        return self._faults("DELETE", None)

    def _faults(self, method: str, body: bytes | None) -> dict[str, Any]:
        if "simulator" not in self._processes:
            raise StackError("faults need the stack's own simulator")
        return send_faults(self.urls.directory_url, method, body)

    def __enter__(self) -> StackUrls:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def send_faults(directory_url: str, method: str, body: bytes | None) -> dict[str, Any]:
    """``PUT`` (with ``body``) or ``DELETE`` the simulator's faults.

    Returns:
        The faults now in force.

    Raises:
        StackError: The simulator refused them or did not answer.
    """
    request = urllib.request.Request(
        f"{directory_url}/_faults",
        data=body,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        reason = error.read().decode(errors="replace")
        raise StackError(f"the simulator refused the faults: {reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise StackError(f"the simulator did not answer: {error}") from error
    return answer


def _redacted(url: str) -> str:
    """Return ``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _check_given_redis(url: str, timeout: float) -> None:
    """Raise StackError unless the Redis given to the stack answers PING."""
    import asyncio

    from instrumentation import Settings
    from instrumentation._redis_client import REDIS_FAILURES, connect_one

    async def ping() -> None:
        # The client's own connection: the same URL forms, TLS and timeouts.
        client = connect_one(Settings(redis_url=url, redis_timeout=timeout))
        try:
            async with asyncio.timeout(timeout):
                await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except (*REDIS_FAILURES, ValueError) as error:
        raise StackError(
            f"the Redis given to the stack ({_redacted(url)}, from --redis-url or "
            f"$REDIS_URL) does not answer PING: {error or type(error).__name__}"
        ) from error


def _check_given_directory(url: str, timeout: float) -> None:
    """Raise StackError unless the Building Directory given answers HTTP at all."""
    probe = f"{url.rstrip('/')}/api/v1/buildings/{uuid.UUID(int=0)}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(probe, timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # any answer, 404 included, means it is there
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise StackError(
            f"the Building Directory given to the stack ({_redacted(url)}, from "
            f"--directory-url or $BUILDING_DIRECTORY_URL) does not answer: {error}"
        ) from error


def _named(
    part: str,
    start: Callable[[float], RedisServer | PrometheusServer],
    timeout: float,
    started: dict[str, int],
) -> None:
    """Run ``start(timeout)``, note the pid; on failure raise naming ``part``."""
    try:
        server = start(timeout)
    except ServerError as error:
        raise StackError(f"{part} did not come up: {error}") from error
    if server.pid is not None:
        started[part] = server.pid


# --------------------------------------------------------------------------
# Stopping a stack from another process
# --------------------------------------------------------------------------


def scrape_config(service_url: str, scrape_interval: str) -> str:
    """Return the scrape job an existing Prometheus needs for the service."""
    target = service_url.removeprefix("http://")
    return (
        "scrape_configs:\n"
        f"  - job_name: {JOB_NAME}\n"
        f"    scrape_interval: {scrape_interval}\n"
        "    static_configs:\n"
        f'      - targets: ["{target}"]\n'
    )


def read_state(workdir: Path = DEFAULT_WORKDIR) -> dict[str, Any] | None:
    """Return the state of the stack started from ``workdir``, or None."""
    try:
        state: dict[str, Any] = json.loads((workdir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise StackError(f"cannot read {workdir / STATE_FILE}: {error}") from error
    return state


def stop_from_state(
    workdir: Path = DEFAULT_WORKDIR, *, timeout: float = 20.0
) -> list[str]:
    """Stop the stack recorded in ``workdir``'s state file and remove the file.

    The owner of the stack (a ``bdobs stack up`` still in the foreground or
    detached) is asked to stop first, so it shuts its parts down in order; any
    part still running after that is stopped directly. Only processes whose
    start time and command line match the state file are signalled.

    Returns:
        What was stopped, such as ``["owner", "prometheus", "service"]``.
    """
    state = read_state(workdir)
    if state is None:
        return []
    entries = [
        (part, state["processes"][part])
        for part in reversed(_PARTS)
        if part in state.get("processes", {})
    ]
    stopped = [part for part, entry in entries if _pids.matches(entry)]
    owner = state.get("owner")
    if owner and _pids.matches(owner):
        stopped.insert(0, "owner")
        _pids.signal_pid(owner["pid"], signal.SIGTERM)
        _pids.wait_gone([owner], timeout)
    # Whatever the owner did not stop (or all of it, without an owner).
    live = [entry for _part, entry in entries if _pids.matches(entry)]
    for entry in live:
        _pids.signal_pid(entry["pid"], signal.SIGCONT)
        _pids.signal_pid(entry["pid"], signal.SIGTERM)
    _pids.wait_gone(live, timeout)
    for entry in live:
        if _pids.matches(entry):
            _pids.signal_pid(entry["pid"], signal.SIGKILL)
    for _part, entry in entries:
        _pids.kill_session_leftovers(entry["pid"])
    (workdir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def running_parts(state: dict[str, Any]) -> list[str]:
    """Return the parts of a recorded stack whose processes still run."""
    entries = dict(state.get("processes", {}))
    if state.get("owner"):
        entries["owner"] = state["owner"]
    return sorted(part for part, entry in entries.items() if _pids.matches(entry))
