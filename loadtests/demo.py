"""``bdobs demo``: the whole bundle at work, on servers it starts itself.

The demo is what an operator would do before trusting the bundle, in one
command:

1. build the dashboards and the alert rules into ``build/demo/``, and check
   the rules with promtool (and the Alertmanager example with amtool);
2. start the stack (Redis, simulator, service, Prometheus) on loopback and
   load the rules into its Prometheus through the same code as
   ``bdobs alerts load``, with the ``demo`` profile: the shipped rules with
   short ``for:`` durations and windows, so alerts react within a minute;
3. optionally (``--warm``) measure what warming the most used buildings does
   to the hit rate: a short cold probe, then the cache emptied and warmed,
   then the same probe again;
4. run the ``baseline`` scenario and judge it against the targets, then a
   fault phase under load: Redis stopped for a while and started again, then
   the upstream made slow, recording which alerts went pending and firing and
   whether requests kept succeeding;
5. check every dashboard query against the live Prometheus, and write the
   report: ``verdict.json``, ``summary.txt``, Locust's ``locust.html``, the
   final ``metrics.prom``, the alert timeline and ``report.html`` with charts of
   hit rate, p95 latency, request rate and error rate over the run, taken from
   Prometheus range queries, targets and thresholds drawn on them.

Exit code 0 when no target of the baseline failed and the fault phase behaved
as expected. A target can also be *inconclusive*: 200 requests (the default
two minutes at 100 a minute) cannot show an error rate under 1 % with 95 %
confidence, however clean the run. The demo says so and still exits 0;
``--strict`` makes anything short of a pass fail, as ``bdobs loadtest run``
always does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from loadtests._alert_watch import AlertWatch
from loadtests._demo_report import Phase, fetch_charts, write_html
from loadtests.runner import Progress, run_load_test
from loadtests.scenarios import BASELINE, FaultStep, Scenario
from loadtests.stack import Stack, StackUrls
from loadtests.verdict import Verdict

logger = logging.getLogger(__name__)

#: Alerts the fault phase must make fire: Redis stopped shows as a degraded
#: cache, a slow upstream as high latency.
EXPECTED_ALERTS: Final = ("BuildingCacheDegraded", "BuildingDirectoryLatencyHigh")

#: Length of each warm-up probe: 150 requests at 600 a minute.
_PROBE_SECONDS: Final = 15.0

#: How much slower the upstream answers in the slow part of the fault phase:
#: enough to push p95 past the 1 s alert, and short of the client's 2 s read
#: timeout even for the simulator's slowest answers (base latency up to 0.6 s).
SLOW_UPSTREAM_SECONDS: Final = 1.2


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What the demo runs; every field has the default ``bdobs demo`` uses.

    Attributes:
        out: The report folder; emptied first.
        duration: Seconds of baseline load.
        rate_per_minute: Baseline request rate.
        warm: Measure and apply cache warming before the baseline.
        warm_top: How many of the most used buildings to warm.
        redis_outage: Seconds Redis stays stopped in the fault phase.
        slow_phase: Seconds the upstream stays slow in the fault phase.
        fault_rate_per_minute: Request rate during the fault phase.
        strict: Fail on inconclusive targets too.
    """

    out: Path = Path("build/demo")
    duration: float = 120.0
    rate_per_minute: float = 100.0
    warm: bool = False
    warm_top: int = 20
    redis_outage: float = 45.0
    slow_phase: float = 50.0
    fault_rate_per_minute: float = 300.0
    strict: bool = False


@dataclass(slots=True)
class DemoResult:
    """What the demo found; ``exit_code`` is the command's."""

    baseline: Verdict | None = None
    faults: Verdict | None = None
    alerts_fired: dict[str, bool] = field(default_factory=dict)
    warm_effect: dict[str, float] | None = None
    dashboard_problems: list[str] = field(default_factory=list)
    rule_checks: list[tuple[str, bool]] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    strict: bool = False

    @property
    def baseline_ok(self) -> bool:
        """No baseline target failed (and, when strict, every one passed)."""
        if self.baseline is None:
            return False
        if self.strict:
            return self.baseline.passed
        return not self.baseline.failed()

    @property
    def faults_ok(self) -> bool:
        """Requests kept succeeding and every expected alert fired."""
        return (
            self.faults is not None
            and self.faults.passed
            and all(self.alerts_fired.get(name) for name in EXPECTED_ALERTS)
        )

    @property
    def exit_code(self) -> int:
        """0 when the baseline and the fault phase behaved, else 1."""
        return 0 if self.baseline_ok and self.faults_ok else 1


