"""The load-test workload: which building ids are asked for, and how often.

A workload is explicit and seeded, and the report prints it, so a reader can
judge whether a hit rate or a validation rate is plausible for it:

* **pool**: the first ``pool_size`` buildings of the simulator's data set
  (:func:`loadtests.simulator.known_ids`, or only the buildings with malformed
  coordinates when ``subset="malformed"``), in the data set's stable order;
* **popularity**: Zipf over the pool's ranks, the building of rank k asked for
  with probability proportional to ``1 / k**zipf_s``: a few buildings take
  most of the requests, as in a property-management platform where a few
  large estates file most maintenance requests;
* **unknown ids**: a share ``unknown_share`` of requests names a random UUID
  that is not in the data set (404: an expected outcome, not a failure).

The pool is kept honest: inactive buildings (2 % of the data set) stay in it
wherever their rank puts them, and requests for them expect 422.

Each request belongs to a class that names it in Locust's statistics and
decides which outcome is expected: ``active`` (201), ``inactive`` (422) and
``unknown`` (404).

:meth:`Workload.expected` estimates what the workload implies before any
request is sent: the valid share (an upper bound of the validation success
rate) and the hit rate at steady state, from the expected number of distinct
ids in n draws; each distinct id costs one miss, and every unknown id is a
miss. It assumes no cache entry expires during the run (TTL 300 s).
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from loadtests import simulator

RequestClass = Literal["active", "inactive", "unknown"]

#: Request classes, in report order.
REQUEST_CLASSES: Final[tuple[RequestClass, ...]] = ("active", "inactive", "unknown")

#: The outcome each class expects from ``POST /requests`` when all is well.
EXPECTED_STATUS: Final[dict[str, int]] = {
    "active": 201,
    "inactive": 422,
    "unknown": 404,
}


def unexpected_outcome(
    request_class: str,
    status: int,
    expected: Mapping[str, int] = EXPECTED_STATUS,
) -> str | None:
    """Return why a response is a failure for its class, or None when expected.

    A 404 for an unknown id or a 422 for an inactive building is the outcome
    the request was sent to provoke: no failure. Anything else is one.

    Args:
        request_class: The request's class (``active``, ``inactive``, ``unknown``).
        status: The HTTP status received; 0 when no response came.
        expected: The expected status of each class.
    """
    wanted = expected.get(request_class)
    if wanted is None:
        return f"no expected outcome for class {request_class!r}"
    if status == wanted:
        return None
    got = "no response" if status == 0 else f"status {status}"
    return f"{got}, expected {wanted} for class {request_class}"


def request_name(request_class: str) -> str:
    """Return the Locust request name of a class, e.g. ``POST /requests [active]``."""
    return f"POST /requests [{request_class}]"


@dataclass(frozen=True, slots=True)
class Draw:
    """One request of the workload: the id it names and its class."""

    building_id: str
    request_class: RequestClass

    @property
    def name(self) -> str:
        """The request's name in Locust's statistics."""
        return request_name(self.request_class)


@dataclass(frozen=True, slots=True)
class Workload:
    """Which ids a load test asks for; see the module docstring.

    Attributes:
        pool_size: Buildings asked for, the first of the data set.
        zipf_s: Zipf exponent of popularity over the pool's ranks; 0 is uniform.
        unknown_share: Share of requests naming an id not in the data set.
        seed: Seed of the draws; each Locust user draws from its own stream.
        subset: ``all`` buildings, or only those with ``malformed`` coordinates.
        dataset_seed: The simulator's data-set seed.
        dataset_size: The simulator's data-set size.
    """

    pool_size: int = 100
    zipf_s: float = 1.1
    unknown_share: float = 0.01
    seed: int = 1
    subset: Literal["all", "malformed"] = "all"
    dataset_seed: int = simulator.DEFAULT_SEED
    dataset_size: int = simulator.DEFAULT_SIZE
    _weights: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size}")
        if not 0 <= self.zipf_s <= 5:
            raise ValueError(f"zipf_s must be 0 to 5, got {self.zipf_s}")
        if not 0 <= self.unknown_share <= 1:
            raise ValueError(f"unknown_share must be 0 to 1, got {self.unknown_share}")
        if self.subset not in ("all", "malformed"):
            raise ValueError(f"subset must be all or malformed, got {self.subset!r}")
        available = len(self._source())
        if self.pool_size > available:
            raise ValueError(
                f"pool_size {self.pool_size} exceeds the {available} buildings "
                f"of subset {self.subset!r}"
            )
        raw = [rank**-self.zipf_s for rank in range(1, self.pool_size + 1)]
        total = sum(raw)
        object.__setattr__(self, "_weights", tuple(w / total for w in raw))

    def _source(self) -> list[str]:
        if self.subset == "malformed":
            return simulator.malformed_ids(self.dataset_seed, self.dataset_size)
        return simulator.known_ids(self.dataset_seed, self.dataset_size)

    def pool(self) -> list[str]:
        """Return the pool's ids, hottest first."""
        return self._source()[: self.pool_size]

    def weights(self) -> tuple[float, ...]:
        """Return each pool rank's probability among known-id requests."""
        return self._weights

    def sampler(self, stream: int = 0) -> WorkloadSampler:
        """Return a sampler drawing from stream ``stream`` of this workload's seed."""
        return WorkloadSampler(self, stream)

    def expected(self, requests: int) -> dict[str, float]:
        """Estimate what a run of ``requests`` requests should show.

        Returns:
            ``valid_share`` (requests for active known buildings; the
            validation success rate cannot exceed it), ``inactive_share``,
            ``unknown_share``, ``hottest_share`` (rank 1), ``top10_share`` and
            ``hit_rate`` (expected cache hit rate over the run, from the
            expected number of distinct ids; a cold cache at the start).
        """
        inactive = set(simulator.inactive_ids(self.dataset_seed, self.dataset_size))
        known = 1 - self.unknown_share
        inactive_weight = sum(
            w for w, i in zip(self._weights, self.pool(), strict=True) if i in inactive
        )
        draws = requests * known
        distinct = sum(1 - (1 - w) ** draws for w in self._weights)
        hit_rate = 0.0
        if requests > 0:
            hit_rate = max(
                0.0, 1 - (distinct + requests * self.unknown_share) / requests
            )
        return {
            "valid_share": known * (1 - inactive_weight),
            "inactive_share": known * inactive_weight,
            "unknown_share": self.unknown_share,
            "hottest_share": known * self._weights[0],
            "top10_share": known * sum(self._weights[:10]),
            "hit_rate": hit_rate,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as plain values (for JSON and Locust's arguments)."""
        values = asdict(self)
        values.pop("_weights", None)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Workload:
        """Build from :meth:`to_dict` output.

        Raises:
            ValueError: An unknown key, or a value out of range.
        """
        known = {"pool_size", "zipf_s", "unknown_share", "seed", "subset"}
        known |= {"dataset_seed", "dataset_size"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown workload keys {unknown}; known: {sorted(known)}")
        return cls(**values)

    def describe(self, requests: int) -> list[str]:
        """Return the workload in a few lines of text, for the report."""
        e = self.expected(requests)
        source = "buildings" if self.subset == "all" else "buildings with malformed "
        if self.subset == "malformed":
            source += "coordinates"
        return [
            f"pool: the first {self.pool_size} {source} of the simulator's data set "
            f"(seed {self.dataset_seed}, {self.dataset_size} buildings)",
            f"popularity: Zipf s={self.zipf_s:g} over the pool's ranks; the hottest "
            f"building takes {e['hottest_share']:.1%} of the requests, the top 10 "
            f"{e['top10_share']:.1%}",
            f"unknown ids: {self.unknown_share:.1%} of the requests (random UUIDs, "
            "404 expected)",
            f"inactive buildings: {e['inactive_share']:.1%} of the requests "
            "(422 expected)",
            f"valid share: {e['valid_share']:.1%} expected (the validation success "
            "rate this workload gives on average; a run's own draws vary around it)",
            f"expected cache hit rate over {requests} requests from a cold cache: "
            f"{e['hit_rate']:.1%}",
            f"draws seeded with {self.seed}; each Locust user has its own stream",
        ]


class WorkloadSampler:
    """Draws requests from a workload; one per Locust user.

    Args:
        workload: What to draw.
        stream: Which stream of the workload's seed; two samplers with the
            same seed and stream draw the same sequence.
    """

    def __init__(self, workload: Workload, stream: int = 0) -> None:
        self.workload = workload
        self._rng = random.Random(workload.seed * 1_000_003 + stream)
        self._pool = workload.pool()
        self._cumulative = list(itertools.accumulate(workload.weights()))
        self._known = set(
            simulator.known_ids(workload.dataset_seed, workload.dataset_size)
        )
        inactive = simulator.inactive_ids(workload.dataset_seed, workload.dataset_size)
        self._inactive = set(inactive)

    def draw(self) -> Draw:
        """Return the next request."""
        rng = self._rng
        if rng.random() < self.workload.unknown_share:
            return Draw(self._unknown_id(), "unknown")
        # The last cumulative weight may fall a hair short of 1.0.
        point = rng.random() * self._cumulative[-1]
        index = min(bisect.bisect_right(self._cumulative, point), len(self._pool) - 1)
        building_id = self._pool[index]
        request_class: RequestClass = (
            "inactive" if building_id in self._inactive else "active"
        )
        return Draw(building_id, request_class)

    def _unknown_id(self) -> str:
        while True:
            candidate = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            if candidate not in self._known:
                return candidate
