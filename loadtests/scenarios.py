"""The load-test scenarios: load, workload, faults, and what each expects.

=========================  =========  ========  ===================================
scenario                   rate /min  duration  judged on
=========================  =========  ========  ===================================
``smoke``                  1800       20 s      every target (plumbing, not speed)
``baseline``               100        5 min     every target
``upstream-slow``          600        60 s      errors and validation; bounded waits
``upstream-down``          600        60 s      failures only during the outage,
                                                cache still serves, fast failures
``upstream-timeout``       600        60 s      the same, the upstream hanging
``redis-down``             600        60 s      no failed request; cache errors
                                                counted; the cache recovers
``unknown-ids``            600        60 s      404s are no failures, and counted
``malformed-coordinates``  600        60 s      parse errors counted, never a 5xx
=========================  =========  ========  ===================================

Rate control: each Locust user sends one request every ``user_interval``
seconds (``constant_throughput``), and there are ``rate × user_interval``
users, so users × per-user rate = the asked rate. An interval longer than the
slowest expected answer keeps the rate even when requests are slow (a user
waiting on a 3 s timeout cannot send its next request sooner).

Faults are scheduled at fractions of the run (``FaultStep.at``), so a shorter
or longer ``--duration`` keeps their shape. The runner executes them from the
controlling process, through the simulator's ``/_faults`` endpoint or by
stopping and starting the stack's Redis.

Why smoke is short yet conclusive: a clean run of n requests shows an error
rate below 1 % with 95 % confidence only when n is at least 380 (the Wilson
upper bound of 0 failures in n), so smoke sends 600 requests in 20 s. Its
upstream answers in 33-67 ms instead of 100-200 ms: smoke proves the parts
work together, the baseline proves the performance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from instrumentation.indicators import Matcher, Series
from loadtests._checks import TARGET_KEYS
from loadtests._expectations import (
    CacheRecovers,
    CounterIncreased,
    CounterMatchesResponses,
    Expectation,
    FailuresOnlyDuringFault,
    MaxResponseTime,
    NoFailedRequests,
    NoServerErrors,
    ServedDuringFault,
)
from loadtests.workload import EXPECTED_STATUS, Workload

FaultAction = Literal["set_faults", "clear_faults", "stop_redis", "start_redis"]

#: The client's default deadline for one lookup, in seconds; no request
#: should outlast it by more than the service's own overhead.
_DEADLINE: Final = 3.0


@dataclass(frozen=True, slots=True)
class FaultStep:
    """One switch of a fault during a run.

    Attributes:
        at: When, as a fraction of the run (0.3: at 30 % of the duration).
        action: ``set_faults`` (replace the simulator's faults with
            ``faults``), ``clear_faults``, ``stop_redis`` or ``start_redis``.
        faults: For ``set_faults``: the simulator's ``PUT /_faults`` body.
    """

    at: float
    action: FaultAction
    faults: Mapping[str, float | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.at < 1:
            raise ValueError(f"at is a fraction of the run (0 to 1), got {self.at}")

    @property
    def starts_fault(self) -> bool:
        """Whether this step switches a fault on."""
        return self.action == "stop_redis" or (
            self.action == "set_faults" and any(self.faults.values())
        )

    def what(self) -> str:
        """Render the action for people: ``stop Redis``."""
        return {
            "set_faults": f"set simulator faults {dict(self.faults)}",
            "clear_faults": "clear simulator faults",
            "stop_redis": "stop Redis",
            "start_redis": "start Redis again (empty)",
        }[self.action]

    def describe(self) -> str:
        """Render for people: ``at 30 %: stop Redis``."""
        return f"at {self.at:.0%}: {self.what()}"

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON values."""
        return {"at": self.at, "action": self.action, "faults": dict(self.faults)}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A load test: how much load, which ids, which faults, what is expected.

    Attributes:
        name: The ``--scenario`` name.
        description: What it exercises.
        expected_outcome: What a healthy system shows under it, in words.
        rate_per_minute: Default request rate.
        duration: Default duration, in seconds.
        user_interval: Seconds between two requests of one user.
        workload: Which ids are asked for.
        targets: Which standard targets (:data:`TARGET_KEYS`) are judged.
        expectations: The scenario's own checks.
        faults: The fault schedule.
        simulator_latency: Mean upstream latency, in seconds, of the simulator
            the runner starts for this scenario.
        expected_status: The status each request class expects; any other
            outcome is a failed request (404 for an unknown id is none).
    """

    name: str
    description: str
    expected_outcome: str
    rate_per_minute: float
    duration: float
    user_interval: float
    workload: Workload = field(default_factory=Workload)
    targets: tuple[str, ...] = TARGET_KEYS
    expectations: tuple[Expectation, ...] = ()
    faults: tuple[FaultStep, ...] = ()
    simulator_latency: float = 0.15
    expected_status: Mapping[str, int] = field(
        default_factory=lambda: dict(EXPECTED_STATUS)
    )

    def __post_init__(self) -> None:
        unknown = sorted(set(self.targets) - set(TARGET_KEYS))
        if unknown:
            raise ValueError(f"unknown targets {unknown}; known: {list(TARGET_KEYS)}")
        if self.rate_per_minute <= 0 or self.duration <= 0 or self.user_interval <= 0:
            raise ValueError("rate, duration and user interval must be > 0")
        if [step.at for step in self.faults] != sorted(s.at for s in self.faults):
            raise ValueError("fault steps must be in time order")

    @property
    def needs_own_redis(self) -> bool:
        """Whether the schedule stops and starts Redis (a stack the runner owns)."""
        return any(step.action in ("stop_redis", "start_redis") for step in self.faults)

    @property
    def needs_simulator(self) -> bool:
        """Whether the schedule sets simulator faults."""
        return any(
            step.action in ("set_faults", "clear_faults") for step in self.faults
        )

    def users_for(self, rate_per_minute: float) -> int:
        """Return how many users send ``rate_per_minute`` at this interval."""
        return max(1, math.ceil(rate_per_minute / 60 * self.user_interval - 1e-9))

    def to_dict(self) -> dict[str, Any]:
        """Return the scenario's definition as plain JSON values."""
        return {
            "name": self.name,
            "description": self.description,
            "expected_outcome": self.expected_outcome,
            "default_rate_per_minute": self.rate_per_minute,
            "default_duration_seconds": self.duration,
            "user_interval_seconds": self.user_interval,
            "targets": list(self.targets),
            "expectations": [
                {"name": e.name, "expects": e.describe()} for e in self.expectations
            ],
            "faults": [step.to_dict() for step in self.faults],
            "simulator_latency_seconds": self.simulator_latency,
            "expected_status": dict(sorted(self.expected_status.items())),
        }


