"""Tests of the stack: every part up on loopback, wired together, and stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from instrumentation.indicators import CACHE_HIT_RATE
from loadtests import simulator
from loadtests.servers import RedisServer, free_port, port_open
from loadtests.stack import JOB_NAME, Stack, StackError, read_state, stop_from_state

T = TypeVar("T")

_ACTIVE = [
    i for i in simulator.ids_by_shape()["nested"] if i not in simulator.inactive_ids()
]


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting to be reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def _session(pid: int) -> list[int]:
    """The processes in the session led by ``pid`` (a part and its workers)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            with_comm = (entry / "stat").read_text()
            if int(with_comm[with_comm.rfind(")") + 2 :].split()[3]) == pid:
                members.append(int(entry.name))
    return members


def _cache_ops(metrics_url: str) -> dict[str, float]:
    text = httpx.get(metrics_url).text
    found = {"hit": 0.0, "miss": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "building_cache_operations_total":
                operation = sample.labels["operation"]
                if operation in found:
                    found[operation] = sample.value
    return found


def _query(prometheus_url: str, promql: str) -> list[dict]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql})
    response.raise_for_status()
    result: list[dict] = response.json()["data"]["result"]
    return result


def _poll(check: Callable[[], T], timeout: float, interval: float = 0.25) -> T:
    """Call ``check`` until it returns something true, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@pytest.mark.slow
def test_end_to_end_hit_is_scraped_and_queried_and_stop_leaves_nothing(
    tmp_path: Path,
) -> None:
    """Stack up; the second request is a hit in /metrics, Prometheus and its rules."""
    stack = Stack(tmp_path / "stack", simulator_latency=0, scrape_interval="1s")
    building_id = _ACTIVE[0]

    with stack as urls:
        state = read_state(stack.workdir)
        pids = [pid for leader in stack.pids().values() for pid in _session(leader)]
        scraped = _poll(
            lambda: _query(urls.prometheus_url, f'up{{job="{JOB_NAME}"}}'), 15
        )
        first = httpx.post(
            f"{urls.service_url}/requests", json={"building_id": building_id}
        )
        second = httpx.post(
            f"{urls.service_url}/requests", json={"building_id": building_id}
        )
        ops = _cache_ops(urls.metrics_url)
        promql = CACHE_HIT_RATE.promql(extra=f'job="{JOB_NAME}"', window="1m")
        hit_rate = _poll(lambda: _query(urls.prometheus_url, promql), 20)
        rule = {"record": "test:hit_rate", "expr": promql}
        (urls.prometheus_rules_dir / "test.yml").write_text(
            json.dumps({"groups": [{"name": "test", "rules": [rule]}]})
        )
        reload = httpx.post(f"{urls.prometheus_url}/-/reload")
        recorded = _poll(lambda: _query(urls.prometheus_url, "test:hit_rate"), 20)

    assert state is not None
    assert set(state["processes"]) == {"redis", "simulator", "service", "prometheus"}
    assert all(Path(entry["log"]).is_file() for entry in state["processes"].values())
    assert scraped[0]["value"][1] == "1"
    assert (first.status_code, second.status_code) == (201, 201)
    assert ops == {"hit": 1.0, "miss": 1.0}
    assert float(hit_rate[0]["value"][1]) == pytest.approx(0.5)
    assert reload.status_code == 200
    assert float(recorded[0]["value"][1]) == pytest.approx(0.5)
    assert not [pid for pid in pids if _alive(pid)]
    assert not stack.state_path.exists()


@pytest.fixture
def cli_workdir(tmp_path: Path) -> Iterator[Path]:
    """A stack folder for the CLI; anything still running from it is stopped after."""
    workdir = tmp_path / "stack"
    yield workdir
    stop_from_state(workdir)


def _bdobs(*args: str) -> list[str]:
    return [sys.executable, "-m", "bdobs.cli", *args]


@pytest.mark.slow
def test_cli_up_detached_then_down_leaves_no_process(cli_workdir: Path) -> None:
    """'bdobs stack up --detach' returns with the stack up; 'down' stops all of it."""
    workdir = cli_workdir
    up = subprocess.run(
        _bdobs(
            "stack", "up", "--detach", "--workdir", str(workdir),
            "--latency-ms", "0", "--workers", "2",
        ),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    state = read_state(workdir)
    assert up.returncode == 0, up.stdout + up.stderr
    assert state is not None
    leaders = [state["owner"]["pid"]] + [p["pid"] for p in state["processes"].values()]
    pids = {pid for leader in leaders for pid in (leader, *_session(leader))}
    service = httpx.get(f"{state['urls']['service_url']}/healthz")

    down = subprocess.run(
        _bdobs("stack", "down", "--workdir", str(workdir)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert service.status_code == 200
    assert f"bdobs stack down --workdir {workdir}'" in up.stdout
    assert len(pids) >= 7  # owner, redis, simulator, prometheus, service + 2 workers
    assert down.returncode == 0, down.stdout + down.stderr
    assert "service" in down.stdout
    assert not [pid for pid in pids if _alive(pid)]
    assert read_state(workdir) is None


@pytest.mark.slow
def test_cli_up_in_the_foreground_stops_everything_on_ctrl_c(
    cli_workdir: Path,
) -> None:
    """'bdobs stack up' runs until Ctrl-C (SIGINT), then stops every part."""
    up = subprocess.Popen(
        _bdobs(
            "stack", "up", "--workdir", str(cli_workdir),
            "--no-prometheus", "--latency-ms", "0",
        ),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        state = _poll(lambda: (read_state(cli_workdir) or {}).get("owner"), 60)
        recorded = read_state(cli_workdir) or {"processes": {}}
        pids = [entry["pid"] for entry in recorded["processes"].values()]
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=30)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()

    assert state["pid"] == up.pid
    assert sorted(recorded["processes"]) == ["redis", "service", "simulator"]
    assert up.returncode == 0, output
    assert "service_url" in output
    assert output.rstrip().endswith("stopped")
    assert not [pid for pid in pids if _alive(pid)]
    assert read_state(cli_workdir) is None


@pytest.fixture(scope="module")
def lean_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack without Prometheus and without latency, shared by a module."""
    stack = Stack(
        tmp_path_factory.mktemp("lean") / "stack",
        prometheus=False,
        simulator_latency=0,
        service_env={"REDIS_BREAKER_COOLDOWN": "0.2"},
    )
    stack.start()
    yield stack
    stack.stop()


