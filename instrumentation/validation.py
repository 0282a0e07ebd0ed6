"""Validating a building for a request: it must exist and be active.

A building is active unless its ``is_active`` field is anything but ``true``: a
missing field counts as active (the Building Directory's default), while
``false``, ``null``, ``0`` or ``"false"`` count as inactive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from instrumentation.errors import BuildingDirectoryError

ValidationResult = Literal["valid", "invalid_not_found", "invalid_inactive", "error"]


@dataclass(frozen=True, slots=True)
class Validation:
    """The verdict on one building id.

    Attributes:
        result: ``valid``; ``invalid_not_found`` (unknown building, or a
            malformed id); ``invalid_inactive``; or ``error`` (the Building
            Directory could not answer).
        building: The building, for ``valid`` and ``invalid_inactive``.
        error: What went wrong: an ``UpstreamError`` for ``error``, an
            ``InvalidBuildingIdError`` for a malformed id; None otherwise.
    """

    result: ValidationResult
    building: dict[str, Any] | None = None
    error: BuildingDirectoryError | None = None

    @property
    def ok(self) -> bool:
        """Whether the building may be used."""
        return self.result == "valid"


def is_active(building: Mapping[str, Any]) -> bool:
    """Return whether a building counts as active (see the module docstring)."""
    return building.get("is_active", True) is True


def judge(building: dict[str, Any] | None) -> Validation:
    """Return the verdict on a looked-up building (None: not found)."""
    if building is None:
        return Validation("invalid_not_found")
    if not is_active(building):
        return Validation("invalid_inactive", building)
    return Validation("valid", building)
