"""A simulated Building Directory API: the upstream the cached client calls.

The data set is deterministic: the same ``seed`` and ``size`` always give the
same buildings, in the same order, with the same ids. Its proportions are
exact (rounded to whole buildings), so a load test knows what to expect:

================== ======= =====================================================
coordinates        share   shape
================== ======= =====================================================
nested             60 %    ``{"location": {"coordinates": {"lat": .., "lng": ..}}}``
flat               25 %    top-level ``"latitude"`` and ``"longitude"``
missing            8 %     neither
malformed          7 %     nested or flat, but a value is a string such as
                           ``"52.5N"``, out of range (latitude 123.4,
                           longitude 212.5) or ``null``
================== ======= =====================================================

Independently of the coordinates, 2 % of the buildings are inactive
(``"is_active": false``). :func:`known_ids`, :func:`ids_by_shape` and
:func:`inactive_ids` tell a test or a workload which ids are which.

Every answer waits first, as the real API would: by default a uniform 100 to
200 ms, and 2 % of the answers 300 to 600 ms (the tail). One number scales the
whole model (``--latency-ms``, the mean of the base range); 0 answers at once.

Faults are switched at run time over HTTP, on the simulator's own loopback
port (``/_faults`` refuses any other client):

``error_rate``
    share of lookups answered 500 or 503;
``timeout_rate``
    share of lookups that hang without answering (for ``timeout_seconds``,
    10 s unless given, at most 30 s; sooner if the client hangs up);
``extra_latency``
    seconds added to every lookup;
``down``
    every lookup and ``/healthz`` answer 503;
``malformed_rate``
    share of lookups answered 200 with a body that is not a building
    (HTML, truncated JSON, a JSON list).

``GET /healthz`` reports the size of the data set and how many lookups hang
at the moment (``"hanging"``).

Run it with ``python -m loadtests.simulator --port 8081``; it only ever binds
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import functools
import ipaddress
import json
import logging
import os
import random
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive

from instrumentation.config import DEFAULT_TENANT
from loadtests.servers import LOOPBACK

logger = logging.getLogger(__name__)

DEFAULT_SEED: Final = 7
DEFAULT_SIZE: Final = 2000
#: The mean of the base latency range, in milliseconds (100 to 200 ms).
DEFAULT_LATENCY_MS: Final = 150.0

#: Coordinate shapes and their shares of the data set, in order.
SHAPES: Final = (
    ("nested", 0.60),
    ("flat", 0.25),
    ("missing", 0.08),
    ("malformed", 0.07),
)
INACTIVE_SHARE: Final = 0.02
MAX_HANG_SECONDS: Final = 30.0
DEFAULT_HANG_SECONDS: Final = 10.0

_NAMESPACE: Final = uuid.UUID("6c1f0f6e-7d0b-4c59-9d55-3b0c4d9a2e10")
_STREETS: Final = (
    "Hauptstraße", "Rue de la Paix", "Main Street", "Via Roma", "Calle Mayor",
    "Kingsway", "Bahnhofstraße", "Prinsengracht", "Market Street", "Ringstraße",
)  # fmt: skip
_CITIES: Final = (
    ("Berlin", "DE", 52.52, 13.40),
    ("Paris", "FR", 48.86, 2.35),
    ("London", "GB", 51.51, -0.13),
    ("Rome", "IT", 41.90, 12.50),
    ("Madrid", "ES", 40.42, -3.70),
    ("Amsterdam", "NL", 52.37, 4.90),
    ("Vienna", "AT", 48.21, 16.37),
    ("Zurich", "CH", 47.38, 8.54),
)
_KINDS: Final = ("Tower", "House", "Court", "Plaza", "Residences", "Works", "Hall")
_MALFORMED_BODIES: Final = (
    (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    (b'{"id": "truncated", "name": "Half a bui', "application/json"),
    (b'["not", "a", "building"]', "application/json"),
)


# --------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DataSet:
    buildings: tuple[dict[str, Any], ...]
    bodies: dict[str, bytes]
    shapes: dict[str, tuple[str, ...]]
    inactive: tuple[str, ...]


def _exact_counts(size: int) -> list[str]:
    """Return one shape per building, with shares rounded to whole buildings."""
    raw = [(name, share * size) for name, share in SHAPES]
    counts = {name: int(value) for name, value in raw}
    # Largest remainder: the buildings left by rounding down go to the shapes
    # that lost the most, so the counts always add up to ``size``.
    left = size - sum(counts.values())
    for name, _value in sorted(
        raw, key=lambda item: item[1] - int(item[1]), reverse=True
    ):
        if left == 0:
            break
        counts[name] += 1
        left -= 1
    return [name for name, _share in SHAPES for _ in range(counts[name])]


def _coordinates(
    rng: random.Random, shape: str, lat: float, lng: float
) -> dict[str, Any]:
    if shape == "missing":
        return {}
    if shape == "malformed":
        placement = rng.choice(("nested", "flat"))
        flaw = rng.choice(("string", "out_of_range", "null"))
        if flaw == "string":
            lat_value: Any = f"{abs(lat):.1f}{'N' if lat >= 0 else 'S'}"
            lng_value: Any = f"{abs(lng):.1f}{'E' if lng >= 0 else 'W'}"
        elif flaw == "out_of_range":
            lat_value, lng_value = 123.4, 212.5
        else:
            lat_value, lng_value = None, None
    else:
        placement = shape
        lat_value, lng_value = lat, lng
    if placement == "nested":
        return {"location": {"coordinates": {"lat": lat_value, "lng": lng_value}}}
    return {"latitude": lat_value, "longitude": lng_value}


def _building(rng: random.Random, index: int, shape: str) -> dict[str, Any]:
    city, country, city_lat, city_lng = rng.choice(_CITIES)
    lat = round(city_lat + rng.uniform(-0.08, 0.08), 6)
    lng = round(city_lng + rng.uniform(-0.12, 0.12), 6)
    building_id = str(uuid.uuid5(_NAMESPACE, f"{rng.getrandbits(64)}-{index}"))
    return {
        "id": building_id,
        "name": f"{rng.choice(_STREETS).split()[0]} {rng.choice(_KINDS)} {index + 1}",
        "address": {
            "street": f"{rng.choice(_STREETS)} {rng.randint(1, 240)}",
            "city": city,
            "postal_code": f"{rng.randint(1000, 99999):05d}",
            "country": country,
        },
        "is_active": True,
        "management_company_id": DEFAULT_TENANT,
        "floors": rng.randint(1, 40),
        **_coordinates(rng, shape, lat, lng),
    }


@functools.lru_cache(maxsize=8)
def _build(seed: int, size: int) -> _DataSet:
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    rng = random.Random(seed)
    shapes = _exact_counts(size)
    rng.shuffle(shapes)
    buildings = [_building(rng, index, shape) for index, shape in enumerate(shapes)]
    inactive_count = round(size * INACTIVE_SHARE)
    inactive_indexes = sorted(rng.sample(range(size), inactive_count))
    for index in inactive_indexes:
        buildings[index]["is_active"] = False
    by_shape = {
        name: tuple(
            b["id"] for b, s in zip(buildings, shapes, strict=True) if s == name
        )
        for name, _share in SHAPES
    }
    return _DataSet(
        buildings=tuple(buildings),
        bodies={b["id"]: json.dumps(b).encode() for b in buildings},
        shapes=by_shape,
        inactive=tuple(buildings[index]["id"] for index in inactive_indexes),
    )


def dataset(seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE) -> list[dict[str, Any]]:
    """Return the buildings of the data set, in their stable order.

    Args:
        seed: Seed of the generator; the same seed gives the same buildings.
        size: Number of buildings.

    Returns:
        Fresh copies of the buildings, free to be changed by the caller.
    """
    return copy.deepcopy(list(_build(seed, size).buildings))


def known_ids(seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE) -> list[str]:
    """Return every building id of the data set, in a stable order."""
    return [building["id"] for building in _build(seed, size).buildings]


def ids_by_shape(
    seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE
) -> dict[str, list[str]]:
    """Return the ids by coordinate shape: nested, flat, missing, malformed."""
    return {name: list(ids) for name, ids in _build(seed, size).shapes.items()}


def malformed_ids(seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE) -> list[str]:
    """Return the ids of buildings whose coordinates are malformed."""
    return list(_build(seed, size).shapes["malformed"])


def inactive_ids(seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE) -> list[str]:
    """Return the ids of inactive buildings, in data set order."""
    return list(_build(seed, size).inactive)


# --------------------------------------------------------------------------
# Latency and faults
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """How long the simulated API takes to answer, before any fault.

    Args:
        mean_ms: Mean of the base range, which spans two thirds to four thirds
            of it (150: 100 to 200 ms). 0 answers at once.
        tail_share: Share of answers drawn from the tail instead.
        tail_factor: The tail spans ``2 × mean_ms`` to ``tail_factor × mean_ms``.
    """

    mean_ms: float = DEFAULT_LATENCY_MS
    tail_share: float = 0.02
    tail_factor: float = 4.0

    def __post_init__(self) -> None:
        if not 0 <= self.mean_ms <= 10_000:
            raise ValueError(f"mean_ms must be 0 to 10000, got {self.mean_ms}")
        if not 0 <= self.tail_share <= 1:
            raise ValueError(f"tail_share must be 0 to 1, got {self.tail_share}")

    def draw(self, rng: random.Random) -> float:
        """Return one delay, in seconds."""
        if self.mean_ms == 0:
            return 0.0
        if rng.random() < self.tail_share:
            low, high = 2 * self.mean_ms, self.tail_factor * self.mean_ms
        else:
            low, high = self.mean_ms * 2 / 3, self.mean_ms * 4 / 3
        return rng.uniform(low, high) / 1000


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults the simulator injects; all off by default."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    extra_latency: float = 0.0
    down: bool = False
    malformed_rate: float = 0.0
    timeout_seconds: float = DEFAULT_HANG_SECONDS

    @classmethod
    def from_json(cls, body: object) -> Faults:
        """Build from a ``PUT /_faults`` body; omitted keys keep their default.

        Raises:
            ValueError: The body is not an object, names an unknown fault or
                has a value out of range.
        """
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for name in ("error_rate", "timeout_rate", "malformed_rate"):
            if name in body:
                values[name] = _number(name, body[name], 0.0, 1.0)
        if "extra_latency" in body:
            values["extra_latency"] = _number(
                "extra_latency", body["extra_latency"], 0.0, MAX_HANG_SECONDS
            )
        if "timeout_seconds" in body:
            values["timeout_seconds"] = _number(
                "timeout_seconds", body["timeout_seconds"], 0.0, MAX_HANG_SECONDS
            )
        if "down" in body:
            if not isinstance(body["down"], bool):
                raise ValueError(f"down must be true or false, got {body['down']!r}")
            values["down"] = body["down"]
        return cls(**values)


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low:g} to {high:g}, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------


class _Simulator:
    """The state behind the routes: data set, latency model, current faults."""

    def __init__(self, *, seed: int, size: int, latency: LatencyModel) -> None:
        self.data = _build(seed, size)
        self.ids = [building["id"] for building in self.data.buildings]
        self.latency = latency
        self.faults = Faults()
        self.rng = random.Random(seed)
        self.hanging = 0

    async def building(self, request: Request) -> Response:
        faults = self.faults
        if faults.down:
            return _unavailable()
        if self.rng.random() < faults.timeout_rate:
            self.hanging += 1
            try:
                await _hang(request.receive, faults.timeout_seconds)
            finally:
                self.hanging -= 1
            return JSONResponse({"detail": "injected timeout"}, status_code=504)
        if self.rng.random() < faults.error_rate:
            status = self.rng.choice((500, 503))
            return JSONResponse({"detail": "injected failure"}, status_code=status)
        delay = self.latency.draw(self.rng) + faults.extra_latency
        if delay > 0:
            await asyncio.sleep(delay)
        if self.rng.random() < faults.malformed_rate:
            content, media_type = self.rng.choice(_MALFORMED_BODIES)
            return Response(content, media_type=media_type)
        body = self.data.bodies.get(request.path_params["building_id"])
        if body is None:
            return JSONResponse({"detail": "building not found"}, status_code=404)
        return Response(body, media_type="application/json")

    async def listing(self, request: Request) -> Response:
        if self.faults.down:
            return _unavailable()
        raw = request.query_params.get("limit", "100")
        try:
            limit = int(raw)
        except ValueError:
            limit = -1
        if limit < 0:
            return JSONResponse(
                {"detail": f"limit must be a whole number >= 0, got {raw!r}"},
                status_code=400,
            )
        return JSONResponse({"ids": self.ids[:limit], "total": len(self.ids)})

    async def healthz(self, request: Request) -> Response:
        if self.faults.down:
            return _unavailable()
        return JSONResponse(
            {"status": "ok", "buildings": len(self.ids), "hanging": self.hanging}
        )

    async def faults_endpoint(self, request: Request) -> Response:
        if not _from_loopback(request):
            return JSONResponse(
                {"detail": "faults can only be set from this machine"}, status_code=403
            )
        if request.method == "PUT":
            try:
                self.faults = Faults.from_json(json.loads(await request.body()))
            except ValueError as error:  # json.JSONDecodeError is a ValueError
                return JSONResponse({"detail": str(error)}, status_code=400)
            logger.warning("faults set: %s", asdict(self.faults))
        elif request.method == "DELETE":
            self.faults = Faults()
            logger.warning("faults cleared")
        return JSONResponse(asdict(self.faults))


def _unavailable() -> Response:
    return JSONResponse(
        {"detail": "service unavailable"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def _from_loopback(request: Request) -> bool:
    if request.client is None:
        return False
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(request.client.host).is_loopback
    return False


async def _hang(receive: Receive, seconds: float) -> None:
    """Wait ``seconds``, or less if the client hangs up first."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait_for(asyncio.shield(watcher), timeout=seconds)
    except TimeoutError:
        pass
    finally:
        watcher.cancel()


