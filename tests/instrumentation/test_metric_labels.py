"""Every exported label value stays within the fixed sets of metrics.py."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from fake_directory import FakeDirectory, Scripted
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryError,
    BuildingDirectoryMetrics,
    Settings,
)
from instrumentation.metrics import (
    CACHE_LEVELS,
    CACHE_OPERATIONS,
    COORDINATE_PAIRS,
    DENORMALIZATION_STATUSES,
    ERROR_TYPES,
    LATENCY_BUCKETS,
    OPERATIONS,
    REQUEST_STATUSES,
    VALIDATION_RESULTS,
)

ALLOWED: dict[str, dict[str, set[str]]] = {
    "building_directory_requests": {
        "operation": set(OPERATIONS),
        "status": set(REQUEST_STATUSES),
    },
    "building_directory_request_duration_seconds": {
        "operation": set(OPERATIONS),
        "le": {str(b) for b in LATENCY_BUCKETS} | {"+Inf"},
    },
    "building_cache_operations": {"operation": set(CACHE_OPERATIONS)},
    "building_directory_active_connections": {},
    "building_validations": {"result": set(VALIDATION_RESULTS)},
    "coordinate_extractions": {
        "result": {r for r, _ in COORDINATE_PAIRS},
        "source": {s for _, s in COORDINATE_PAIRS},
    },
    "building_directory_errors": {"error_type": set(ERROR_TYPES)},
    "building_denormalization": {"status": set(DENORMALIZATION_STATUSES)},
    "building_cache_level_hits": {"level": set(CACHE_LEVELS)},
}


async def mixed_workload(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> list[str]:
    """Drive every path once: hits, misses, errors, stale, bad input."""
    good = directory.add(make_building())
    flat = directory.add(make_building(location=None, latitude="x", longitude=1))
    nameless = make_building()
    del nameless["name"]
    directory.add(nameless)
    failing = str(uuid.uuid4())
    directory.always(failing, Scripted(500, b"<html>oops</html>", "text/html"))
    garbled = str(uuid.uuid4())
    directory.script(garbled, Scripted(200, b"{not json"))
    slow = str(uuid.uuid4())
    directory.script(slow, Scripted(200, b"{}", delay=0.5))
    for building_id in (good, good, flat, nameless["id"], str(uuid.uuid4())):
        await client.enrich_request({"title": "t"}, building_id)
    for building_id in (failing, garbled, slow, "bad id"):
        with contextlib.suppress(BuildingDirectoryError):
            await client.get_building(building_id)
    await client.enrich_request({"title": "t"}, "../etc/passwd")
    await asyncio.sleep(0)
    return [good, flat, nameless["id"], failing, garbled, slow]


async def test_every_label_value_is_from_its_fixed_set(
    settings: Settings,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    tenant: str,
) -> None:
    """After every kind of outcome, no label value falls outside metrics.py's sets."""
    registry = CollectorRegistry()
    short = settings.replace(
        deadline=0.3, retries=1, near_cache_size=8, near_cache_ttl=1.0
    )

    async with BuildingDirectoryClient(
        short, metrics=BuildingDirectoryMetrics(registry)
    ) as client:
        ids = await mixed_workload(client, directory, make_building)
    exposition = generate_latest(registry).decode()

    seen: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        if family.name not in ALLOWED:
            continue
        seen.add(family.name)
        allowed = ALLOWED[family.name]
        for sample in family.samples:
            for label, label_value in sample.labels.items():
                assert label in allowed, (family.name, label)
                assert label_value in allowed[label], (family.name, label, label_value)
    assert seen == set(ALLOWED)
    for secret in (*ids, tenant, directory.url):
        assert secret not in exposition


async def test_every_series_is_exported_as_zero_before_traffic() -> None:
    """A fresh client's registry already holds every label combination at 0."""
    registry = CollectorRegistry()
    BuildingDirectoryMetrics(registry)

    exposition = generate_latest(registry).decode()

    assert 'building_directory_errors_total{error_type="timeout"} 0.0' in exposition
    assert "building_directory_active_connections 0.0" in exposition