def fault_scenario(options: DemoOptions) -> tuple[Scenario, float]:
    """Return the fault phase as a scenario, and its duration in seconds.

    The schedule, in seconds: 10 s of calm, Redis stopped for
    ``redis_outage``, 20 s for the cache to refill, the upstream slow for
    ``slow_phase``, then 15 s of calm for alerts to resolve.
    """
    calm, refill, tail = 10.0, 20.0, 15.0
    total = calm + options.redis_outage + refill + options.slow_phase + tail
    redis_back = calm + options.redis_outage
    slow_from = redis_back + refill
    slow_to = slow_from + options.slow_phase
    scenario = Scenario(
        name="demo-faults",
        description=f"Redis stopped for {options.redis_outage:g} s, then the "
        f"upstream {SLOW_UPSTREAM_SECONDS:g} s slower for {options.slow_phase:g} s.",
        expected_outcome="Every request still succeeds (slower while a fault "
        "lasts); the cache-degraded and latency alerts fire and resolve.",
        rate_per_minute=options.fault_rate_per_minute,
        duration=total,
        user_interval=5.0,
        targets=("error_rate",),
        expectations=_fault_expectations(),
        faults=(
            FaultStep(calm / total, "stop_redis"),
            FaultStep(redis_back / total, "start_redis"),
            FaultStep(
                slow_from / total,
                "set_faults",
                {"extra_latency": SLOW_UPSTREAM_SECONDS},
            ),
            FaultStep(slow_to / total, "clear_faults"),
        ),
    )
    return scenario, total


def _fault_expectations() -> tuple[Any, ...]:
    from loadtests._expectations import MaxResponseTime, NoFailedRequests

    # A slow miss costs the upstream's latency plus the extra 1.2 s, under the
    # client's 2 s read timeout: nobody should wait past 4 s.
    return (NoFailedRequests(), MaxResponseTime(limit=4.0))


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so cleanup runs either way."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(options: DemoOptions, *, say: Callable[[str], None] = print) -> DemoResult:
    """Run the demo; see the module docstring.

    Args:
        options: What to run.
        say: Where progress lines go; ``print`` for the CLI.
    """
    out = options.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    result = DemoResult(strict=options.strict)
    started = time.monotonic()

    def step(text: str) -> None:
        say(f"[{time.monotonic() - started:6.1f} s] {text}")

    with _terminate_as_interrupt():
        step("building dashboards and rules into " + str(out))
        _build_artifacts(out, result)
        failed_checks = [name for name, passed in result.rule_checks if not passed]
        if failed_checks:
            raise RuntimeError(f"rule checks failed: {', '.join(failed_checks)}")

        stack = Stack(out / "stack", scrape_interval="2s")
        step("starting the stack (redis-server, simulator, service, prometheus)")
        urls = stack.start()
        result.pids.update(stack.started_pids())
        watch: AlertWatch | None = None
        try:
            step(f"service {urls.service_url}, prometheus {urls.prometheus_url}")
            _load_demo_rules(urls, step)
            watch = AlertWatch(str(urls.prometheus_url)).start()
            t0 = time.time()
            if options.warm:
                result.warm_effect = _measure_warming(stack, options, out, step)
            _run_phases(stack, options, out, result, watch, step)
            step("checking every dashboard query against the live Prometheus")
            result.dashboard_problems = _check_dashboards(out, urls)
            watch.stop()
            step("writing the report")
            _write_report(out, urls, result, watch, t0, options)
        finally:
            if watch is not None:
                watch.stop()
            step("stopping the stack")
            result.pids.update(
                {f"{part} (last)": pid for part, pid in stack.started_pids().items()}
            )
            stack.stop()
    return result