_CACHE_ERRORS: Final = Series(
    "building_cache_operations_total", (Matcher("operation", "=", "error"),)
)
_LOOKUP_ERRORS: Final = Series("building_directory_errors_total")
_PARSE_ERRORS: Final = Series(
    "coordinate_extractions_total", (Matcher("result", "=", "parse_error"),)
)
_NOT_FOUND: Final = Series(
    "building_validations_total", (Matcher("result", "=", "invalid_not_found"),)
)

_OUTAGE_EXPECTATIONS: Final[tuple[Expectation, ...]] = (
    FailuresOnlyDuringFault(grace=2.0),
    ServedDuringFault(min_share=0.5),
    MaxResponseTime(limit=_DEADLINE + 1.0),
    CounterIncreased("lookup_errors_counted", "Lookup errors counted", _LOOKUP_ERRORS),
)

SMOKE: Final = Scenario(
    name="smoke",
    description="A short run at a high rate against a fast upstream, for CI: "
    "every target is judged on 600 requests.",
    expected_outcome="Every target passes; the parts work together.",
    rate_per_minute=1800,
    duration=20,
    user_interval=0.5,
    simulator_latency=0.05,
)

BASELINE: Final = Scenario(
    name="baseline",
    description="The SPEC's baseline: 100 requests per minute for 5 minutes "
    "against an upstream answering in 100-200 ms.",
    expected_outcome="Hit rate at least 70 %, p95 under 200 ms, error rate under "
    "1 %, validation success over 95 %.",
    rate_per_minute=100,
    duration=300,
    user_interval=3.0,
)

UPSTREAM_SLOW: Final = Scenario(
    name="upstream-slow",
    description="The Building Directory answers 0.5 s slower from 25 % to 75 % "
    "of the run.",
    expected_outcome="Requests still succeed (misses are slower, hits are not); "
    "nobody waits past the client's deadline. p95 is not judged: it is expected "
    "to rise.",
    rate_per_minute=600,
    duration=60,
    user_interval=2.0,
    targets=("error_rate", "validation_success_rate", "lookup_error_rate"),
    expectations=(NoFailedRequests(), MaxResponseTime(limit=_DEADLINE + 1.0)),
    faults=(
        FaultStep(0.25, "set_faults", {"extra_latency": 0.5}),
        FaultStep(0.75, "clear_faults"),
    ),
)

