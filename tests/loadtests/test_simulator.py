"""Tests of the Building Directory simulator: its data set, latency and faults."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import httpx
import pytest

from loadtests import simulator
from loadtests.simulator import LatencyModel

SIZE = 2000


def _shape(building: dict[str, Any]) -> str:
    """Classify a building's coordinates the way a careful reader would."""
    if "location" in building:
        coordinates = building["location"]["coordinates"]
        lat, lng = coordinates["lat"], coordinates["lng"]
    elif "latitude" in building:
        lat, lng = building["latitude"], building["longitude"]
    else:
        return "missing"
    numbers = all(isinstance(v, float) for v in (lat, lng))
    if not numbers or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return "malformed"
    return "nested" if "location" in building else "flat"


def test_same_seed_gives_the_same_data_set() -> None:
    """Two data sets from one seed are equal; another seed gives other ids."""
    first = simulator.dataset(seed=11, size=300)

    second = simulator.dataset(seed=11, size=300)
    other = simulator.dataset(seed=12, size=300)

    assert first == second
    assert {b["id"] for b in first}.isdisjoint(b["id"] for b in other)


def test_ids_are_unique_uuids_in_data_set_order() -> None:
    """known_ids lists every building's id once, as a UUID, in data set order."""
    ids = simulator.known_ids(size=SIZE)

    assert ids == [b["id"] for b in simulator.dataset(size=SIZE)]
    assert len(set(ids)) == SIZE
    assert all(str(uuid.UUID(building_id)) == building_id for building_id in ids)


@pytest.mark.parametrize(
    ("shape", "share"),
    [pytest.param(shape, share, id=shape) for shape, share in simulator.SHAPES],
)
def test_coordinate_shapes_come_in_the_documented_shares(
    shape: str, share: float
) -> None:
    """Each coordinate shape makes up its documented share, to one building."""
    buildings = simulator.dataset(size=SIZE)

    found = [b["id"] for b in buildings if _shape(b) == shape]

    assert abs(len(found) - share * SIZE) <= 1
    assert found == simulator.ids_by_shape(size=SIZE)[shape]


def test_malformed_coordinates_cover_strings_out_of_range_and_null() -> None:
    """Malformed coordinates include strings, out-of-range numbers and nulls."""
    malformed = set(simulator.malformed_ids(size=SIZE))
    values = []
    for building in simulator.dataset(size=SIZE):
        if building["id"] in malformed:
            nested = building.get("location", {}).get("coordinates", {})
            values.append(nested.get("lat", building.get("latitude")))

    kinds = {
        type(v).__name__ if v is None or isinstance(v, str) else "number"
        for v in values
    }

    assert kinds == {"NoneType", "str", "number"}


def test_a_small_share_is_inactive() -> None:
    """2 % of the buildings are inactive, and inactive_ids names exactly those."""
    buildings = simulator.dataset(size=SIZE)

    inactive = [b["id"] for b in buildings if b["is_active"] is False]

    assert len(inactive) == round(SIZE * simulator.INACTIVE_SHARE)
    assert inactive == simulator.inactive_ids(size=SIZE)


def test_dataset_returns_copies_the_caller_may_change() -> None:
    """Changing a returned building does not change the simulator's data."""
    simulator.dataset(size=50)[0]["name"] = "changed"

    assert simulator.dataset(size=50)[0]["name"] != "changed"


def test_default_latency_is_100_to_200_ms_with_a_small_tail() -> None:
    """The default model draws 100-200 ms, and about 2 % from 300-600 ms."""
    rng = random.Random(3)

    draws = [LatencyModel().draw(rng) for _ in range(20_000)]

    base = [d for d in draws if 0.1 <= d <= 0.2]
    tail = [d for d in draws if 0.3 <= d <= 0.6]
    assert len(base) + len(tail) == len(draws)
    assert 0.01 < len(tail) / len(draws) < 0.03


def test_zero_latency_answers_at_once() -> None:
    """A model with a mean of 0 ms never waits."""
    rng = random.Random(3)

    assert {LatencyModel(mean_ms=0).draw(rng) for _ in range(100)} == {0.0}


def test_known_building_is_served_as_in_the_data_set(simulator_url: str) -> None:
    """GET of a known id answers 200 with exactly the data set's building."""
    building = simulator.dataset()[5]

    response = httpx.get(f"{simulator_url}/api/v1/buildings/{building['id']}")

    assert response.status_code == 200
    assert response.json() == building


@pytest.mark.parametrize(
    "building_id",
    [
        pytest.param(str(uuid.UUID(int=1)), id="unknown-uuid"),
        pytest.param("not-a-uuid", id="not-a-uuid"),
    ],
)
def test_unknown_building_answers_404(simulator_url: str, building_id: str) -> None:
    """An id outside the data set answers 404 with a JSON detail."""
    response = httpx.get(f"{simulator_url}/api/v1/buildings/{building_id}")

    assert response.status_code == 404
    assert response.json() == {"detail": "building not found"}


def test_listing_gives_the_first_ids_in_order(simulator_url: str) -> None:
    """GET /api/v1/buildings?limit=N gives the first N known ids and the total."""
    response = httpx.get(f"{simulator_url}/api/v1/buildings", params={"limit": 25})

    assert response.json() == {"ids": simulator.known_ids()[:25], "total": 2000}


