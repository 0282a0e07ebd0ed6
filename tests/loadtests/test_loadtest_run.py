"""End-to-end load tests: Locust in its own process against the stack on loopback."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadtests.runner import LoadTestError, run_load_test
from loadtests.scenarios import REDIS_DOWN, SMOKE, FaultStep
from loadtests.stack import Stack, StackUrls
from loadtests.workload import Workload

pytestmark = pytest.mark.slow


def _verdict(report: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report / "verdict.json").read_text())
    return data


def _shape(data: Any) -> Any:
    """The verdict's fields without their values: keys, and check names."""
    if isinstance(data, dict):
        if "by_name" in data:
            data = {**data, "by_name": {}}
        if "increases" in data:
            data = {**data, "increases": {}}
        return {key: _shape(value) for key, value in data.items()}
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return [_shape(item) for item in data]
    return type(data).__name__


SmokeRun = tuple[Path, int, str, float]
Leftovers = Callable[[str], list[str]]


def test_smoke_run_passes_in_under_a_minute(
    smoke_run: SmokeRun, leftover_processes: Leftovers
) -> None:
    """``bdobs loadtest run --scenario smoke`` passes, exits 0 and writes the report."""
    report, returncode, output, seconds = smoke_run

    assert returncode == 0, output
    assert seconds < 60
    verdict = _verdict(report)
    assert verdict["passed"] is True
    assert [t["name"] for t in verdict["targets"]] == [
        "cache_hit_rate", "latency_p95", "error_rate", "validation_success_rate",
        "lookup_error_rate", "achieved_rate",
    ]  # fmt: skip
    assert all(t["passed"] and t["value"] is not None for t in verdict["targets"])
    for name in ("summary.txt", "locust.html", "locust_stats.json", "metrics.prom"):
        assert (report / name).stat().st_size > 0, name
    assert "building_cache_operations_total" in (report / "metrics.prom").read_text()
    assert "verdict   PASS" in output
    assert leftover_processes(str(report)) == []


def test_samples_match_locust_and_the_service(smoke_run: SmokeRun) -> None:
    """The raw samples count every request Locust counted and the service handled."""
    report = smoke_run[0]

    verdict = _verdict(report)

    requests = verdict["requests"]
    assert requests["total"] == requests["locust"]["requests"]
    validations = sum(
        value
        for key, value in verdict["counters"]["increases"].items()
        if key.startswith("building_validations_total")
    )
    assert validations == requests["total"]


def test_two_worker_run_gives_the_same_verdict_fields(
    smoke_run: SmokeRun, tmp_path: Path, leftover_processes: Leftovers
) -> None:
    """A distributed run (two Locust workers) gives the single process's fields."""
    single_report = smoke_run[0]

    verdict = run_load_test(
        SMOKE,
        report_dir=tmp_path / "report",
        processes=2,
        duration=10,
        rate_per_minute=3600,
    )

    single = _verdict(single_report)
    distributed = _verdict(tmp_path / "report")
    assert _shape(distributed) == _shape(single)
    assert distributed["scenario"]["processes"] == 2
    assert len(list((tmp_path / "report" / "samples").glob("samples-*.csv"))) == 2
    assert (
        distributed["requests"]["total"]
        == distributed["requests"]["locust"]["requests"]
    )
    assert verdict.passed, verdict.summary()
    assert leftover_processes(str(tmp_path)) == []


def test_ten_percent_upstream_errors_fail_the_error_rate(tmp_path: Path) -> None:
    """A simulator failing 10 % of lookups fails the run, naming error_rate.

    The service retries nothing and the pool is the whole data set, so cache
    misses stay frequent and the upstream's errors reach the users.
    """
    scenario = dataclasses.replace(
        SMOKE,
        name="smoke-with-errors",
        faults=(FaultStep(0.0, "set_faults", {"error_rate": 0.1}),),
    )
    options = {"service_env": {"BUILDING_DIRECTORY_RETRIES": "0"}}

    verdict = run_load_test(
        scenario,
        report_dir=tmp_path / "report",
        workload=Workload(pool_size=2000),
        duration=10,
        rate_per_minute=3600,
        stack_options=options,
    )

    assert verdict.exit_code == 1
    assert "error_rate" in verdict.failed()
    assert "lookup_error_rate" in verdict.failed()
    error_rate = verdict.check("error_rate")
    assert error_rate.value is not None
    assert 0.02 < error_rate.value < 0.10
    assert "failed: " in verdict.summary()
    assert _verdict(tmp_path / "report")["fault_log"][0]["ok"] is True


def test_redis_down_scenario_meets_its_own_expectations(
    tmp_path: Path, leftover_processes: Leftovers
) -> None:
    """Redis stopped and restarted mid-run: no user request fails; the outage is
    counted; the cache serves hits again."""
    options = {"service_env": {"REDIS_BREAKER_COOLDOWN": "0.5"}}

    verdict = run_load_test(
        REDIS_DOWN,
        report_dir=tmp_path / "report",
        duration=15,
        rate_per_minute=2400,
        stack_options=options,
    )

    assert verdict.passed, verdict.summary()
    assert verdict.check("no_failed_requests").value == 0
    cache_errors = verdict.check("cache_errors_counted").value
    assert cache_errors is not None
    assert cache_errors > 0
    assert [event.action for event in verdict.fault_log] == [
        "stop Redis",
        "start Redis again (empty)",
    ]
    assert leftover_processes(str(tmp_path)) == []


def test_redis_faults_need_a_stack_not_just_urls(tmp_path: Path) -> None:
    """A scenario that stops Redis refuses URLs it cannot fault, before any load."""
    urls = StackUrls(
        redis_url="redis://127.0.0.1:1/0",
        directory_url="http://127.0.0.1:1",
        service_url="http://127.0.0.1:1",
        prometheus_url=None,
        prometheus_rules_dir=None,
    )

    with pytest.raises(LoadTestError, match="stops and starts Redis"):
        run_load_test(REDIS_DOWN, report_dir=tmp_path, urls=urls)


def test_a_stack_given_by_the_caller_is_left_running_without_faults(
    tmp_path: Path,
) -> None:
    """Given a started Stack, the run loads it, undoes its faults and leaves it up."""
    scenario = dataclasses.replace(
        SMOKE,
        name="smoke-slow-phase",
        faults=(FaultStep(0.5, "set_faults", {"extra_latency": 0.01}),),
    )
    stack = Stack(tmp_path / "stack", prometheus=False, simulator_latency=0.05)
    urls = stack.start()
    try:
        verdict = run_load_test(
            scenario, report_dir=tmp_path / "report", stack=stack, duration=5
        )

        assert verdict.fault_log[0].ok
        assert verdict.requests["total"] > 0
        assert set(stack.pids()) >= {"redis", "simulator", "service"}
        with urllib.request.urlopen(f"{urls.directory_url}/_faults") as response:
            assert json.load(response)["extra_latency"] == 0
    finally:
        stack.stop()
