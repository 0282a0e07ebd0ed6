"""Validation, coordinates, denormalization and the whole enrichment pipeline."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fake_directory import FakeDirectory, Scripted

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryMetrics,
    DenormalizationError,
    Settings,
    UpstreamHTTPError,
)
from instrumentation.metrics import COORDINATE_PAIRS


async def test_validate_returns_valid_for_an_active_building(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """An existing, active building is valid, and the verdict is counted."""
    building = make_building()
    directory.add(building)

    verdict = await client.validate(building["id"])

    assert verdict.result == "valid"
    assert verdict.ok
    assert verdict.building == building
    assert value("building_validations_total", result="valid") == 1


async def test_validate_returns_invalid_not_found_for_unknown_building(
    client: BuildingDirectoryClient, value: Callable[..., float]
) -> None:
    """A 404 becomes invalid_not_found, not an error."""
    verdict = await client.validate(str(uuid.uuid4()))

    assert verdict.result == "invalid_not_found"
    assert verdict.error is None
    assert value("building_validations_total", result="invalid_not_found") == 1
    assert value("building_validations_total", result="error") == 0


@pytest.mark.parametrize(
    "is_active",
    [
        pytest.param(False, id="false"),
        pytest.param(None, id="null"),
        pytest.param("true", id="string"),
        pytest.param(1, id="one"),
    ],
)
async def test_validate_returns_invalid_inactive_unless_is_active_is_true(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    is_active: object,
) -> None:
    """Only a JSON true (or no field) counts as active."""
    building_id = directory.add(make_building(is_active=is_active))

    verdict = await client.validate(building_id)

    assert verdict.result == "invalid_inactive"
    assert verdict.building is not None


async def test_validate_treats_a_missing_is_active_as_active(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """A building without is_active is valid."""
    building = make_building()
    del building["is_active"]
    directory.add(building)

    verdict = await client.validate(building["id"])

    assert verdict.result == "valid"


async def test_validate_returns_error_when_the_upstream_fails(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """An upstream failure is the error verdict, with the exception attached."""
    building_id = str(uuid.uuid4())
    directory.always(building_id, Scripted(500, b""))

    verdict = await client.validate(building_id)

    assert verdict.result == "error"
    assert isinstance(verdict.error, UpstreamHTTPError)
    assert value("building_validations_total", result="error") == 1


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"location": {"coordinates": {"lat": 52.5, "lng": 13.4}}},
            (52.5, 13.4, "nested", "success"),
            id="nested",
        ),
        pytest.param(
            {"location": {"coordinates": [13.4, 52.5]}},
            (52.5, 13.4, "nested", "success"),
            id="geojson-pair",
        ),
        pytest.param(
            {"location": None, "latitude": -33.9, "longitude": 151},
            (-33.9, 151.0, "flat", "success"),
            id="flat",
        ),
        pytest.param(
            {"location": {"coordinates": {"lat": 90, "lng": -180}}},
            (90.0, -180.0, "nested", "success"),
            id="bounds-inclusive",
        ),
        pytest.param({"location": None}, (None, None, "missing", "missing"), id="none"),
        pytest.param(
            {"location": {"address": "x"}},
            (None, None, "missing", "missing"),
            id="location-without-coordinates",
        ),
        pytest.param(
            {"location": {"coordinates": {"lat": "52.5", "lng": "13.4"}}},
            (None, None, "nested", "parse_error"),
            id="strings",
        ),
        pytest.param(
            {"location": {"coordinates": {"lat": 95.0, "lng": 13.4}}},
            (None, None, "nested", "parse_error"),
            id="lat-out-of-range",
        ),
        pytest.param(
            {"location": None, "latitude": 52.5, "longitude": 181},
            (None, None, "flat", "parse_error"),
            id="lng-out-of-range",
        ),
        pytest.param(
            {"location": {"coordinates": None}},
            (None, None, "nested", "parse_error"),
            id="null-coordinates",
        ),
        pytest.param(
            {"location": {"coordinates": {"lat": None, "lng": None}}},
            (None, None, "nested", "parse_error"),
            id="null-values",
        ),
        pytest.param(
            {"location": None, "latitude": None, "longitude": None},
            (None, None, "flat", "parse_error"),
            id="null-flat",
        ),
        pytest.param(
            {"location": None, "latitude": 52.5},
            (None, None, "flat", "parse_error"),
            id="flat-half",
        ),
        pytest.param(
            {"location": {"coordinates": {"lat": True, "lng": False}}},
            (None, None, "nested", "parse_error"),
            id="booleans",
        ),
        pytest.param(
            {"location": {"coordinates": {"lat": math.nan, "lng": 1.0}}},
            (None, None, "nested", "parse_error"),
            id="nan",
        ),
        pytest.param(
            {"location": None, "latitude": 1.0, "longitude": math.inf},
            (None, None, "flat", "parse_error"),
            id="inf",
        ),
        pytest.param(
            {"location": {"coordinates": [1, 2, 3]}},
            (None, None, "nested", "parse_error"),
            id="triple",
        ),
        pytest.param(
            {"location": {"coordinates": "52.5,13.4"}},
            (None, None, "nested", "parse_error"),
            id="string-pair",
        ),
    ],
)
def test_extract_coordinates_reads_every_shape_without_crashing(
    client: BuildingDirectoryClient,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
    fields: dict[str, Any],
    expected: tuple[Any, ...],
) -> None:
    """Each shape gives the expected values, source and result, counted once."""
    building = make_building(**fields)

    coordinates = client.extract_coordinates(building)

    lat, lng, source, result = expected
    assert (coordinates.lat, coordinates.lng) == (lat, lng)
    assert (coordinates.source, coordinates.result) == (source, result)
    assert (coordinates.detail is not None) == (result == "parse_error")
    assert value("coordinate_extractions_total", result=result, source=source) == 1
    assert value("building_directory_errors_total", error_type="parse_error") == (
        1 if result == "parse_error" else 0
    )
    assert (
        sum(
            value("coordinate_extractions_total", result=r, source=s)
            for r, s in COORDINATE_PAIRS
        )
        == 1
    )


def test_extract_coordinates_of_a_non_mapping_reads_missing(
    client: BuildingDirectoryClient,
) -> None:
    """A building that is not an object has no coordinates, and no crash."""
    coordinates = client.extract_coordinates(["not", "a", "building"])  # type: ignore[arg-type]

    assert coordinates.result == "missing"


def test_denormalize_writes_the_documented_keys(
    client: BuildingDirectoryClient,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """The payload carries name, address line and parts, coordinates, company."""
    building = make_building()
    request = {"title": "Leaking tap", "building_name": "from the caller"}

    payload = client.denormalize(building, request)

    assert payload == {
        "title": "Leaking tap",
        "building_id": building["id"],
        "building_name": "Haus am See",
        "building_address": "Seestraße 1, 13353 Berlin, DE",
        "building_address_parts": {
            "street": "Seestraße 1",
            "postal_code": "13353",
            "city": "Berlin",
            "country": "DE",
        },
        "building_coordinates": {"lat": 52.55, "lng": 13.35},
        "management_company_id": building["management_company_id"],
    }
    assert request == {"title": "Leaking tap", "building_name": "from the caller"}
    assert value("building_denormalization_total", status="success") == 1


def test_denormalize_tolerates_missing_optional_fields(
    client: BuildingDirectoryClient,
) -> None:
    """Without address, coordinates or company the keys are None."""
    building = {"id": str(uuid.uuid4()), "name": "Bare"}

    payload = client.denormalize(building, {})

    assert payload["building_address"] is None
    assert payload["building_coordinates"] is None
    assert payload["management_company_id"] is None


@pytest.mark.parametrize(
    ("building", "request_fields"),
    [
        pytest.param({"id": "x"}, {}, id="no-name"),
        pytest.param({"id": "x", "name": "  "}, {}, id="blank-name"),
        pytest.param({"id": "x", "name": 7}, {}, id="name-not-text"),
        pytest.param(["not", "a", "mapping"], {}, id="building-not-mapping"),
        pytest.param({"id": "x", "name": "A"}, ["not a mapping"], id="request"),
    ],
)
def test_denormalize_failure_raises_and_is_counted(
    client: BuildingDirectoryClient,
    value: Callable[..., float],
    building: Any,
    request_fields: Any,
) -> None:
    """Unusable input raises DenormalizationError and counts a failure."""
    with pytest.raises(DenormalizationError):
        client.denormalize(building, request_fields)

    assert value("building_denormalization_total", status="failure") == 1


async def test_enrich_request_runs_the_whole_pipeline(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """A valid building is validated, located and denormalized, each counted."""
    building_id = directory.add(make_building())

    enriched = await client.enrich_request({"title": "Broken door"}, building_id)

    assert enriched.ok
    assert enriched.validation.result == "valid"
    assert enriched.coordinates is not None
    assert enriched.coordinates.result == "success"
    assert enriched.payload is not None
    assert enriched.payload["title"] == "Broken door"
    assert enriched.payload["building_id"] == building_id
    assert value("building_validations_total", result="valid") == 1
    assert value("coordinate_extractions_total", result="success", source="nested") == 1
    assert value("building_denormalization_total", status="success") == 1


async def test_enrich_request_stops_at_an_invalid_building(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
) -> None:
    """An inactive building yields no coordinates and no payload."""
    building_id = directory.add(make_building(is_active=False))

    enriched = await client.enrich_request({"title": "x"}, building_id)

    assert enriched.validation.result == "invalid_inactive"
    assert enriched.coordinates is None
    assert enriched.payload is None
    assert value("building_denormalization_total", status="success") == 0


async def test_enrich_request_reports_a_denormalization_failure(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """A valid building without a name gives no payload and says why."""
    building = make_building()
    del building["name"]
    directory.add(building)

    enriched = await client.enrich_request({"title": "x"}, building["id"])

    assert enriched.validation.result == "valid"
    assert enriched.payload is None
    assert isinstance(enriched.error, DenormalizationError)


async def test_enrich_request_with_malformed_coordinates_still_denormalizes(
    settings: Settings,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    metrics: BuildingDirectoryMetrics,
    value: Callable[..., float],
) -> None:
    """Unreadable coordinates are a counted parse error, not a failed request."""
    building_id = directory.add(
        make_building(location={"coordinates": {"lat": "north", "lng": 13}})
    )

    async with BuildingDirectoryClient(settings, metrics=metrics) as client:
        enriched = await client.enrich_request({"title": "x"}, building_id)

    assert enriched.payload is not None
    assert enriched.payload["building_coordinates"] is None
    assert value("building_directory_errors_total", error_type="parse_error") == 1