def _build_artifacts(out: Path, result: DemoResult) -> None:
    import alerts
    import dashboards

    dashboards.build(out / "grafana", runbook_base="../../alerts/runbooks")
    alerts.build(out / "alerts", alerts.DEFAULT_CONFIG)
    for check in alerts.check(alerts.DEFAULT_CONFIG):
        result.rule_checks.append((check.name, check.passed))


def _load_demo_rules(urls: StackUrls, step: Callable[[str], None]) -> None:
    import alerts

    if urls.prometheus_url is None or urls.prometheus_rules_dir is None:
        raise RuntimeError("the demo needs the stack's own Prometheus")
    report = alerts.load_rules(
        urls.prometheus_url,
        Path(urls.prometheus_rules_dir),
        alerts.render_rules(alerts.DEMO_CONFIG),
    )
    step(
        f"loaded the demo rule profile ({', '.join(report.groups)}) into "
        f"Prometheus in {report.seconds:.2f} s"
    )


def _progress(step: Callable[[str], None], phase: str) -> Callable[[Progress], None]:
    def report(progress: Progress) -> None:
        step(f"{phase}: {progress.line()}")

    return report


def _run_phases(
    stack: Stack,
    options: DemoOptions,
    out: Path,
    result: DemoResult,
    watch: AlertWatch,
    step: Callable[[str], None],
) -> None:
    step(
        f"baseline: {options.rate_per_minute:g} requests/min for {options.duration:g} s"
    )
    begin = watch.elapsed()
    result.baseline = run_load_test(
        BASELINE,
        report_dir=out / "baseline",
        duration=options.duration,
        rate_per_minute=options.rate_per_minute,
        stack=stack,
        progress=_progress(step, "baseline"),
    )
    step(f"baseline verdict: {result.baseline.status}")

    scenario, total = fault_scenario(options)
    step(f"fault phase: {scenario.description} ({total:g} s)")
    begin = watch.elapsed()
    result.faults = run_load_test(
        scenario,
        report_dir=out / "faults",
        stack=stack,
        progress=_progress(step, "faults"),
    )
    end = watch.elapsed()
    # Alerts lag the fault by their window and `for:`; give them until the end.
    watch.poll()
    fired = {
        event.alert
        for event in watch.events
        if event.state == "firing" and begin <= event.at <= end + 5
    }
    result.alerts_fired = {name: name in fired for name in EXPECTED_ALERTS}
    result.phases.extend(_fault_windows(result.faults, offset=begin))
    step(
        "fault phase verdict: "
        f"{result.faults.status}; alerts fired: "
        + ", ".join(
            f"{k}={'yes' if v else 'NO'}" for k, v in result.alerts_fired.items()
        )
    )


def _fault_windows(verdict: Verdict, *, offset: float) -> list[Phase]:
    """Pair each fault's start and end step into a shaded span of the charts."""
    windows: list[Phase] = []
    opened: dict[str, float] = {}
    for event in verdict.fault_log:
        at = offset + event.at_seconds
        if event.action.startswith("stop Redis"):
            opened["Redis stopped"] = at
        elif event.action.startswith("start Redis"):
            windows.append(Phase("Redis stopped", opened.pop("Redis stopped", at), at))
        elif event.action.startswith("set simulator faults"):
            opened["upstream slow"] = at
        elif event.action.startswith("clear simulator faults"):
            windows.append(Phase("upstream slow", opened.pop("upstream slow", at), at))
    return windows


def _measure_warming(
    stack: Stack, options: DemoOptions, out: Path, step: Callable[[str], None]
) -> dict[str, float]:
    """Hit rate of a short probe cold, then after warming the top buildings."""
    step(f"warm-up probe 1/2: {_PROBE_SECONDS:g} s with a cold cache")
    cold = run_load_test(
        BASELINE,
        report_dir=out / "warm" / "cold",
        stack=stack,
        duration=20.0,
        rate_per_minute=600.0,
    )
    asyncio.run(_flush_and_warm(stack, options.warm_top))
    step(f"emptied the cache and warmed the {options.warm_top} most used buildings")
    step(f"warm-up probe 2/2: {_PROBE_SECONDS:g} s with a warmed cache")
    warm = run_load_test(
        BASELINE,
        report_dir=out / "warm" / "warm",
        stack=stack,
        duration=20.0,
        rate_per_minute=600.0,
    )
    effect = {
        "cold_hit_rate": _value(cold, "cache_hit_rate"),
        "warm_hit_rate": _value(warm, "cache_hit_rate"),
        "warmed_buildings": float(options.warm_top),
    }
    step(
        "warming the top {warmed_buildings:.0f} buildings moved the probe's "
        "hit rate from {cold_hit_rate:.1%} to {warm_hit_rate:.1%}".format(**effect)
    )
    return effect


