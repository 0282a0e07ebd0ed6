"""A Redis-cached, Prometheus-instrumented client of the Building Directory API.

Usage::

    from prometheus_client import CollectorRegistry
    from instrumentation import BuildingDirectoryClient, BuildingDirectoryMetrics
    from instrumentation import Settings

    settings = Settings.from_env()           # REDIS_URL, BUILDING_DIRECTORY_URL, ...
    metrics = BuildingDirectoryMetrics(CollectorRegistry())
    async with BuildingDirectoryClient(settings, metrics=metrics) as client:
        building = await client.get_building(building_id)   # dict, or None if unknown
        verdict = await client.validate(building_id)        # verdict.result == "valid"
        enriched = await client.enrich_request({"title": "Leak"}, building_id)
        payload = enriched.payload                          # request + building fields

Everything importable from here is the public surface; modules with a leading
underscore are implementation. Errors derive from
:class:`BuildingDirectoryError` (tree in :mod:`instrumentation.errors`); the
metrics and their fixed label sets are in :mod:`instrumentation.metrics`.
"""

from instrumentation.client import BuildingDirectoryClient
from instrumentation.config import Settings
from instrumentation.coordinates import Coordinates, read_coordinates
from instrumentation.denormalize import EnrichedRequest
from instrumentation.errors import (
    BuildingDirectoryError,
    ClientClosedError,
    ConfigurationError,
    DenormalizationError,
    InvalidBuildingIdError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamParseError,
    UpstreamTimeoutError,
    UpstreamUnknownError,
)
from instrumentation.ids import cache_key, canonical_building_id
from instrumentation.metrics import BuildingDirectoryMetrics, DisabledMetrics
from instrumentation.reports import Health, WarmReport
from instrumentation.validation import Validation

__all__ = [
    "BuildingDirectoryClient",
    "BuildingDirectoryError",
    "BuildingDirectoryMetrics",
    "ClientClosedError",
    "ConfigurationError",
    "Coordinates",
    "DenormalizationError",
    "DisabledMetrics",
    "EnrichedRequest",
    "Health",
    "InvalidBuildingIdError",
    "Settings",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamParseError",
    "UpstreamTimeoutError",
    "UpstreamUnknownError",
    "Validation",
    "WarmReport",
    "cache_key",
    "canonical_building_id",
    "read_coordinates",
]
