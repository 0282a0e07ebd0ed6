"""Building ids and the cache keys made from them."""

from __future__ import annotations

import pytest

from instrumentation import InvalidBuildingIdError, cache_key, canonical_building_id

TENANT = "00000000-0000-0000-0000-000000000001"
BUILDING = "3f2b8c1e-0d4a-4c5e-9b7a-2e6f1d0c9a8b"


@pytest.mark.parametrize(
    "spelled",
    [
        pytest.param(BUILDING, id="lower"),
        pytest.param(BUILDING.upper(), id="upper"),
        pytest.param("3F2b8C1e-0D4a-4C5e-9B7a-2E6f1D0c9A8b", id="mixed"),
    ],
)
def test_canonical_building_id_lower_cases_any_spelling(spelled: str) -> None:
    """Every case of one UUID maps to one canonical id."""
    assert canonical_building_id(spelled) == BUILDING


def test_invalid_building_id_error_names_the_value() -> None:
    """The message shows what was passed and what a good id looks like."""
    with pytest.raises(InvalidBuildingIdError, match="'12'"):
        canonical_building_id("12")


def test_cache_key_holds_schema_tenant_hash_tag_and_id() -> None:
    """Keys read bdobs:v1:{tenant}:building:<id>, the tenant as hash tag."""
    assert cache_key(TENANT, BUILDING.upper()) == (
        f"bdobs:v1:{{{TENANT}}}:building:{BUILDING}"
    )


def test_invalid_building_id_error_shortens_a_huge_value() -> None:
    """A megabyte id is named by its start and length, not echoed whole."""
    with pytest.raises(InvalidBuildingIdError) as raised:
        canonical_building_id("x" * 1_000_000)

    message = str(raised.value)
    assert len(message) < 200
    assert "'xxxxxxxx" in message
    assert "(1000002 characters)" in message
