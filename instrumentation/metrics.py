"""The eight Prometheus metrics of the Building Directory client.

Names, types and label sets are fixed; every label value comes from one of the
closed sets below, so no building id, tenant, URL or exception text can ever
become a label value. Each :class:`BuildingDirectoryMetrics` registers its
metrics in the registry it is given, so two clients in one process (or one test
per registry) never collide.

Every labelled series is created at construction, so each series is exported as
0 before any traffic: rules and dashboards see a 0 rather than nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

#: Operations of ``building_directory_requests_total`` and of the histogram:
#: ``get_building`` is one lookup through the cached client, whatever served it;
#: ``fetch_building`` is one HTTP call to the Building Directory API.
OPERATIONS: Final = ("get_building", "fetch_building")

#: Outcomes of a request. ``stale`` is a lookup answered from an expired cached
#: copy because the upstream failed; ``invalid_id`` a lookup refused before any
#: call because the id is malformed.
REQUEST_STATUSES: Final = ("success", "not_found", "error", "stale", "invalid_id")

CACHE_OPERATIONS: Final = ("hit", "miss", "set", "error")
VALIDATION_RESULTS: Final = ("valid", "invalid_not_found", "invalid_inactive", "error")
COORDINATE_RESULTS: Final = ("success", "missing", "parse_error")
COORDINATE_SOURCES: Final = ("nested", "flat", "missing")
ERROR_TYPES: Final = ("timeout", "http_error", "parse_error", "unknown")
DENORMALIZATION_STATUSES: Final = ("success", "failure")
CACHE_LEVELS: Final = ("near", "redis")

#: The SPEC's buckets plus 0.2 s, so the 200 ms p95 target is a bucket boundary
#: and "below 200 ms" can be read off the histogram exactly.
LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0)

#: The valid (result, source) pairs of ``coordinate_extractions_total``.
COORDINATE_PAIRS: Final = (
    ("success", "nested"),
    ("success", "flat"),
    ("parse_error", "nested"),
    ("parse_error", "flat"),
    ("missing", "missing"),
)


class _CounterChild(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _HistogramChild(Protocol):
    def observe(self, amount: float) -> None: ...


class _GaugeChild(Protocol):
    def inc(self, amount: float = 1) -> None: ...

    def dec(self, amount: float = 1) -> None: ...


class BuildingDirectoryMetrics:
    """The eight metrics, registered in one registry, with pre-bound children.

    Label children are looked up once here, not on every lookup, which keeps
    the instrumentation on the hot path to a few dictionary reads.

    Args:
        registry: Where to register the metrics; the process-wide default
            registry unless given.

    Example:
        >>> from prometheus_client import CollectorRegistry
        >>> metrics = BuildingDirectoryMetrics(CollectorRegistry())
        >>> metrics.cache["hit"].inc()
    """

    enabled: bool = True

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.registry = registry
        requests = Counter(
            "building_directory_requests_total",
            "Building Directory lookups and upstream calls, by outcome.",
            ["operation", "status"],
            registry=registry,
        )
        duration = Histogram(
            "building_directory_request_duration_seconds",
            "Duration of Building Directory lookups and upstream calls.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        cache = Counter(
            "building_cache_operations_total",
            "Building cache operations: hits, misses, writes and Redis errors.",
            ["operation"],
            registry=registry,
        )
        self.active_connections: _GaugeChild = Gauge(
            "building_directory_active_connections",
            "HTTP calls to the Building Directory currently in flight.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        validations = Counter(
            "building_validations_total",
            "Building validations, by result.",
            ["result"],
            registry=registry,
        )
        coordinates = Counter(
            "coordinate_extractions_total",
            "Coordinate extractions, by result and by the shape they came in.",
            ["result", "source"],
            registry=registry,
        )
        errors = Counter(
            "building_directory_errors_total",
            "Building Directory failures, by kind.",
            ["error_type"],
            registry=registry,
        )
        denormalization = Counter(
            "building_denormalization_total",
            "Denormalizations of a building into a request, by outcome.",
            ["status"],
            registry=registry,
        )
        # Not one of the eight: tells cache levels apart without adding a
        # label to building_cache_operations_total, whose labels are fixed.
        level_hits = Counter(
            "building_cache_level_hits_total",
            "Cache hits by the level that served them (near: in-process).",
            ["level"],
            registry=registry,
        )

        self.requests: Mapping[tuple[str, str], _CounterChild] = {
            (op, status): requests.labels(operation=op, status=status)
            for op in OPERATIONS
            for status in REQUEST_STATUSES
        }
        self.duration: Mapping[str, _HistogramChild] = {
            op: duration.labels(operation=op) for op in OPERATIONS
        }
        self.cache: Mapping[str, _CounterChild] = {
            op: cache.labels(operation=op) for op in CACHE_OPERATIONS
        }
        self.validations: Mapping[str, _CounterChild] = {
            result: validations.labels(result=result) for result in VALIDATION_RESULTS
        }
        self.coordinates: Mapping[tuple[str, str], _CounterChild] = {
            (result, source): coordinates.labels(result=result, source=source)
            for result, source in COORDINATE_PAIRS
        }
        self.errors: Mapping[str, _CounterChild] = {
            error_type: errors.labels(error_type=error_type)
            for error_type in ERROR_TYPES
        }
        self.denormalization: Mapping[str, _CounterChild] = {
            status: denormalization.labels(status=status)
            for status in DENORMALIZATION_STATUSES
        }
        self.level_hits: Mapping[str, _CounterChild] = {
            level: level_hits.labels(level=level) for level in CACHE_LEVELS
        }


class _Nothing:
    """A metric child that records nothing; every method is a no-op."""

    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None

    def observe(self, amount: float) -> None:
        return None


class DisabledMetrics(BuildingDirectoryMetrics):
    """Metrics that record nothing, to measure what instrumentation costs."""

    enabled = False

    def __init__(self) -> None:  # registers nothing on purpose
        nothing = _Nothing()
        self.registry = None
        self.active_connections = nothing
        self.requests = {
            (op, status): nothing for op in OPERATIONS for status in REQUEST_STATUSES
        }
        self.duration = dict.fromkeys(OPERATIONS, nothing)
        self.cache = dict.fromkeys(CACHE_OPERATIONS, nothing)
        self.validations = dict.fromkeys(VALIDATION_RESULTS, nothing)
        self.coordinates = dict.fromkeys(COORDINATE_PAIRS, nothing)
        self.errors = dict.fromkeys(ERROR_TYPES, nothing)
        self.denormalization = dict.fromkeys(DENORMALIZATION_STATUSES, nothing)
        self.level_hits = dict.fromkeys(CACHE_LEVELS, nothing)