def test_state_file_names_every_url_and_process(lean_stack: Stack) -> None:
    """state.json holds the URLs, and each process's id, start time and log."""
    state = json.loads(lean_stack.state_path.read_text())

    assert state["urls"]["service_url"] == lean_stack.urls.service_url
    assert state["urls"]["prometheus_url"] is None
    assert set(state["processes"]) == {"redis", "simulator", "service"}
    for part, entry in state["processes"].items():
        assert entry["pid"] == lean_stack.pids()[part]
        assert entry["start_time"] > 0
    assert oct(lean_stack.state_path.stat().st_mode & 0o777) == "0o600"


def test_stop_and_start_redis_keep_its_port_and_the_service_recovers(
    lean_stack: Stack,
) -> None:
    """stop_redis takes Redis away (service degraded); start_redis brings it back."""
    urls = lean_stack.urls
    port = int(urls.redis_url.rsplit(":", 1)[1].split("/")[0])

    def health() -> str:
        return httpx.get(f"{urls.service_url}/healthz").json()["status"]

    lean_stack.stop_redis()
    closed = not port_open(port)
    degraded = _poll(lambda: health() == "degraded", 10)
    lean_stack.start_redis()
    reopened = port_open(port)
    recovered = _poll(lambda: health() == "ok", 10)

    assert (closed, degraded) == (True, True)
    assert (reopened, recovered) == (True, True)
    assert lean_stack.dead_parts() == []


