"""Command-line arguments shared by the load-test commands."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bdobs.cli import build_parser, main
from loadtests._cli_args import duration, positive_number


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("45", 45.0, id="bare-seconds"),
        pytest.param("30s", 30.0, id="seconds"),
        pytest.param("2m", 120.0, id="minutes"),
        pytest.param("1.5h", 5400.0, id="hours"),
        pytest.param("250ms", 0.25, id="milliseconds"),
    ],
)
def test_duration_reads_units(text: str, seconds: float) -> None:
    """Durations accept the units people type: s, m, h, ms or none."""
    assert duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("0s", id="zero"),
        pytest.param("99999m", id="longer-than-a-day"),
        pytest.param("-5", id="negative"),
        pytest.param("5 minutes", id="spelled-out"),
        pytest.param("", id="empty"),
    ],
)
def test_duration_refuses_what_is_not_a_positive_duration(text: str) -> None:
    """A bad duration is a usage error naming the value."""
    with pytest.raises(argparse.ArgumentTypeError, match="duration"):
        duration(text)


def test_positive_number_refuses_zero() -> None:
    """A rate of zero requests is refused."""
    with pytest.raises(argparse.ArgumentTypeError, match="> 0"):
        positive_number("0")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999"])
def test_positive_number_refuses_what_is_not_finite(text: str) -> None:
    """NaN and infinity are refused before any stack is started for them."""
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        positive_number(text)


def test_loadtest_run_takes_locust_workers_and_service_workers_apart() -> None:
    """--workers sets Locust worker processes; --service-workers the service's."""
    args = build_parser().parse_args(
        ["loadtest", "run", "--scenario", "smoke", "--workers", "2",
         "--service-workers", "3", "--duration", "5m", "--rate", "300"]
    )  # fmt: skip

    assert (args.processes, args.service_workers) == (2, 3)
    assert (args.duration, args.rate) == (300.0, 300.0)


def test_demo_refuses_a_baseline_too_short_to_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1 s demo stops at once instead of failing after minutes of fault phase."""
    code = main(["demo", "--duration", "1s", "--out", str(tmp_path / "demo")])

    assert code == 2
    assert "at least 20s" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
