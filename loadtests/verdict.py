"""The verdict of a load test: each check passed, failed or inconclusive.

:func:`judge` turns what a run measured (:class:`~loadtests._checks.RunFacts`:
every request's raw sample, and scrapes of the service's ``/metrics``) into a
:class:`Verdict`: the scenario's standard targets from the indicator
catalogue, its own expectations, and whether the asked load was delivered.

The verdict passes only when every check passed; inconclusive is not a pass.
It is written as ``verdict.json`` (sorted keys, two-space indent)::

    {
      "scenario": {"name", "description", "expected_outcome", "rate_per_minute",
                   "duration_seconds", "users", "processes", "faults": [...],
                   "expected_status": {"active": 201, ...}},
      "workload": {"pool_size", "zipf_s", "unknown_share", "seed", "subset",
                   "dataset_seed", "dataset_size", "expected": {...},
                   "description": [...]},
      "targets": [{"name", "title", "kind", "status", "passed", "value",
                   "target", "unit", "interval", "samples", "source",
                   "detail"}, ...],
      "passed": bool, "status": "pass" | "fail" | "inconclusive",
      "requests": {"total", "failed", "by_name": {...}, "locust": {...}},
      "latency_ms": {"p50", "p95", "p99", "max", "mean"},
      "counters": {"reset": bool, "resets": [...], "increases": {...}},
      "fault_log": [{"at_seconds", "action", "ok", "detail"}, ...],
      "notes": [...]
    }

and as ``summary.txt``, the same verdict as a table for people.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from instrumentation.indicators import VALIDATION_SUCCESS_RATE, Ratio
from loadtests._checks import (
    Check,
    RunFacts,
    achieved_rate_check,
    counter_increase,
    show,
    target_check,
)
from loadtests._samples import RequestSample
from loadtests._stats import nearest_rank
from loadtests.scenarios import Scenario
from loadtests.workload import Workload

VERDICT_FILE: Final = "verdict.json"
SUMMARY_FILE: Final = "summary.txt"

# Not reported among the increases: per-bucket and creation-time series.
_SKIPPED_SUFFIXES: Final = ("_bucket", "_created")


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A fault step as it was carried out.

    Attributes:
        at: Wall-clock time it was done.
        at_seconds: Seconds after the load started.
        action: What was done, for people.
        ok: Whether it worked.
        detail: The error, when it did not.
    """

    at: float
    at_seconds: float
    action: str
    ok: bool = True
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON values."""
        return {
            "at_seconds": round(self.at_seconds, 3),
            "action": self.action,
            "ok": self.ok,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a load test; see the module docstring for its JSON form."""

    scenario: Mapping[str, Any]
    workload: Mapping[str, Any]
    checks: tuple[Check, ...]
    requests: Mapping[str, Any]
    latency_ms: Mapping[str, float | None]
    counters: Mapping[str, Any]
    fault_log: tuple[FaultEvent, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def status(self) -> str:
        """``pass``; ``fail`` when any check failed; ``inconclusive`` otherwise."""
        if self.passed:
            return "pass"
        if any(check.status == "fail" for check in self.checks):
            return "fail"
        return "inconclusive"

    @property
    def exit_code(self) -> int:
        """The process exit code: 0 only when every check passed, else 1."""
        return 0 if self.passed else 1

    def failed(self) -> list[str]:
        """Return the names of the checks that failed."""
        return [check.name for check in self.checks if check.status == "fail"]

    def inconclusive(self) -> list[str]:
        """Return the names of the checks that were inconclusive."""
        return [c.name for c in self.checks if c.status == "inconclusive"]

    def check(self, name: str) -> Check:
        """Return the check called ``name``.

        Raises:
            KeyError: No such check in this verdict.
        """
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check {name!r}; have {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain JSON values."""
        return {
            "scenario": dict(self.scenario),
            "workload": dict(self.workload),
            "targets": [check.to_dict() for check in self.checks],
            "passed": self.passed,
            "status": self.status,
            "requests": dict(self.requests),
            "latency_ms": dict(self.latency_ms),
            "counters": dict(self.counters),
            "fault_log": [event.to_dict() for event in self.fault_log],
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """Return ``verdict.json``'s text: sorted keys, two-space indent."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def summary(self) -> str:
        """Return the verdict as text for people: the run, then one row per check."""
        scenario = self.scenario
        lines = [
            f"scenario  {scenario['name']}: {scenario['description']}",
            f"expected  {scenario['expected_outcome']}",
            f"load      {scenario['rate_per_minute']:g} requests/min asked for "
            f"{scenario['duration_seconds']:g} s by {scenario['users']} users in "
            f"{scenario['processes']} Locust process(es); "
            f"{self.requests['total']} requests sent",
            "workload",
            *(f"  {line}" for line in self.workload.get("description", ())),
        ]
        expected = scenario.get("expected_status")
        if expected:
            outcomes = ", ".join(
                f"{code} for {kind}" for kind, code in expected.items()
            )
            lines.append(f"outcomes  expected: {outcomes}; any other is a failure")
        if self.fault_log:
            lines.append("faults")
            lines.extend(
                f"  at {event.at_seconds:5.1f} s: {event.action}"
                + ("" if event.ok else f" FAILED: {event.detail}")
                for event in self.fault_log
            )
        lines.append("")
        lines.extend(_table(self.checks))
        lines.append("")
        for note in self.notes:
            lines.append(f"note: {note}")
        lines.append(_headline(self))
        return "\n".join(lines) + "\n"


def _table(checks: Sequence[Check]) -> list[str]:
    header = ("check", "value", "target", "95 % interval", "n", "status")
    rows = [header]
    for check in checks:
        interval = "-"
        if check.interval is not None:
            low, high = check.interval
            interval = f"[{check.shown(low)}, {check.shown(high)}]"
        samples = "-" if check.samples is None else str(check.samples)
        rows.append(
            (
                check.title,
                check.shown(),
                check.target,
                interval,
                samples,
                check.status.upper(),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column in (1, 4) else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    for check in checks:
        if check.status != "pass" and check.detail:
            lines.append(f"  {check.name}: {check.detail}")
    return lines


def _headline(verdict: Verdict) -> str:
    if verdict.passed:
        return "verdict   PASS: every check passed"
    parts = []
    if verdict.failed():
        parts.append(f"failed: {', '.join(verdict.failed())}")
    if verdict.inconclusive():
        parts.append(f"inconclusive: {', '.join(verdict.inconclusive())}")
    return f"verdict   {verdict.status.upper()}: {'; '.join(parts)}"


def judge(
    scenario: Scenario,
    workload: Workload,
    facts: RunFacts,
    *,
    users: int,
    processes: int = 1,
    fault_log: Sequence[FaultEvent] = (),
    locust_totals: Mapping[str, int] | None = None,
) -> Verdict:
    """Judge a run.

    Args:
        scenario: The scenario run (its targets and expectations are judged).
        workload: The workload used (it may differ from the scenario's own).
        facts: What the run measured.
        users: Locust users.
        processes: Locust worker processes (1: a single process).
        fault_log: The fault steps as carried out.
        locust_totals: Locust's own ``requests`` and ``failures`` totals, to
            cross-check the raw samples.
    """
    checks = [target_check(key, facts) for key in scenario.targets]
    checks.extend(expectation.evaluate(facts) for expectation in scenario.expectations)
    checks.append(achieved_rate_check(facts))
    if scenario.faults:
        checks.append(_faults_check(len(scenario.faults), fault_log))
    expected = workload.expected(len(facts.samples))
    notes = _notes(facts, fault_log, locust_totals, expected, checks)
    return Verdict(
        scenario={
            "name": scenario.name,
            "description": scenario.description,
            "expected_outcome": scenario.expected_outcome,
            "rate_per_minute": facts.rate_per_minute,
            "duration_seconds": facts.duration,
            "users": users,
            "processes": processes,
            "faults": [step.to_dict() for step in scenario.faults],
            "expected_status": dict(sorted(scenario.expected_status.items())),
        },
        workload={
            **workload.to_dict(),
            "expected": {key: round(value, 6) for key, value in expected.items()},
            "description": workload.describe(len(facts.samples)),
        },
        checks=tuple(checks),
        requests=_requests(facts.samples, locust_totals),
        latency_ms=_latency(facts.samples),
        counters={
            "reset": bool(facts.counters.resets),
            "resets": list(facts.counters.resets),
            "increases": _increases(facts),
        },
        fault_log=tuple(fault_log),
        notes=tuple(notes),
    )


def _faults_check(planned: int, fault_log: Sequence[FaultEvent]) -> Check:
    """Check that every fault step was carried out: else the run lacks its shape."""
    failed = [event for event in fault_log if not event.ok]
    done = len(fault_log) - len(failed)
    if failed:
        detail = "failed: " + "; ".join(f"{e.action}: {e.detail}" for e in failed)
    elif done < planned:
        detail = "the run ended before every step was due"
    else:
        detail = "every step was carried out on time"
    return Check(
        name="faults_applied",
        title="Fault steps carried out",
        kind="run",
        status="pass" if done == planned else "fail",
        value=done,
        target=f"= {planned}",
        unit="count",
        samples=None,
        source="the runner's fault log",
        detail=detail,
    )


def _requests(
    samples: Sequence[RequestSample], locust_totals: Mapping[str, int] | None
) -> dict[str, Any]:
    by_name: dict[str, dict[str, Any]] = {}
    for sample in samples:
        entry = by_name.setdefault(
            sample.name, {"count": 0, "failed": 0, "statuses": {}}
        )
        entry["count"] += 1
        entry["failed"] += 0 if sample.ok else 1
        statuses = entry["statuses"]
        statuses[str(sample.status)] = statuses.get(str(sample.status), 0) + 1
    return {
        "total": len(samples),
        "failed": sum(1 for sample in samples if not sample.ok),
        "by_name": by_name,
        "locust": dict(locust_totals) if locust_totals is not None else None,
    }


def _latency(samples: Sequence[RequestSample]) -> dict[str, float | None]:
    times = sorted(sample.response_ms for sample in samples)
    if not times:
        return dict.fromkeys(("p50", "p95", "p99", "max", "mean"))
    return {
        "p50": round(nearest_rank(times, 0.50), 3),
        "p95": round(nearest_rank(times, 0.95), 3),
        "p99": round(nearest_rank(times, 0.99), 3),
        "max": round(times[-1], 3),
        "mean": round(statistics.fmean(times), 3),
    }


def _increases(facts: RunFacts) -> dict[str, float]:
    shown: dict[str, float] = {}
    for name, labels, value in facts.counters.samples:
        if name.endswith(_SKIPPED_SUFFIXES):
            continue
        rendered = ",".join(f'{key}="{labels[key]}"' for key in sorted(labels))
        shown[f"{name}{{{rendered}}}" if rendered else name] = value
    return shown


def _notes(
    facts: RunFacts,
    fault_log: Sequence[FaultEvent],
    locust_totals: Mapping[str, int] | None,
    expected: Mapping[str, float],
    checks: Sequence[Check],
) -> list[str]:
    notes = []
    if facts.counters.resets:
        notes.append(
            "the service's counters went back during the run (a restart?): "
            + "; ".join(facts.counters.resets)
            + "; targets read from counters are inconclusive"
        )
    if locust_totals is not None and locust_totals.get("requests") != len(
        facts.samples
    ):
        notes.append(
            f"Locust counted {locust_totals.get('requests')} requests, the raw "
            f"samples {len(facts.samples)}; the verdict uses the raw samples"
        )
    # Every request the service handled is one validation, whatever its result.
    validations = cast(Ratio, VALIDATION_SUCCESS_RATE.query).denominator
    validated = round(counter_increase(facts, validations))
    if validated >= 20 and len(facts.samples) < 0.9 * validated:
        notes.append(
            f"the service validated {validated} requests during the run but only "
            f"{len(facts.samples)} raw samples were read: samples were lost or "
            "written elsewhere, or other clients loaded the service too; the "
            "checks built on the samples do not describe all of its traffic"
        )
    failed_steps = [event for event in fault_log if not event.ok]
    if failed_steps:
        notes.append(
            "some fault steps failed, so the run did not have the intended "
            "shape: " + "; ".join(event.action for event in failed_steps)
        )
    hit = next((c for c in checks if c.name == "cache_hit_rate"), None)
    if hit is not None and hit.value is not None:
        predicted = show(expected["hit_rate"], "ratio")
        notes.append(
            f"the workload predicted a hit rate of {predicted} for "
            f"{len(facts.samples)} requests from a cold cache; measured {hit.shown()}"
        )
    return notes


def write_report(verdict: Verdict, folder: Path) -> tuple[Path, Path]:
    """Write ``verdict.json`` and ``summary.txt`` into ``folder``.

    Returns:
        The two paths.
    """
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / VERDICT_FILE
    json_path.write_text(verdict.to_json())
    summary_path = folder / SUMMARY_FILE
    summary_path.write_text(verdict.summary())
    return json_path, summary_path