def create_app(
    *,
    seed: int = DEFAULT_SEED,
    size: int = DEFAULT_SIZE,
    latency: LatencyModel | None = None,
) -> Starlette:
    """Build the simulator's ASGI application.

    Args:
        seed: Seed of the data set, the latency draws and the fault draws.
        size: Number of buildings.
        latency: The latency model; 100 to 200 ms with a tail unless given.
    """
    simulator = _Simulator(seed=seed, size=size, latency=latency or LatencyModel())
    app = Starlette(
        routes=[
            Route("/api/v1/buildings/{building_id}", simulator.building),
            Route("/api/v1/buildings", simulator.listing),
            Route("/healthz", simulator.healthz),
            Route(
                "/_faults",
                simulator.faults_endpoint,
                methods=["GET", "PUT", "DELETE"],
            ),
        ]
    )
    app.state.simulator = simulator
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator with uvicorn on a loopback port until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m loadtests.simulator",
        description="Serve a simulated Building Directory API on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--host", default=LOOPBACK, help="must be a loopback address (127.0.0.1)"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=float(os.environ.get("SIMULATOR_LATENCY_MS", DEFAULT_LATENCY_MS)),
        help="mean latency of an answer; 150 gives 100-200 ms plus a tail; 0: none",
    )
    parser.add_argument(
        "--seed", type=int, default=int(os.environ.get("SIMULATOR_SEED", DEFAULT_SEED))
    )
    parser.add_argument(
        "--size", type=int, default=int(os.environ.get("SIMULATOR_SIZE", DEFAULT_SIZE))
    )
    args = parser.parse_args(argv)

    if args.host != LOOPBACK:
        parser.error(
            f"--host must be {LOOPBACK}: the fault endpoint is unauthenticated"
        )
    try:
        app = create_app(
            seed=args.seed,
            size=args.size,
            latency=LatencyModel(mean_ms=args.latency_ms),
        )
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        app,
        host=LOOPBACK,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