def test_error_rate_one_fails_every_lookup_until_cleared(
    faults: httpx.Client,
) -> None:
    """error_rate 1 answers 5xx to every lookup; DELETE /_faults restores 200."""
    url = f"/api/v1/buildings/{simulator.known_ids()[0]}"

    faults.put("/_faults", json={"error_rate": 1.0}).raise_for_status()
    failing = {faults.get(url).status_code for _ in range(10)}
    faults.delete("/_faults").raise_for_status()
    restored = faults.get(url).status_code

    assert failing <= {500, 503}
    assert restored == 200


def test_down_answers_503_to_lookups_and_health(faults: httpx.Client) -> None:
    """down makes lookups and /healthz answer 503; the fault endpoint still works."""
    faults.put("/_faults", json={"down": True}).raise_for_status()

    lookup = faults.get(f"/api/v1/buildings/{simulator.known_ids()[0]}")
    health = faults.get("/healthz")
    current = faults.get("/_faults")

    assert (lookup.status_code, health.status_code) == (503, 503)
    assert current.json()["down"] is True


def test_malformed_rate_one_answers_bodies_that_are_not_buildings(
    faults: httpx.Client,
) -> None:
    """malformed_rate 1 answers 200 with HTML, truncated JSON or a JSON list."""
    url = f"/api/v1/buildings/{simulator.known_ids()[0]}"
    faults.put("/_faults", json={"malformed_rate": 1.0}).raise_for_status()

    responses = [faults.get(url) for _ in range(20)]

    for response in responses:
        assert response.status_code == 200
        try:
            body = json.loads(response.content)
        except ValueError:
            continue
        assert not isinstance(body, dict)


def test_timeout_rate_one_hangs_past_the_client_deadline(
    faults: httpx.Client,
) -> None:
    """timeout_rate 1 leaves a lookup unanswered past a 0.3 s client timeout."""
    url = f"/api/v1/buildings/{simulator.known_ids()[0]}"
    faults.put(
        "/_faults", json={"timeout_rate": 1.0, "timeout_seconds": 5}
    ).raise_for_status()

    with pytest.raises(httpx.ReadTimeout):
        faults.get(url, timeout=0.3)


async def test_hanging_lookup_ends_when_the_client_hangs_up(
    faults: httpx.Client,
) -> None:
    """A lookup set to hang for 20 s stops hanging once its client hangs up."""
    url = f"/api/v1/buildings/{simulator.known_ids()[0]}"
    control = httpx.AsyncClient(base_url=str(faults.base_url))
    caller = httpx.AsyncClient(base_url=str(faults.base_url))

    async def count_becomes(expected: int) -> int:
        for _ in range(100):
            count = int((await control.get("/healthz")).json()["hanging"])
            if count == expected:
                break
            await asyncio.sleep(0.05)
        return count

    async with control, caller:
        response = await control.put(
            "/_faults", json={"timeout_rate": 1.0, "timeout_seconds": 20}
        )
        lookup = asyncio.create_task(caller.get(url, timeout=30))
        during = await count_becomes(1)
        lookup.cancel()
        await caller.aclose()
        after = await count_becomes(0)

    assert response.status_code == 200
    assert during == 1
    assert after == 0


def test_extra_latency_delays_every_lookup(faults: httpx.Client) -> None:
    """extra_latency 0.3 makes a lookup take at least 0.3 s."""
    url = f"/api/v1/buildings/{simulator.known_ids()[0]}"
    faults.put("/_faults", json={"extra_latency": 0.3}).raise_for_status()

    started = time.perf_counter()
    response = faults.get(url)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed >= 0.3


def test_put_replaces_faults_and_resets_omitted_ones(faults: httpx.Client) -> None:
    """A PUT replaces the whole fault set: keys it omits go back to off."""
    faults.put("/_faults", json={"error_rate": 0.5}).raise_for_status()

    current = faults.put("/_faults", json={"timeout_rate": 0.25}).json()

    assert current["error_rate"] == 0.0
    assert current["timeout_rate"] == 0.25


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"error_rate": 1.5}, id="rate-above-one"),
        pytest.param({"down": "yes"}, id="down-not-bool"),
        pytest.param({"explode": True}, id="unknown-fault"),
        pytest.param([1, 2], id="not-an-object"),
    ],
)
def test_invalid_faults_are_refused_and_change_nothing(
    faults: httpx.Client, body: object
) -> None:
    """A malformed PUT /_faults answers 400 and leaves the faults as they were."""
    faults.put("/_faults", json={"extra_latency": 0.01}).raise_for_status()

    response = faults.put("/_faults", json=body)

    assert response.status_code == 400
    assert faults.get("/_faults").json()["extra_latency"] == 0.01


def test_non_loopback_host_is_refused() -> None:
    """The simulator refuses to bind anything but 127.0.0.1."""
    with pytest.raises(SystemExit) as excinfo:
        simulator.main(["--port", "1", "--host", "0.0.0.0"])

    assert excinfo.value.code == 2
