"""Copying a building's fields into the request that names it.

The payload is the request's own fields plus these keys, which replace any
request field of the same name:

========================== ====================================================
key                        value
========================== ====================================================
``building_id``            the building's ``id``
``building_name``          its ``name`` (required: a non-empty string)
``building_address``       the address on one line, e.g.
                           ``"Torstraße 1, 10119 Berlin, DE"``; None if absent
``building_address_parts`` ``{"street", "postal_code", "city", "country"}``,
                           each a string or None
``building_coordinates``   ``{"lat": .., "lng": ..}``, or None when missing or
                           unreadable
``management_company_id``  the building's ``management_company_id`` or None
========================== ====================================================

A building that is not a mapping or has no name, or a request that is not a
mapping, cannot be denormalized: :class:`DenormalizationError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from instrumentation.coordinates import Coordinates, read_coordinates
from instrumentation.errors import BuildingDirectoryError, DenormalizationError
from instrumentation.validation import Validation

ADDRESS_PARTS: Final = ("street", "postal_code", "city", "country")


@dataclass(frozen=True, slots=True)
class EnrichedRequest:
    """The outcome of the whole pipeline for one request.

    Attributes:
        validation: The verdict on the building.
        coordinates: The building's coordinates; None unless it was valid.
        payload: The request with the building's fields; None unless the
            building was valid and could be denormalized.
        error: Why denormalization failed, when it did.
    """

    validation: Validation
    coordinates: Coordinates | None = None
    payload: dict[str, Any] | None = None
    error: BuildingDirectoryError | None = None

    @property
    def ok(self) -> bool:
        """Whether the request is ready to be stored."""
        return self.payload is not None


def denormalize(
    building: object,
    request: object,
    coordinates: Coordinates | None = None,
) -> dict[str, Any]:
    """Return ``request`` with the building's fields merged in.

    Args:
        building: The building object.
        request: The request's fields.
        coordinates: The building's coordinates, if already read.

    Returns:
        A new dict; neither argument is modified.

    Raises:
        DenormalizationError: See the module docstring.
    """
    if not isinstance(building, Mapping):
        raise DenormalizationError(
            f"the building is a {type(building).__name__}, not an object"
        )
    if not isinstance(request, Mapping):
        raise DenormalizationError(
            f"the request is a {type(request).__name__}, not an object"
        )
    name = building.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DenormalizationError(
            f"building {building.get('id')!r} has no name to copy into the request"
        )
    if coordinates is None:
        coordinates = read_coordinates(building)
    line, parts = _address(building.get("address"))
    company = building.get("management_company_id")
    return {
        **request,
        "building_id": building.get("id"),
        "building_name": name,
        "building_address": line,
        "building_address_parts": parts,
        "building_coordinates": (
            {"lat": coordinates.lat, "lng": coordinates.lng} if coordinates.ok else None
        ),
        "management_company_id": company if isinstance(company, str) else None,
    }


def _address(address: object) -> tuple[str | None, dict[str, str | None]]:
    if isinstance(address, str):
        text = address.strip() or None
        return text, dict.fromkeys(ADDRESS_PARTS)
    if not isinstance(address, Mapping):
        return None, dict.fromkeys(ADDRESS_PARTS)
    parts: dict[str, str | None] = {}
    for part in ADDRESS_PARTS:
        value = address.get(part)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # postal codes sometimes arrive as numbers
        parts[part] = (value.strip() or None) if isinstance(value, str) else None
    town = " ".join(p for p in (parts["postal_code"], parts["city"]) if p)
    pieces = [p for p in (parts["street"], town, parts["country"]) if p]
    return (", ".join(pieces) or None), parts
