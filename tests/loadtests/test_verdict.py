"""Tests of the verdict: exact statistics, counter diffs, checks and the report."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from instrumentation import BuildingDirectoryMetrics
from instrumentation.indicators import Matcher, Series, Threshold
from loadtests._checks import RunFacts, judge_interval, target_check
from loadtests._expectations import (
    CacheRecovers,
    CounterMatchesResponses,
    FailuresOnlyDuringFault,
    MaxResponseTime,
    NoFailedRequests,
    ServedDuringFault,
)
from loadtests._samples import RequestSample, SampleWriter, read_samples
from loadtests._scrape import Scrape, increases, parse
from loadtests._stats import (
    nearest_rank,
    quantile_interval,
    quantile_ranks,
    wilson_interval,
)
from loadtests.scenarios import SCENARIOS, SMOKE, FaultStep
from loadtests.verdict import FaultEvent, judge, write_report
from loadtests.workload import Workload, request_name, unexpected_outcome

ACTIVE = request_name("active")
UNKNOWN = request_name("unknown")


def _samples(
    count: int,
    *,
    ms: float | Callable[[int], float] = 20.0,
    failed: int = 0,
    start: float = 1000.0,
    spacing: float = 0.1,
) -> list[RequestSample]:
    """``count`` requests ``spacing`` s apart, the first ``failed`` of them failed."""
    return [
        RequestSample(
            start=start + index * spacing,
            response_ms=ms(index) if callable(ms) else ms,
            status=503 if index < failed else 201,
            ok=index >= failed,
            name=ACTIVE,
        )
        for index in range(count)
    ]


class _Service:
    """The service's metrics in a registry of their own, scraped on demand."""

    def __init__(self) -> None:
        self.metrics = BuildingDirectoryMetrics(CollectorRegistry())

    def count(self, *, hits: int = 0, misses: int = 0, valid: int = 0) -> None:
        self.metrics.cache["hit"].inc(hits)
        self.metrics.cache["miss"].inc(misses)
        self.metrics.validations["valid"].inc(valid)
        self.metrics.requests[("get_building", "success")].inc(hits + misses)

    def scrape(self, at: float) -> Scrape:
        assert self.metrics.registry is not None
        return parse(generate_latest(self.metrics.registry).decode(), at=at)


def _facts(
    samples: list[RequestSample],
    scrapes: list[Scrape],
    *,
    duration: float = 60.0,
    rate: float = 600.0,
    windows: tuple[tuple[float, float], ...] = (),
) -> RunFacts:
    return RunFacts(
        samples=samples,
        scrapes=scrapes,
        duration=duration,
        rate_per_minute=rate,
        started_at=1000.0,
        fault_windows=windows,
    )


def _hit_facts(hits: int, misses: int) -> RunFacts:
    service = _Service()
    before = service.scrape(1000.0)
    service.count(hits=hits, misses=misses, valid=hits + misses)
    return _facts(_samples(600), [before, service.scrape(1060.0)])


# -- statistics -----------------------------------------------------------------


def test_nearest_rank_takes_the_value_of_rank_ceil_qn() -> None:
    """p95 of 1..100 is 95, of 1..20 is 19; never an interpolated value."""
    assert nearest_rank(list(range(1, 101)), 0.95) == 95
    assert nearest_rank(list(range(1, 21)), 0.95) == 19
    assert nearest_rank([1.0, 2.0], 0.5) == 1.0


def test_wilson_interval_matches_published_values() -> None:
    """80 of 100 gives [0.7112, 0.8666]; 0 of 500 gives [0, z²/(n+z²)]."""
    low, high = wilson_interval(80, 100)
    zero_low, zero_high = wilson_interval(0, 500)

    assert (low, high) == pytest.approx((0.7112, 0.8666), abs=1e-4)
    assert zero_low == 0.0
    assert zero_high == pytest.approx(1.959964**2 / (500 + 1.959964**2))