UPSTREAM_DOWN: Final = Scenario(
    name="upstream-down",
    description="The Building Directory answers 503 to everything from 30 % to "
    "60 % of the run.",
    expected_outcome="Cached buildings are still served; uncached ones fail fast "
    "with 503; failures stop once the upstream is back; the outage shows in "
    "building_directory_errors_total.",
    rate_per_minute=600,
    duration=60,
    user_interval=2.0,
    targets=(),
    expectations=_OUTAGE_EXPECTATIONS,
    faults=(
        FaultStep(0.3, "set_faults", {"down": True}),
        FaultStep(0.6, "clear_faults"),
    ),
)

UPSTREAM_TIMEOUT: Final = Scenario(
    name="upstream-timeout",
    description="The Building Directory hangs on every lookup from 30 % to 60 % "
    "of the run.",
    expected_outcome="Cached buildings are still served; uncached ones fail with "
    "503 within the client's 3 s deadline instead of hanging; failures stop once "
    "the upstream is back.",
    rate_per_minute=600,
    duration=60,
    # Longer than the deadline: a user stuck on a timeout still keeps its rate.
    user_interval=4.0,
    targets=(),
    expectations=_OUTAGE_EXPECTATIONS,
    faults=(
        FaultStep(0.3, "set_faults", {"timeout_rate": 1.0}),
        FaultStep(0.6, "clear_faults"),
    ),
)

REDIS_DOWN: Final = Scenario(
    name="redis-down",
    description="Redis is stopped at 30 % of the run and started again, empty, "
    "at 60 %.",
    expected_outcome="Graceful degradation: every request still succeeds (slower, "
    "through the upstream); Redis failures are counted as cache errors; the cache "
    "serves hits again after Redis is back. Hit rate and p95 are not judged.",
    rate_per_minute=600,
    duration=60,
    user_interval=2.0,
    targets=("error_rate", "validation_success_rate", "lookup_error_rate"),
    expectations=(
        NoFailedRequests(),
        CounterIncreased("cache_errors_counted", "Cache errors counted", _CACHE_ERRORS),
        CacheRecovers(),
    ),
    faults=(FaultStep(0.3, "stop_redis"), FaultStep(0.6, "start_redis")),
)

UNKNOWN_IDS: Final = Scenario(
    name="unknown-ids",
    description="A fifth of the requests name building ids that do not exist.",
    expected_outcome="Unknown ids answer 404, which is their expected outcome and "
    "no failure; each one counts as invalid_not_found, none as a lookup error. "
    "Validation success and hit rate are not judged: unknown ids lower both.",
    rate_per_minute=600,
    duration=60,
    user_interval=2.0,
    workload=Workload(unknown_share=0.2),
    targets=("error_rate", "lookup_error_rate"),
    expectations=(
        NoServerErrors(),
        CounterMatchesResponses(
            "not_found_counted",
            "invalid_not_found per 404",
            _NOT_FOUND,
            "unknown",
            404,
        ),
    ),
)

MALFORMED_COORDINATES: Final = Scenario(
    name="malformed-coordinates",
    description="Only buildings whose coordinates are malformed (strings, out of "
    "range, null) are asked for.",
    expected_outcome="Requests are created without coordinates (201); each "
    "building read counts one coordinate parse error; no 5xx, no crash.",
    rate_per_minute=600,
    duration=60,
    user_interval=2.0,
    workload=Workload(subset="malformed", pool_size=140),
    targets=("error_rate", "lookup_error_rate"),
    expectations=(
        NoServerErrors(),
        CounterMatchesResponses(
            "parse_errors_counted",
            "Parse errors per 201",
            _PARSE_ERRORS,
            "active",
            201,
        ),
    ),
)

#: Every scenario by name, in help order.
SCENARIOS: Final[dict[str, Scenario]] = {
    scenario.name: scenario
    for scenario in (
        SMOKE,
        BASELINE,
        UPSTREAM_SLOW,
        UPSTREAM_DOWN,
        UPSTREAM_TIMEOUT,
        REDIS_DOWN,
        UNKNOWN_IDS,
        MALFORMED_COORDINATES,
    )
}


def get(name: str) -> Scenario:
    """Return the scenario called ``name``.

    Raises:
        KeyError: No such scenario; the message lists the known ones.
    """
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