def test_set_faults_reaches_the_simulator_and_clear_faults_undoes_it(
    lean_stack: Stack,
) -> None:
    """set_faults(error_rate=1) makes the service answer 503; clear_faults heals."""
    url = f"{lean_stack.urls.service_url}/buildings/{_ACTIVE[1]}"

    faults = lean_stack.set_faults(error_rate=1.0)
    failing = httpx.get(url, timeout=10)
    cleared = lean_stack.clear_faults()
    healed = httpx.get(url, timeout=10)

    assert faults["error_rate"] == 1.0
    assert failing.status_code == 503
    assert cleared["error_rate"] == 0.0
    assert healed.status_code == 200


def test_bad_faults_raise_a_stack_error(lean_stack: Stack) -> None:
    """A fault the simulator refuses raises StackError with its reason."""
    with pytest.raises(StackError, match="error_rate"):
        lean_stack.set_faults(error_rate=2.0)


def test_second_stack_in_the_same_folder_is_refused(lean_stack: Stack) -> None:
    """Starting a stack where one still runs raises, and starts nothing."""
    other = Stack(lean_stack.workdir, prometheus=False)

    with pytest.raises(StackError, match="still running"):
        other.start()

    assert other.pids() == {}


def test_part_that_does_not_come_up_is_named_and_the_rest_stopped(
    tmp_path: Path,
) -> None:
    """A service that cannot start is named with its log; nothing is left running."""
    stack = Stack(
        tmp_path / "stack",
        prometheus=False,
        simulator_latency=0,
        service_env={"CACHE_REQUEST_TTL": "not-a-number"},
    )
    with pytest.raises(StackError) as excinfo:
        stack.start()

    message = str(excinfo.value)
    assert message.startswith("service exited early")
    assert str(tmp_path / "stack" / "service.log") in message
    assert "CACHE_REQUEST_TTL" in message
    assert set(stack.started_pids()) == {"redis", "simulator", "service"}
    assert not [pid for pid in stack.started_pids().values() if _alive(pid)]


def test_existing_servers_are_used_instead_of_starting_them(
    tmp_path: Path, redis_server: RedisServer, simulator_url: str
) -> None:
    """Given a Redis and a Building Directory, the stack starts only the service."""
    stack = Stack(
        tmp_path / "stack",
        redis_url=redis_server.url,
        directory_url=simulator_url,
        prometheus=False,
    )

    with stack as urls:
        parts = set(stack.pids())
        building = httpx.get(f"{urls.service_url}/buildings/{_ACTIVE[2]}")

    assert parts == {"service"}
    assert (urls.redis_url, urls.directory_url) == (redis_server.url, simulator_url)
    assert building.status_code == 200
    assert redis_server.alive()


@pytest.mark.parametrize("part", ["redis", "directory"])
def test_a_given_server_that_does_not_answer_is_named_before_anything_starts(
    tmp_path: Path, part: str
) -> None:
    """A dead --redis-url or --directory-url stops 'up' at once, saying which."""
    dead = free_port()  # nothing listens there
    given = (
        {"redis_url": f"redis://:secret@127.0.0.1:{dead}/0"}
        if part == "redis"
        else {"directory_url": f"http://127.0.0.1:{dead}"}
    )
    stack = Stack(tmp_path / "stack", prometheus=False, **given)

    with pytest.raises(StackError) as raised:
        stack.start()

    message = str(raised.value)
    assert str(dead) in message
    assert "secret" not in message
    assert "does not answer" in message
    assert stack.pids() == {}


def test_the_callers_client_variables_do_not_reach_the_stacks_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CACHE_NEAR_SIZE exported in the shell does not change a stack's service."""
    monkeypatch.setenv("CACHE_NEAR_SIZE", "not a number")  # would stop the service

    with Stack(tmp_path / "stack", prometheus=False, simulator_latency=0) as urls:
        health = httpx.get(f"{urls.service_url}/healthz")

    assert health.status_code == 200
