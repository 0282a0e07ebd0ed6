"""Tests of the benchmark harness: what it counts and reports, not how fast."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests import bench
from loadtests._loadgen import parse_head, percentile
from loadtests.servers import RedisServer


@pytest.fixture
def quick_report(tmp_path: Path) -> bench.BenchReport:
    """A benchmark run with tiny round sizes against its own servers."""
    report = bench.BenchReport(machine=bench.describe_machine())
    with (
        RedisServer(tmp_path / "redis") as redis_server,
        bench.simulator(tmp_path) as upstream_url,
    ):
        asyncio.run(
            bench.run_micro(
                report,
                redis_server,
                upstream_url,
                rounds=3,
                ops=50,
                near_ops=500,
                miss_ops=20,
            )
        )
    return report


def test_single_flight_makes_one_upstream_call_for_1000_cold_lookups(
    quick_report: bench.BenchReport,
) -> None:
    """1,000 concurrent lookups of one cold id reach the upstream once."""
    flight = quick_report.single_flight

    assert flight == {
        "concurrent_lookups": 1000,
        "upstream_calls": 1,
        "failed_lookups": 0,
    }


def test_report_has_every_case_ratio_and_goal(quick_report: bench.BenchReport) -> None:
    """Every case is timed over its rounds and every goal is derived from them."""
    names = {figure.name for figure in quick_report.figures}

    assert names >= {
        "raw_get",
        "redis_hit",
        "redis_hit_nometrics",
        "near_hit",
        "near_hit_nometrics",
        "miss",
        "peer_cashews",
        "peer_aiocache",
    }
    for figure in quick_report.figures:
        assert figure.rounds == 3
        assert 0 < figure.low_us <= figure.median_us <= figure.high_us
    assert quick_report.ratios["redis_hit_over_raw_get"] == pytest.approx(
        quick_report.figure("redis_hit").median_us  # type: ignore[union-attr]
        / quick_report.figure("raw_get").median_us  # type: ignore[union-attr]
    )
    goal_names = [goal.name for goal in quick_report.goals]
    assert "at least as fast as cashews" in goal_names
    assert "one upstream call for 1,000 cold lookups" in goal_names


def test_report_json_is_deterministic_and_complete(
    quick_report: bench.BenchReport,
) -> None:
    """The JSON report parses back and is the same text when written twice."""
    text = quick_report.to_json()

    parsed = json.loads(text)

    assert text == quick_report.to_json()
    assert parsed["single_flight"]["upstream_calls"] == 1
    assert {"cpu", "cores", "python", "redis_server"} <= parsed["machine"].keys()


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        pytest.param([1.0], 0.95, 1.0, id="single-value"),
        pytest.param([float(n) for n in range(1, 101)], 0.95, 95.0, id="rank-95"),
        pytest.param([float(n) for n in range(1, 101)], 0.5, 50.0, id="median"),
        pytest.param([1.0, 2.0], 0.99, 2.0, id="rounds-up"),
    ],
)
def test_percentile_uses_nearest_rank(
    values: list[float], fraction: float, expected: float
) -> None:
    """The load generator's percentiles are nearest-rank, never interpolated."""
    assert percentile(values, fraction) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            b"HTTP/1.1 201 Created\r\ncontent-length: 427\r\n"
            b"content-type: application/json\r\n\r\n",
            (201, 427, False),
        ),
        (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n",
            (503, 0, True),
        ),
    ],
)
def test_load_generator_reads_status_length_and_connection_close(
    head: bytes, expected: tuple[int, int, bool]
) -> None:
    """The hand-written client reads what it needs from a response head."""
    assert parse_head(head) == expected


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", "chunked"),
        (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n", "Content-Length"),
    ],
)
def test_load_generator_refuses_a_body_it_cannot_delimit(
    head: bytes, message: str
) -> None:
    """A response without a Content-Length is an error, not a misread stream."""
    with pytest.raises(ValueError, match=message):
        parse_head(head)


def test_load_generator_refuses_a_non_loopback_url(tmp_path: Path) -> None:
    """The load generator only ever loads this machine."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("00000000-0000-0000-0000-000000000001\n")

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests._loadgen",
            "--url",
            "http://building-directory.invalid:8000",
            "--ids-file",
            str(ids_file),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert completed.returncode == 2
    assert "loopback" in completed.stderr


@pytest.mark.slow
def test_service_benchmark_loads_the_service_with_cache_on_and_off(
    tmp_path: Path,
) -> None:
    """Both service runs complete without failures and report rate and p50/p95."""
    report = bench.BenchReport(machine={})

    bench.run_service(report, tmp_path, concurrency=4, duration=2.0, id_pool=20)

    assert set(report.service) == {"cache_on", "cache_off"}
    for figures in report.service.values():
        assert figures["requests"] > 0
        assert figures["failures"] == 0
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert "service_rate_cache_on_over_off" in report.ratios