def test_wilson_interval_rejects_impossible_counts() -> None:
    """No trials, or more successes than trials, is an error."""
    with pytest.raises(ValueError, match="n must be"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


@pytest.mark.parametrize(
    ("n", "ranks"),
    [
        pytest.param(100, (90, 100), id="n100"),
        pytest.param(500, (465, 485), id="n500"),
        pytest.param(72, (64, 72), id="smallest-bounded"),
        pytest.param(71, (63, None), id="too-small-for-an-upper-bound"),
    ],
)
def test_quantile_ranks_of_p95(n: int, ranks: tuple[int, int | None]) -> None:
    """The order statistics bracketing p95 at 95 % are the binomial ones."""
    assert quantile_ranks(n, 0.95) == ranks


def test_quantile_interval_is_open_when_the_sample_is_too_small() -> None:
    """With 50 samples p95 has no upper bound: the interval ends at infinity."""
    low, high = quantile_interval([float(v) for v in range(50)], 0.95)

    assert math.isfinite(low)
    assert high == math.inf


def test_quantile_interval_covers_the_true_p95_at_least_95_percent_of_the_time() -> (
    None
):
    """Over 400 seeded samples of 200 uniform values the interval holds 0.95 ≥ 94 %."""
    rng = random.Random(11)

    covered = 0
    for _ in range(400):
        values = sorted(rng.random() for _ in range(200))
        low, high = quantile_interval(values, 0.95)
        covered += low <= 0.95 <= high

    assert covered / 400 >= 0.94


@pytest.mark.parametrize(
    ("op", "limit", "interval", "status"),
    [
        pytest.param(">=", 0.7, (0.72, 0.80), "pass", id="above-limit"),
        pytest.param(">=", 0.7, (0.60, 0.69), "fail", id="below-limit"),
        pytest.param(">=", 0.7, (0.66, 0.74), "inconclusive", id="straddles"),
        pytest.param("<", 0.2, (0.15, 0.19), "pass", id="faster"),
        pytest.param("<", 0.2, (0.20, 0.30), "fail", id="at-limit-is-not-below"),
        pytest.param("<", 0.2, (0.18, 0.22), "inconclusive", id="p95-straddles"),
    ],
)
def test_judge_interval(
    op: str, limit: float, interval: tuple[float, float], status: str
) -> None:
    """An interval passes, fails or is inconclusive by where it lies from the limit."""
    threshold = Threshold(op, limit)  # type: ignore[arg-type]

    assert judge_interval(threshold, *interval)[0] == status


# -- scrapes and counters -----------------------------------------------------------


def test_parse_reads_counters_by_their_total_names() -> None:
    """Counter samples are named ``..._total``; histogram buckets are cumulative."""
    service = _Service()
    service.count(hits=3)

    scrape = service.scrape(1.0)

    assert ("building_cache_operations_total", {"operation": "hit"}, 3.0) in (
        scrape.samples
    )
    assert "building_directory_request_duration_seconds_bucket" in scrape.cumulative
    assert "building_directory_active_connections" not in scrape.cumulative


def test_increases_are_the_differences_between_first_and_last_scrape() -> None:
    """Counting 7 hits between two scrapes gives an increase of 7, no reset."""
    service = _Service()
    service.count(hits=5)
    before = service.scrape(1.0)
    service.count(hits=7)

    counted = increases([before, service.scrape(2.0)])

    hit = [v for n, lab, v in counted.samples if lab == {"operation": "hit"}]
    assert hit == [7.0]
    assert counted.resets == ()


def test_a_counter_that_goes_down_is_a_reset_and_counts_from_zero() -> None:
    """A restarted service (fresh counters) is reported, its new counts kept."""
    old = _Service()
    old.count(hits=50)
    restarted = _Service()
    restarted.count(hits=4)

    counted = increases([old.scrape(1.0), restarted.scrape(2.0)])

    assert counted.resets
    assert "building_cache_operations_total" in counted.resets[0]
    hit = [v for n, lab, v in counted.samples if lab == {"operation": "hit"}]
    assert hit == [4.0]


def test_a_reset_between_intermediate_scrapes_is_caught() -> None:
    """A restart whose counters climb past the start again is seen in between."""
    old = _Service()
    old.count(hits=10)
    restarted = _Service()
    restarted.count(hits=2)
    first, middle = old.scrape(1.0), restarted.scrape(2.0)
    restarted.count(hits=30)

    counted = increases([first, middle, restarted.scrape(3.0)])

    assert counted.resets
    hit = [v for n, lab, v in counted.samples if lab == {"operation": "hit"}]
    assert hit == [32.0]


# -- standard targets --------------------------------------------------------------


def test_cache_hit_rate_comes_from_the_counters() -> None:
    """850 hits and 150 misses give 85 %, a conclusive pass of ≥ 70 %."""
    check = target_check("cache_hit_rate", _hit_facts(850, 150))

    assert check.value == pytest.approx(0.85)
    assert check.samples == 1000
    assert check.status == "pass"
    assert check.interval is not None
    assert check.interval[0] > 0.82


def test_hit_rate_at_the_limit_is_inconclusive() -> None:
    """Exactly 70 % over 1000 lookups cannot be told apart from 69 %."""
    check = target_check("cache_hit_rate", _hit_facts(700, 300))

    assert check.status == "inconclusive"
    assert "straddles" in check.detail


def test_a_small_sample_is_inconclusive_even_far_from_the_limit() -> None:
    """99 lookups, all hits, are too few to judge."""
    check = target_check("cache_hit_rate", _hit_facts(99, 0))

    assert check.status == "inconclusive"
    assert "at least 100" in check.detail


def test_a_counter_reset_makes_counter_targets_inconclusive() -> None:
    """A restart during the run is named, and the counters' targets are not trusted."""
    old = _Service()
    old.count(hits=5000, misses=100, valid=5100)
    restarted = _Service()
    restarted.count(hits=900, misses=100, valid=1000)
    facts = _facts(_samples(600), [old.scrape(1.0), restarted.scrape(2.0)])

    check = target_check("validation_success_rate", facts)

    assert check.status == "inconclusive"
    assert "counter reset" in check.detail


def test_counter_targets_without_traffic_are_inconclusive() -> None:
    """No lookups counted: no hit rate, and no pretending it is 0."""
    service = _Service()
    facts = _facts(_samples(600), [service.scrape(1.0), service.scrape(2.0)])

    check = target_check("cache_hit_rate", facts)

    assert check.value is None
    assert check.status == "inconclusive"


@pytest.mark.parametrize(
    ("count", "failed", "status"),
    [
        pytest.param(600, 0, "pass", id="clean-600"),
        pytest.param(300, 0, "inconclusive", id="clean-300-too-few"),
        pytest.param(600, 60, "fail", id="ten-percent"),
        pytest.param(1000, 10, "inconclusive", id="one-percent"),
    ],
)
def test_user_error_rate(count: int, failed: int, status: str) -> None:
    """The error rate is failed requests over all, judged with its interval."""
    check = target_check("error_rate", _facts(_samples(count, failed=failed), []))

    assert check.value == pytest.approx(failed / count)
    assert check.status == status


def test_expected_outcomes_are_no_failures_by_name() -> None:
    """A 404 is expected for an unknown id and a failure for an active one."""
    assert unexpected_outcome("unknown", 404) is None
    assert unexpected_outcome("inactive", 422) is None
    assert (
        unexpected_outcome("active", 404) == "status 404, expected 201 for class active"
    )
    assert unexpected_outcome("active", 0) is not None


@pytest.mark.parametrize(
    ("latency", "status"),
    [
        pytest.param(lambda i: 20.0 if i % 20 else 150.0, "pass", id="fast"),
        pytest.param(lambda i: 10.0 + 2 * (i % 100), "inconclusive", id="around-200"),
        pytest.param(lambda i: 300.0, "fail", id="slow"),
    ],
)
def test_latency_p95_from_raw_samples(
    latency: Callable[[int], float], status: str
) -> None:
    """p95 is judged from every unrounded sample with its order-statistic interval."""
    samples = _samples(600, ms=latency)

    check = target_check("latency_p95", _facts(samples, []))

    times = sorted(s.response_ms / 1000 for s in samples)
    assert check.value == times[math.ceil(0.95 * 600) - 1]
    assert check.status == status


def test_latency_p95_keeps_sub_millisecond_precision() -> None:
    """A p95 of 199.4 ms is reported as such, not rounded to a bucket."""
    samples = _samples(600, ms=lambda i: 10.0 if i < 560 else 199.4)

    check = target_check("latency_p95", _facts(samples, []))

    assert check.value == pytest.approx(0.1994)
    assert check.status == "pass"


# -- expectations ------------------------------------------------------------------


def test_no_failed_requests_counts_failures_exactly() -> None:
    """One failure in 600 requests fails the expectation."""
    assert NoFailedRequests().evaluate(_facts(_samples(600), [])).status == "pass"
    failing = NoFailedRequests().evaluate(_facts(_samples(600, failed=1), []))
    assert failing.status == "fail"
    assert failing.value == 1


def test_failures_inside_the_fault_window_are_expected() -> None:
    """Failures during the fault pass; one after it (plus grace) fails."""
    samples = _samples(600, spacing=0.1)  # 1000.0 .. 1059.9
    during = [
        RequestSample(s.start, s.response_ms, 503, False, s.name)
        if 1020 <= s.start < 1030
        else s
        for s in samples
    ]
    late = [*during, RequestSample(1045.0, 5.0, 503, False, ACTIVE)]
    expectation = FailuresOnlyDuringFault(grace=2.0)
    windows = ((1020.0, 1030.0),)

    assert expectation.evaluate(_facts(during, [], windows=windows)).status == "pass"
    assert expectation.evaluate(_facts(late, [], windows=windows)).status == "fail"
    assert expectation.evaluate(_facts(during, [])).status == "inconclusive"


def test_served_during_fault_judges_the_share_started_in_the_window() -> None:
    """Of 150 requests in the window, 120 served: 80 % meets ≥ 50 %."""
    samples = [
        RequestSample(1000.0 + i * 0.1, 5.0, 201 if i % 5 else 503, i % 5 != 0, ACTIVE)
        for i in range(150)
    ]

    check = ServedDuringFault(0.5).evaluate(
        _facts(samples, [], windows=((999.0, 1100.0),))
    )

    assert check.value == pytest.approx(0.8)
    assert check.status == "pass"


def test_max_response_time_bounds_the_slowest_request() -> None:
    """A single 5 s request breaks a 4 s bound."""
    samples = _samples(600, ms=lambda i: 5000.0 if i == 7 else 30.0)

    check = MaxResponseTime(limit=4.0).evaluate(_facts(samples, []))

    assert check.status == "fail"
    assert check.value == pytest.approx(5.0)


def test_counter_must_match_the_responses_it_stands_for() -> None:
    """invalid_not_found must rise once per 404 of an unknown id."""
    samples = [RequestSample(1000.0 + i, 5.0, 404, True, UNKNOWN) for i in range(120)]
    service = _Service()
    before = service.scrape(1.0)
    service.metrics.validations["invalid_not_found"].inc(120)
    matching = service.scrape(2.0)
    service.metrics.validations["invalid_not_found"].inc(1)
    extra = service.scrape(3.0)
    expectation = CounterMatchesResponses(
        "nf",
        "invalid_not_found per 404",
        Series(
            "building_validations_total", (Matcher("result", "=", "invalid_not_found"),)
        ),
        "unknown",
        404,
    )

    assert expectation.evaluate(_facts(samples, [before, matching])).status == "pass"
    assert expectation.evaluate(_facts(samples, [before, extra])).status == "fail"


def test_cache_recovery_reads_hits_after_the_fault_only() -> None:
    """Hits before the fault do not count as recovery; hits after it do."""
    service = _Service()
    start = service.scrape(1000.0)
    service.count(hits=100)
    fault_start = service.scrape(1010.0)
    after_fault = service.scrape(1031.0)
    flat = _facts(
        _samples(10), [start, fault_start, after_fault, service.scrape(1050.0)],
        windows=((1010.0, 1030.0),),
    )  # fmt: skip
    service.count(hits=3)
    recovered = _facts(
        _samples(10), [start, fault_start, after_fault, service.scrape(1050.0)],
        windows=((1010.0, 1030.0),),
    )  # fmt: skip

    assert CacheRecovers().evaluate(flat).status == "fail"
    assert CacheRecovers().evaluate(recovered).status == "pass"


# -- the verdict ----------------------------------------------------------------------


def _verdict_facts(failed: int = 0) -> RunFacts:
    service = _Service()
    before = service.scrape(1000.0)
    service.count(hits=540, misses=60, valid=594)
    service.metrics.validations["invalid_not_found"].inc(6)
    samples = _samples(600, failed=failed, spacing=20 / 600)
    return _facts(samples, [before, service.scrape(1020.0)], duration=20, rate=1800)


def test_verdict_passes_and_exits_zero_when_every_check_passed() -> None:
    """A clean run: every check passes, exit code 0."""
    verdict = judge(SMOKE, SMOKE.workload, _verdict_facts(), users=15)

    assert [c.status for c in verdict.checks] == ["pass"] * len(verdict.checks)
    assert verdict.exit_code == 0
    assert verdict.status == "pass"


def test_verdict_names_the_failed_target_and_exits_one() -> None:
    """10 % failed requests fail error_rate, named in the verdict and summary."""
    verdict = judge(SMOKE, SMOKE.workload, _verdict_facts(failed=60), users=15)

    assert verdict.failed() == ["error_rate"]
    assert verdict.exit_code == 1
    assert "failed: error_rate" in verdict.summary()


def test_inconclusive_is_not_a_pass() -> None:
    """A too-short run is inconclusive and exits 1."""
    service = _Service()
    before = service.scrape(1000.0)
    service.count(hits=40, misses=10, valid=50)
    facts = _facts(
        _samples(50, spacing=0.4), [before, service.scrape(1020.0)],
        duration=20, rate=150,
    )  # fmt: skip

    verdict = judge(SMOKE, SMOKE.workload, facts, users=1)

    assert verdict.status == "inconclusive"
    assert verdict.exit_code == 1
    assert "cache_hit_rate" in verdict.inconclusive()


def test_achieved_rate_short_of_the_asked_rate_fails() -> None:
    """400 requests in 20 s is 1200/min, a third short of 1800/min."""
    facts = _facts(_samples(400), [], duration=20, rate=1800)

    verdict = judge(SMOKE, SMOKE.workload, facts, users=15)

    assert verdict.check("achieved_rate").status == "fail"
    assert verdict.check("achieved_rate").value == pytest.approx(1200)


@pytest.mark.parametrize(("samples", "noted"), [(0, True), (500, True), (600, False)])
def test_samples_far_fewer_than_the_service_counted_are_noted(
    samples: int, noted: bool
) -> None:
    """Samples that went missing are said, not taken for a load not delivered."""
    service = _Service()
    before = service.scrape(1000.0)
    service.count(hits=590, misses=10, valid=600)
    facts = _facts(
        _samples(samples, spacing=20 / 600), [before, service.scrape(1020.0)],
        duration=20, rate=1800,
    )  # fmt: skip

    verdict = judge(SMOKE, SMOKE.workload, facts, users=15)

    lost = [note for note in verdict.notes if "raw samples were read" in note]
    assert bool(lost) is noted
    if noted:
        assert f"validated 600 requests during the run but only {samples}" in lost[0]


def test_report_files_hold_the_documented_fields(tmp_path: Path) -> None:
    """verdict.json holds scenario, workload, and each target's name, value, result."""
    verdict = judge(SMOKE, Workload(), _verdict_facts(), users=15, processes=2)

    json_path, summary_path = write_report(verdict, tmp_path)

    data = json.loads(json_path.read_text())
    assert data["scenario"]["name"] == "smoke"
    assert data["scenario"]["processes"] == 2
    assert data["workload"]["pool_size"] == 100
    assert {"name", "value", "target", "passed", "status"} <= set(data["targets"][0])
    assert [t["name"] for t in data["targets"]][:2] == ["cache_hit_rate", "latency_p95"]
    assert data["passed"] is True
    assert json_path.read_text() == verdict.to_json()
    summary = summary_path.read_text()
    assert "Cache hit rate" in summary
    assert "verdict   PASS" in summary


def test_every_scenario_judges_at_least_one_check_and_the_rate() -> None:
    """A verdict checks the targets, the expectations, then the rate and the faults."""
    for scenario in SCENARIOS.values():
        verdict = judge(scenario, scenario.workload, _verdict_facts(), users=1)

        names = [check.name for check in verdict.checks]
        run_checks = ["achieved_rate"] + (["faults_applied"] if scenario.faults else [])
        judged = len(scenario.targets) + len(scenario.expectations)
        assert names[: len(scenario.targets)] == list(scenario.targets)
        assert names[judged:] == run_checks


# -- raw samples files ------------------------------------------------------------


def test_samples_of_several_processes_are_read_together(tmp_path: Path) -> None:
    """Each process's file is read, merged and ordered by start time."""
    first, second = SampleWriter(tmp_path, pid=1), SampleWriter(tmp_path, pid=2)
    first.write(2.0, 12.3456, 201, True, ACTIVE)
    second.write(1.0, 7.5, 404, True, UNKNOWN)
    first.close()
    second.close()
    with (tmp_path / "samples-2.csv").open("a") as handle:
        handle.write("3.0,1.0,20")  # cut short by a kill

    samples = read_samples(tmp_path)

    assert [(s.start, s.response_ms, s.status, s.name) for s in samples] == [
        (1.0, 7.5, 404, UNKNOWN),
        (2.0, 12.346, 201, ACTIVE),
    ]


# -- scenarios ---------------------------------------------------------------------


def test_users_times_per_user_rate_is_the_asked_rate() -> None:
    """100/min at one request per 3 s takes 5 users; a fraction rounds up."""
    baseline = SCENARIOS["baseline"]

    assert baseline.users_for(100) == 5
    assert baseline.users_for(110) == 6


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"targets": ("hit_rate",)}, id="unknown-target"),
        pytest.param(
            {
                "faults": (
                    FaultStep(0.6, "clear_faults"),
                    FaultStep(0.3, "set_faults", {"down": True}),
                )
            },
            id="faults-out-of-order",
        ),
        pytest.param({"rate_per_minute": 0}, id="no-rate"),
    ],
)
def test_scenario_refuses_impossible_definitions(changes: dict[str, object]) -> None:
    """A scenario that cannot be run is refused when defined."""
    with pytest.raises(ValueError, match=r"unknown targets|time order|must be > 0"):
        dataclasses.replace(SMOKE, **changes)


