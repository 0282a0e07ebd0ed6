"""Tests of the load-test workload: pool, Zipf skew, unknown ids, determinism."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from loadtests import simulator
from loadtests.workload import EXPECTED_STATUS, Workload, request_name


def _draws(workload: Workload, count: int, stream: int = 0) -> list[tuple[str, str]]:
    sampler = workload.sampler(stream)
    return [
        (draw.building_id, draw.request_class)
        for draw in (sampler.draw() for _ in range(count))
    ]


def test_same_seed_and_stream_draw_the_same_sequence() -> None:
    """Two samplers with one seed and one stream draw identical requests."""
    workload = Workload(seed=5)

    first, second = _draws(workload, 500), _draws(workload, 500)

    assert first == second


def test_streams_and_seeds_draw_different_sequences() -> None:
    """Another stream or another seed gives another sequence."""
    workload = Workload(seed=5)

    base = _draws(workload, 200)

    assert _draws(workload, 200, stream=1) != base
    assert _draws(Workload(seed=6), 200) != base


def test_pool_is_the_first_ids_of_the_data_set_hottest_first() -> None:
    """The pool is the data set's first pool_size ids, in the data set's order."""
    workload = Workload(pool_size=50)

    assert workload.pool() == simulator.known_ids()[:50]


def test_malformed_subset_pools_only_buildings_with_malformed_coordinates() -> None:
    """subset=malformed draws only from buildings whose coordinates are malformed."""
    workload = Workload(subset="malformed", pool_size=20, unknown_share=0)

    drawn = {building_id for building_id, _ in _draws(workload, 400)}

    assert drawn <= set(simulator.malformed_ids())


def test_popularity_follows_zipf_over_the_ranks() -> None:
    """Rank 1 is drawn about 2**s times as often as rank 2, far more than rank 50."""
    workload = Workload(pool_size=100, zipf_s=1.1, unknown_share=0)
    pool = workload.pool()

    counts = Counter(building_id for building_id, _ in _draws(workload, 40_000))

    ratio = counts[pool[0]] / counts[pool[1]]
    assert 2**1.1 * 0.9 < ratio < 2**1.1 * 1.1
    share = counts[pool[0]] / 40_000
    assert share == pytest.approx(workload.weights()[0], rel=0.05)
    assert counts[pool[0]] > 20 * counts[pool[49]]


def test_zero_exponent_is_uniform() -> None:
    """zipf_s=0 gives every building of the pool the same weight."""
    workload = Workload(pool_size=4, zipf_s=0)

    assert workload.weights() == pytest.approx((0.25, 0.25, 0.25, 0.25))


def test_unknown_share_draws_random_uuids_outside_the_data_set() -> None:
    """About unknown_share of the requests name valid UUIDs that no building has."""
    workload = Workload(unknown_share=0.2)
    known = set(simulator.known_ids())

    draws = _draws(workload, 5000)

    unknown = [building_id for building_id, kind in draws if kind == "unknown"]
    assert len(unknown) / 5000 == pytest.approx(0.2, abs=0.02)
    assert all(str(uuid.UUID(building_id)) == building_id for building_id in unknown)
    assert not set(unknown) & known


def test_inactive_buildings_are_drawn_as_their_own_class() -> None:
    """An inactive building of the pool is drawn with class inactive, expecting 422."""
    inactive = set(simulator.inactive_ids())
    workload = Workload(pool_size=2000, zipf_s=0, unknown_share=0)

    draws = _draws(workload, 4000)

    classes = {kind for building_id, kind in draws if building_id in inactive}
    assert classes == {"inactive"}
    assert EXPECTED_STATUS["inactive"] == 422


def test_expected_shares_add_up_and_match_the_data_set() -> None:
    """Valid, inactive and unknown shares add up to one; valid matches the draws."""
    workload = Workload(pool_size=300, zipf_s=0.5, unknown_share=0.05)

    expected = workload.expected(1000)
    draws = _draws(workload, 20_000)

    total = expected["valid_share"] + expected["inactive_share"]
    assert total + expected["unknown_share"] == pytest.approx(1.0)
    measured = sum(1 for _, kind in draws if kind == "active") / len(draws)
    assert measured == pytest.approx(expected["valid_share"], abs=0.01)


def test_expected_hit_rate_matches_a_simulated_cache() -> None:
    """The predicted hit rate is what an infinite-TTL cache fed the draws shows."""
    workload = Workload(pool_size=100, zipf_s=1.1, unknown_share=0.01)
    draws = _draws(workload, 600)

    seen: set[str] = set()
    hits = 0
    for building_id, _kind in draws:
        hits += building_id in seen
        seen.add(building_id)

    assert hits / 600 == pytest.approx(workload.expected(600)["hit_rate"], abs=0.03)


def test_default_workload_makes_the_spec_targets_reachable() -> None:
    """Over the baseline's 500 requests: over 70 % hits and 95 % valid predicted."""
    expected = Workload().expected(500)

    assert expected["hit_rate"] > 0.75
    assert expected["valid_share"] > 0.97


def test_round_trips_through_a_plain_dict() -> None:
    """to_dict and from_dict give back an equal workload."""
    workload = Workload(pool_size=20, zipf_s=0.8, unknown_share=0.1, seed=3)

    assert Workload.from_dict(workload.to_dict()) == workload


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"pool_size": 0}, id="empty-pool"),
        pytest.param({"pool_size": 2001}, id="pool-beyond-data-set"),
        pytest.param({"subset": "malformed", "pool_size": 141}, id="beyond-malformed"),
        pytest.param({"unknown_share": 1.5}, id="share-above-one"),
        pytest.param({"zipf_s": -1}, id="negative-exponent"),
    ],
)
def test_rejects_impossible_parameters(changes: dict[str, object]) -> None:
    """A workload that cannot be drawn is refused when built."""
    with pytest.raises(ValueError, match=r"must|exceeds"):
        Workload.from_dict({**Workload().to_dict(), **changes})


def test_from_dict_rejects_unknown_keys() -> None:
    """A misspelt key is an error, not silently ignored."""
    with pytest.raises(ValueError, match="unknown workload keys"):
        Workload.from_dict({"pool": 10})


def test_description_states_pool_skew_unknown_share_and_prediction() -> None:
    """The report's description names every parameter a reader needs."""
    text = "\n".join(Workload(pool_size=100, zipf_s=1.1).describe(500))

    assert "first 100 buildings" in text
    assert "Zipf s=1.1" in text
    assert "unknown ids: 1.0%" in text
    assert "expected cache hit rate over 500 requests" in text


def test_request_names_carry_the_class() -> None:
    """Each class names its requests, so expected outcomes are told apart by name."""
    assert request_name("unknown") == "POST /requests [unknown]"
