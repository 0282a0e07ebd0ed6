"""Reading a building's coordinates from whichever shape they arrive in.

Shapes, tried in this order:

``nested``
    ``{"location": {"coordinates": {"lat": 52.52, "lng": 13.40}}}``; also a
    GeoJSON-style pair ``{"location": {"coordinates": [13.40, 52.52]}}``,
    longitude first as GeoJSON writes it.
``flat``
    ``{"latitude": 52.52, "longitude": 13.40}``.
``missing``
    Neither: no ``location.coordinates`` and no ``latitude``/``longitude`` key
    (a ``location`` without ``coordinates``, or ``"location": null``, counts as
    absent).

A shape that is present but unusable is a ``parse_error``, never an exception:
values that are not JSON numbers (strings such as ``"52.5"``, booleans,
``null``), NaN or infinity, a latitude outside ±90 or a longitude outside ±180,
only one of the two values, or a ``coordinates`` that is neither an object nor a
two-number list. Any non-mapping building reads as ``missing``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

CoordinateSource = Literal["nested", "flat", "missing"]
CoordinateResult = Literal["success", "missing", "parse_error"]


@dataclass(frozen=True, slots=True)
class Coordinates:
    """A building's position, or why there is none.

    Attributes:
        lat: Latitude in degrees, or None unless ``result`` is ``success``.
        lng: Longitude in degrees, or None unless ``result`` is ``success``.
        source: The shape they came in: ``nested``, ``flat`` or ``missing``.
        result: ``success``, ``missing`` or ``parse_error``.
        detail: What was wrong, for a ``parse_error``; None otherwise.
    """

    lat: float | None
    lng: float | None
    source: CoordinateSource
    result: CoordinateResult
    detail: str | None = None

    @property
    def ok(self) -> bool:
        """Whether both values were read."""
        return self.result == "success"


MISSING = Coordinates(None, None, "missing", "missing")


def read_coordinates(building: object) -> Coordinates:
    """Read the coordinates of a building; never raises.

    Args:
        building: A building object as the Building Directory sends it.

    Returns:
        The coordinates, with the shape they came in and the result.
    """
    if not isinstance(building, Mapping):
        return MISSING
    location = building.get("location")
    if isinstance(location, Mapping) and "coordinates" in location:
        return _nested(location["coordinates"])
    if "latitude" in building or "longitude" in building:
        return _pair(building.get("latitude"), building.get("longitude"), "flat")
    return MISSING


def _nested(value: object) -> Coordinates:
    if isinstance(value, Mapping):
        return _pair(value.get("lat"), value.get("lng"), "nested")
    if isinstance(value, list | tuple) and len(value) == 2:
        lng, lat = value
        return _pair(lat, lng, "nested")
    return _error(
        "nested",
        f"location.coordinates is a {_kind(value)}, not an object or a "
        "[longitude, latitude] pair",
    )


def _pair(lat: object, lng: object, source: CoordinateSource) -> Coordinates:
    latitude = _number(lat, "latitude", 90.0)
    if isinstance(latitude, str):
        return _error(source, latitude)
    longitude = _number(lng, "longitude", 180.0)
    if isinstance(longitude, str):
        return _error(source, longitude)
    return Coordinates(latitude, longitude, source, "success")


def _number(value: object, name: str, limit: float) -> float | str:
    """Return ``value`` as degrees, or a text saying why it is not usable."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} is a {_kind(value)}, not a number"
    if not math.isfinite(value):
        return f"{name} is {value}"
    if not -limit <= value <= limit:
        return f"{name} {value} is outside ±{limit:g}"
    return float(value)


def _error(source: CoordinateSource, detail: str) -> Coordinates:
    return Coordinates(None, None, source, "parse_error", detail)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        str: "string",
        list: "list",
        tuple: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)