def test_fault_steps_say_what_they_do_and_which_start_a_fault() -> None:
    """Switching faults on opens a fault window; clearing or restarting closes it."""
    steps = SCENARIOS["redis-down"].faults + SCENARIOS["upstream-down"].faults

    assert [step.starts_fault for step in steps] == [True, False, True, False]
    assert steps[0].describe() == "at 30%: stop Redis"
    assert SCENARIOS["redis-down"].needs_own_redis
    assert not SCENARIOS["upstream-down"].needs_own_redis


def test_a_fault_step_that_failed_or_never_ran_fails_the_run() -> None:
    """A scenario whose faults were not all carried out did not run as designed."""
    scenario = SCENARIOS["upstream-down"]
    on = FaultEvent(1018.0, 18.0, "set simulator faults {'down': True}")
    refused = FaultEvent(1036.0, 36.0, "clear simulator faults", False, "refused")

    complete = judge(
        scenario, scenario.workload, _verdict_facts(), users=20,
        fault_log=[on, FaultEvent(1036.0, 36.0, "clear simulator faults")],
    )  # fmt: skip
    failed = judge(
        scenario, scenario.workload, _verdict_facts(), users=20,
        fault_log=[on, refused],
    )  # fmt: skip
    cut_short = judge(
        scenario, scenario.workload, _verdict_facts(), users=20, fault_log=[on]
    )

    assert complete.check("faults_applied").status == "pass"
    assert failed.check("faults_applied").status == "fail"
    assert "refused" in failed.check("faults_applied").detail
    assert cut_short.check("faults_applied").status == "fail"
