"""Fixtures of the load-test package: the simulator and the service on loopback."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from loadtests.servers import (
    LOOPBACK,
    ManagedProcess,
    RedisServer,
    free_port,
    http_ok,
    wait_until,
)

#: The webhook secret of the service fixtures.
WEBHOOK_SECRET = "test-webhook-secret"


@contextlib.contextmanager
def python_server(
    module: str,
    args: list[str],
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, ManagedProcess]]:
    """Run ``python -m module --port P args`` until healthy; yield its URL."""
    port = free_port()
    name = module.rsplit(".", 1)[-1]
    process = ManagedProcess(
        name,
        [sys.executable, "-m", module, "--port", str(port), *args],
        log_path=workdir / f"{name}.log",
        env=env,
    )
    url = f"http://{LOOPBACK}:{port}"
    process.start()
    try:
        wait_until(
            lambda: http_ok(f"{url}/healthz") or not process.alive(),
            timeout=20,
            what=name,
        )
        process.ensure_running()
        yield url, process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A simulator without latency, for the session; tests reset its faults."""
    workdir = tmp_path_factory.mktemp("simulator")
    with python_server("loadtests.simulator", ["--latency-ms", "0"], workdir) as (
        url,
        _process,
    ):
        yield url


@pytest.fixture
def faults(simulator_url: str) -> Iterator[httpx.Client]:
    """An HTTP client on the simulator; every fault is cleared after the test."""
    with httpx.Client(base_url=simulator_url, timeout=5) as client:
        yield client
        client.delete("/_faults").raise_for_status()


def service_env(redis_url: str, directory_url: str) -> dict[str, str]:
    """The environment of a service on its own tenant, so cache keys are fresh."""
    return {
        "REDIS_URL": redis_url,
        "BUILDING_DIRECTORY_URL": directory_url,
        "MANAGEMENT_COMPANY_ID": str(uuid.uuid4()),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BUILDING_DIRECTORY_RETRIES": "0",
        "REDIS_BREAKER_COOLDOWN": "0.2",
    }


@pytest.fixture(scope="session")
def webhook_secret() -> str:
    """The webhook secret the service fixtures are started with."""
    return WEBHOOK_SECRET


@pytest.fixture(scope="module")
def service_url(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    simulator_url: str,
) -> Iterator[str]:
    """One service worker on the session's Redis and simulator, for a module."""
    workdir = tmp_path_factory.mktemp("service")
    env = service_env(redis_server.url, simulator_url)
    with python_server("loadtests.service", [], workdir, env=env) as (url, _process):
        yield url


StartService = Callable[..., contextlib.AbstractContextManager[str]]


@pytest.fixture
def start_service(tmp_path: Path, simulator_url: str) -> StartService:
    """Start a service of the test's own: ``with start_service(redis_url) as url``.

    Positional arguments after the Redis URL go to ``python -m
    loadtests.service``; keyword arguments override environment variables.
    """

    @contextlib.contextmanager
    def start(redis_url: str, *args: str, **env: str) -> Iterator[str]:
        environment = {**service_env(redis_url, simulator_url), **env}
        with python_server(
            "loadtests.service", list(args), tmp_path, env=environment
        ) as (url, _process):
            yield url

    return start


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline.strip()}")
    return found


@pytest.fixture
def leftover_processes() -> Callable[[str], list[str]]:
    """Return ``pid: command line`` of the running processes whose command line
    holds a text (a test's own folder), to prove a run left nothing behind."""
    return _processes_mentioning


#: A finished ``bdobs loadtest run``: report folder, exit code, output, seconds.
SmokeRun = tuple[Path, int, str, float]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """One ``bdobs loadtest run --scenario smoke`` for a module, as CI runs it.

    The report folder is given relative to the working directory, as a user
    types it. The run starts and stops its own stack. On a timeout it is sent
    SIGTERM, on which it stops what it started, and is killed only if still
    running 30 s later.
    """
    workdir = tmp_path_factory.mktemp("smoke")
    report = workdir / "build" / "smoke"
    argv = [sys.executable, "-m", "bdobs.cli", "loadtest", "run", "--scenario",
            "smoke", "--report", "build/smoke", "--quiet"]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=workdir
    )
    try:
        output, _ = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    return report, process.returncode, output, time.monotonic() - started