async def _flush_and_warm(stack: Stack, top: int) -> None:
    from redis.asyncio import Redis

    from instrumentation import BuildingDirectoryClient, DisabledMetrics, Settings

    urls = stack.urls
    raw = Redis.from_url(urls.redis_url)
    try:
        await raw.flushdb()
    finally:
        await raw.aclose()
    settings = Settings(redis_url=urls.redis_url, base_url=urls.directory_url)
    ids = BASELINE.workload.pool()[:top]
    async with BuildingDirectoryClient(settings, metrics=DisabledMetrics()) as client:
        await client.warm(ids)


def _value(verdict: Verdict, name: str) -> float:
    value = verdict.check(name).value
    return float("nan") if value is None else value


def _check_dashboards(out: Path, urls: StackUrls) -> list[str]:
    import dashboards

    problems: list[str] = []
    for path in sorted((out / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        problems += [
            f"{path.name}: {problem}"
            for problem in dashboards.query_all(str(urls.prometheus_url), dashboard)
        ]
    return problems


def _write_report(
    out: Path,
    urls: StackUrls,
    result: DemoResult,
    watch: AlertWatch,
    t0: float,
    options: DemoOptions,
) -> None:
    assert result.baseline is not None
    assert result.faults is not None
    for name in ("verdict.json", "summary.txt", "locust.html"):
        shutil.copyfile(out / "baseline" / name, out / name)
    shutil.copyfile(out / "faults" / "metrics.prom", out / "metrics.prom")
    (out / "alerts-timeline.json").write_text(watch.to_json())
    (out / "alerts-timeline.md").write_text(watch.to_markdown())
    charts = fetch_charts(
        str(urls.prometheus_url),
        start=t0,
        end=time.time(),
        phases=result.phases,
        asked_rate=options.rate_per_minute,
    )
    summary = {
        "exit_code": result.exit_code,
        "baseline": result.baseline.status,
        "faults": result.faults.status,
        "alerts_fired": result.alerts_fired,
        "warm_effect": result.warm_effect,
        "dashboard_problems": result.dashboard_problems,
        "rule_checks": dict(result.rule_checks),
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_html(
        out / "report.html",
        baseline=result.baseline,
        faults=result.faults,
        charts=charts,
        timeline=watch.events,
        summary=summary,
    )


def summary_table(result: DemoResult) -> str:
    """The short table ``bdobs demo`` prints at the end."""
    lines = [f"{'check':<38} {'value':>12} {'target':>16}  result"]
    if result.baseline is not None:
        for check in result.baseline.checks:
            lines.append(
                f"{check.title:<38} {check.shown():>12} {check.target:>16}  "
                f"{check.status}"
            )
    if result.faults is not None:
        lines.append("")
        lines.append(f"fault phase: {result.faults.status}")
        for check in result.faults.checks:
            lines.append(
                f"  {check.title:<36} {check.shown():>12} {check.target:>16}  "
                f"{check.status}"
            )
    for name, fired in result.alerts_fired.items():
        lines.append(f"  alert {name:<30} {'fired' if fired else 'DID NOT FIRE'}")
    if result.warm_effect is not None:
        lines.append(
            "warming: probe hit rate {cold_hit_rate:.1%} cold, "
            "{warm_hit_rate:.1%} warmed".format(**result.warm_effect)
        )
    if result.dashboard_problems:
        lines.append(
            f"dashboard queries with problems: {len(result.dashboard_problems)}"
        )
    if result.baseline is not None and result.baseline.inconclusive():
        lines.append(
            "inconclusive: too few requests to be sure within 95 % confidence; "
            "run longer (--duration 5m) or faster (--rate 300)"
        )
    lines.append(f"demo {'passed' if result.exit_code == 0 else 'FAILED'}")
    return "\n".join(lines)
