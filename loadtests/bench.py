"""Benchmarks of the cached client: against raw Redis, peers, and itself.

Every figure is measured in the same run as the baseline it is compared with,
on a ``redis-server`` this module starts on a loopback port, so ratios hold
even when the machine is busy or slow. Cases run interleaved, round after
round, and each figure is the median over rounds with its spread (lowest and
highest round), in microseconds per lookup.

Cases:

* ``raw_get``: a ``redis.asyncio`` GET of the very bytes the client stores,
  the floor for anything that goes to Redis;
* ``raw_get_decode``: the same GET plus ``json.loads``, the floor for any
  cache that stores JSON;
* ``redis_hit``: the client's lookup answered from Redis (near cache off);
* ``near_hit``: the client's lookup answered from the in-process level;
* ``*_nometrics``: the same hits with metrics switched off, so the
  instrumentation's cost per lookup is the difference;
* ``miss``: a lookup through to a local upstream that adds no latency;
* peers: the same hit through other cache libraries on the same Redis,
  decoding the same JSON (``cashews``, ``aiocache``; the ``bench`` extra).

Single-flight is counted, not timed: 1,000 concurrent lookups of one cold id
and the number of upstream calls they made.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadtests.servers import (
    LOOPBACK,
    ManagedProcess,
    RedisServer,
    free_port,
    http_ok,
    wait_until,
)

logger = logging.getLogger(__name__)

Lookup = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Figure:
    """One timed case: the median over rounds and its spread, in µs per op."""

    name: str
    description: str
    median_us: float
    low_us: float
    high_us: float
    rounds: int
    ops_per_round: int


@dataclass(frozen=True, slots=True)
class Goal:
    """One of the goals the benchmark checks, with the value it measured."""

    name: str
    value: float
    limit: str
    met: bool


@dataclass(slots=True)
class BenchReport:
    """Everything one run measured, ready for a table or JSON."""

    machine: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    single_flight: dict[str, int] = field(default_factory=dict)
    service: dict[str, dict[str, float]] = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def figure(self, name: str) -> Figure | None:
        """Return the figure with this name, if it was measured."""
        return next((f for f in self.figures if f.name == name), None)

    def to_json(self) -> str:
        """Serialize deterministically (sorted keys, two-space indent)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def describe_machine() -> dict[str, str]:
    """Return what a reader needs to judge the figures: CPU, Python, versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = (
        subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        )
        .stdout.split(" v=")[-1]
        .split()[0:1]
    )
    versions = {}
    for package in ("redis", "httpx", "prometheus-client", "cashews", "aiocache"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "redis_server": redis_version[0] if redis_version else "unknown",
        "libraries": ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
    }


async def _time_round(lookup: Lookup, ops: int) -> float:
    """Run ``lookup`` ``ops`` times in a row; return microseconds per call."""
    started = time.perf_counter_ns()
    for _ in range(ops):
        await lookup()
    return (time.perf_counter_ns() - started) / ops / 1000


async def measure_interleaved(
    cases: dict[str, tuple[str, Lookup, int]], *, rounds: int, warmup: int = 200
) -> list[Figure]:
    """Time every case round-robin, so drift affects all cases alike.

    Args:
        cases: name -> (description, lookup, ops per round).
        rounds: Rounds per case; the median over rounds is reported.
        warmup: Untimed calls per case before the first round.
    """
    for _description, lookup, _ops in cases.values():
        for _ in range(warmup):
            await lookup()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (_description, lookup, ops) in cases.items():
            samples[name].append(await _time_round(lookup, ops))
    return [
        Figure(
            name=name,
            description=description,
            median_us=statistics.median(samples[name]),
            low_us=min(samples[name]),
            high_us=max(samples[name]),
            rounds=rounds,
            ops_per_round=ops,
        )
        for name, (description, _lookup, ops) in cases.items()
    ]


@contextlib.contextmanager
def simulator(workdir: Path, *, latency_ms: float = 0.0) -> Iterator[str]:
    """Run the Building Directory simulator in its own process; yield its URL."""
    port = free_port()
    process = ManagedProcess(
        "simulator",
        [
            sys.executable,
            "-m",
            "loadtests.simulator",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
        ],
        log_path=workdir / "simulator.log",
    )
    process.start()
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(
            lambda: http_ok(f"{url}/healthz") or not process.alive(),
            timeout=20,
            what="the simulator",
        )
        process.ensure_running()
        yield url
    finally:
        process.stop()


def _fetch_ids(upstream_url: str, limit: int) -> list[str]:
    import httpx

    response = httpx.get(
        f"{upstream_url}/api/v1/buildings", params={"limit": limit}, timeout=10
    )
    response.raise_for_status()
    body = response.json()
    ids = body["ids"] if isinstance(body, dict) else body
    return [str(building_id) for building_id in ids]


def _upstream_calls(registry: Any) -> int:
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if (
                sample.name == "building_directory_requests_total"
                and sample.labels.get("operation") == "fetch_building"
            ):
                total += sample.value
    return int(total)


async def _peer_cases(
    redis_server: RedisServer, key_prefix: str, building: dict[str, Any]
) -> tuple[dict[str, tuple[str, Lookup, int]], list[str], list[Callable[[], Any]]]:
    """Build the peer libraries' hit cases; return them, skips and closers."""
    cases: dict[str, tuple[str, Lookup, int]] = {}
    skipped: list[str] = []
    closers: list[Callable[[], Any]] = []
    try:
        from cashews import Cache
    except ImportError:
        skipped.append("cashews (install the 'bench' extra)")
    else:
        cashews_cache = Cache()
        cashews_cache.setup(redis_server.url, socket_timeout=1)
        cashews_key = f"{key_prefix}:cashews"
        await cashews_cache.set(cashews_key, building, expire=300)
        cases["peer_cashews"] = (
            "cashews get (Redis backend, its default serializer)",
            lambda: cashews_cache.get(cashews_key),
            0,
        )
        closers.append(cashews_cache.close)
    try:
        from aiocache import RedisCache
        from aiocache.serializers import JsonSerializer
    except ImportError:
        skipped.append("aiocache (install the 'bench' extra)")
    else:
        aiocache_cache = RedisCache(
            serializer=JsonSerializer(), endpoint=LOOPBACK, port=redis_server.port
        )
        aiocache_key = f"{key_prefix}:aiocache"
        await aiocache_cache.set(aiocache_key, building, ttl=300)
        cases["peer_aiocache"] = (
            "aiocache get (RedisCache, JSON serializer)",
            lambda: aiocache_cache.get(aiocache_key),
            0,
        )
        closers.append(aiocache_cache.close)
    return cases, skipped, closers


async def run_micro(
    report: BenchReport,
    redis_server: RedisServer,
    upstream_url: str,
    *,
    rounds: int,
    ops: int,
    near_ops: int,
    miss_ops: int,
    peers: bool = True,
) -> None:
    """Measure the per-lookup figures and single-flight into ``report``."""
    from prometheus_client import CollectorRegistry
    from redis.asyncio import Redis

    from instrumentation import (
        BuildingDirectoryClient,
        BuildingDirectoryMetrics,
        DisabledMetrics,
        Settings,
    )

    ids = _fetch_ids(upstream_url, max(miss_ops * 2, 1100))
    hot_id = ids[0]
    settings = Settings(redis_url=redis_server.url, base_url=upstream_url)
    near = settings.replace(near_cache_size=1024, near_cache_ttl=60.0)
    raw = Redis.from_url(redis_server.url)
    clients = {
        "redis": BuildingDirectoryClient(
            settings, metrics=BuildingDirectoryMetrics(CollectorRegistry())
        ),
        "redis_nometrics": BuildingDirectoryClient(settings, metrics=DisabledMetrics()),
        "near": BuildingDirectoryClient(
            near, metrics=BuildingDirectoryMetrics(CollectorRegistry())
        ),
        "near_nometrics": BuildingDirectoryClient(near, metrics=DisabledMetrics()),
    }
    closers: list[Callable[[], Any]] = [raw.aclose]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients.values():
            await stack.enter_async_context(client)
        building = await clients["redis"].get_building(hot_id)
        if building is None:
            raise RuntimeError(f"the simulator does not know {hot_id}")
        keys = [key async for key in raw.scan_iter(match=f"*{hot_id}*")]
        if len(keys) != 1:
            raise RuntimeError(f"expected one cache key for {hot_id}, found {keys}")
        key = keys[0]
        for name in ("near", "near_nometrics"):
            await clients[name].get_building(hot_id)

        cases: dict[str, tuple[str, Lookup, int]] = {
            "raw_get": (
                "redis.asyncio GET of the stored bytes",
                lambda: raw.get(key),
                ops,
            ),
            "raw_get_decode": (
                "redis.asyncio GET plus json.loads of the stored bytes",
                lambda: _get_and_decode(raw, key),
                ops,
            ),
            "redis_hit": (
                "client lookup, hit from Redis",
                lambda: clients["redis"].get_building(hot_id),
                ops,
            ),
            "redis_hit_nometrics": (
                "client lookup, hit from Redis, metrics off",
                lambda: clients["redis_nometrics"].get_building(hot_id),
                ops,
            ),
            "near_hit": (
                "client lookup, hit from the near cache",
                lambda: clients["near"].get_building(hot_id),
                near_ops,
            ),
            "near_hit_nometrics": (
                "client lookup, hit from the near cache, metrics off",
                lambda: clients["near_nometrics"].get_building(hot_id),
                near_ops,
            ),
        }
        if peers:
            peer_cases, skipped, peer_closers = await _peer_cases(
                redis_server, "bench:peer", building
            )
            cases.update(
                {name: (text, fn, ops) for name, (text, fn, _) in peer_cases.items()}
            )
            report.skipped.extend(skipped)
            closers.extend(peer_closers)
        logger.info("timing %d cases, %d rounds", len(cases), rounds)
        report.figures.extend(await measure_interleaved(cases, rounds=rounds))

        report.figures.append(
            await _measure_misses(
                redis_server, upstream_url, ids, raw, rounds=rounds, ops=miss_ops
            )
        )
        report.single_flight = await _single_flight(
            settings, raw, cold_id=ids[-1], concurrency=1000
        )
    for close in closers:
        # cashews closes its client with redis-py's deprecated close(); the
        # warning is about a peer's code, not ours.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            result = close()
            if asyncio.iscoroutine(result):
                await result
    _derive(report)


async def _measure_misses(
    redis_server: RedisServer,
    upstream_url: str,
    ids: Sequence[str],
    raw: Any,
    *,
    rounds: int,
    ops: int,
) -> Figure:
    from prometheus_client import CollectorRegistry

    from instrumentation import (
        BuildingDirectoryClient,
        BuildingDirectoryMetrics,
        Settings,
    )

    settings = Settings(redis_url=redis_server.url, base_url=upstream_url)
    client = BuildingDirectoryClient(
        settings, metrics=BuildingDirectoryMetrics(CollectorRegistry())
    )
    samples = []
    async with client:
        for _ in range(rounds):
            await raw.flushdb()
            samples.append(await _time_round(_cycle(client, ids[:ops]), ops))
    return Figure(
        name="miss",
        description="client lookup, miss to a local upstream (no added latency)",
        median_us=statistics.median(samples),
        low_us=min(samples),
        high_us=max(samples),
        rounds=rounds,
        ops_per_round=ops,
    )


async def _get_and_decode(raw: Any, key: bytes) -> object:
    return json.loads(await raw.get(key))


def _cycle(client: Any, ids: Sequence[str]) -> Lookup:
    """Return a lookup that asks for the next id of ``ids`` at each call."""
    remaining = iter(ids)

    def lookup() -> Awaitable[object]:
        return client.get_building(next(remaining))  # type: ignore[no-any-return]

    return lookup


async def _single_flight(
    settings: Any, raw: Any, *, cold_id: str, concurrency: int
) -> dict[str, int]:
    from prometheus_client import CollectorRegistry

    from instrumentation import BuildingDirectoryClient, BuildingDirectoryMetrics

    await raw.flushdb()
    registry = CollectorRegistry()
    client = BuildingDirectoryClient(
        settings, metrics=BuildingDirectoryMetrics(registry)
    )
    async with client:
        results = await asyncio.gather(
            *(client.get_building(cold_id) for _ in range(concurrency)),
            return_exceptions=True,
        )
    failed = sum(isinstance(result, BaseException) for result in results)
    return {
        "concurrent_lookups": concurrency,
        "upstream_calls": _upstream_calls(registry),
        "failed_lookups": failed,
    }


def _derive(report: BenchReport) -> None:
    """Compute the ratios and check the goals from the measured figures."""
    medians = {figure.name: figure.median_us for figure in report.figures}
    raw = medians["raw_get"]
    ratios = report.ratios
    ratios["redis_hit_over_raw_get"] = medians["redis_hit"] / raw
    ratios["raw_get_over_near_hit"] = raw / medians["near_hit"]
    instrumentation_us = medians["near_hit"] - medians["near_hit_nometrics"]
    ratios["instrumentation_us_per_lookup"] = instrumentation_us
    ratios["instrumentation_us_per_redis_hit"] = (
        medians["redis_hit"] - medians["redis_hit_nometrics"]
    )
    report.goals.extend(
        [
            Goal(
                "Redis hit within 1.25x of a raw GET",
                ratios["redis_hit_over_raw_get"],
                "<= 1.25",
                ratios["redis_hit_over_raw_get"] <= 1.25,
            ),
            Goal(
                "near-cache hit 20x faster than a raw GET",
                ratios["raw_get_over_near_hit"],
                ">= 20",
                ratios["raw_get_over_near_hit"] >= 20,
            ),
            Goal(
                "instrumentation under 5 µs per lookup",
                instrumentation_us,
                "< 5 µs",
                instrumentation_us < 5,
            ),
        ]
    )
    if report.single_flight:
        calls = report.single_flight["upstream_calls"]
        report.goals.append(
            Goal("one upstream call for 1,000 cold lookups", calls, "== 1", calls == 1)
        )
    for name, median in sorted(medians.items()):
        if name.startswith("peer_"):
            ratio = medians["redis_hit"] / median
            ratios[f"redis_hit_over_{name}"] = ratio
            report.goals.append(
                Goal(f"at least as fast as {name[5:]}", ratio, "<= 1.0", ratio <= 1.0)
            )


def run_service(
    report: BenchReport,
    workdir: Path,
    *,
    concurrency: int,
    duration: float,
    id_pool: int = 200,
) -> None:
    """Load the reference service with the cache on, then off, from another process.

    The simulator keeps its default latency (the 100-200 ms an uncached lookup
    costs), so the two runs show what the cache saves a real service. Each
    run first asks for every id once, untimed, so "cache on" is measured warm.
    """
    from loadtests.stack import Stack

    for mode, service_env in (("cache_on", {}), ("cache_off", {"REDIS_URL": ""})):
        stack = Stack(workdir=workdir / mode, service_env=service_env)
        with stack as urls:
            ids = _fetch_ids(urls.directory_url, id_pool)
            ids_file = workdir / f"{mode}-ids.txt"
            ids_file.write_text("\n".join(ids) + "\n")
            logger.info("service benchmark %s: %d s", mode, duration)
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "loadtests._loadgen",
                    "--url",
                    urls.service_url,
                    "--ids-file",
                    str(ids_file),
                    "--concurrency",
                    str(concurrency),
                    "--duration",
                    str(duration),
                    "--warm",
                ],
                capture_output=True,
                text=True,
                timeout=duration + 60,
                check=False,
            )
        if completed.returncode != 0:
            raise RuntimeError(
                f"the load generator failed ({mode}): {completed.stderr.strip()}"
            )
        report.service[mode] = json.loads(completed.stdout)
    on, off = report.service["cache_on"], report.service["cache_off"]
    report.ratios["service_rate_cache_on_over_off"] = on["rate"] / off["rate"]


def run_bench(
    *,
    rounds: int = 7,
    ops: int = 2000,
    near_ops: int = 50_000,
    miss_ops: int = 200,
    peers: bool = True,
    service: bool = True,
    service_duration: float = 10.0,
    service_concurrency: int = 16,
    workdir: Path | None = None,
) -> BenchReport:
    """Run every benchmark on servers it starts itself, and return the report.

    Args:
        rounds: Rounds per timed case.
        ops: Lookups per round for the cases that go to Redis.
        near_ops: Lookups per round for the in-process cases.
        miss_ops: Lookups per round for the miss case (distinct ids).
        peers: Also time the peer libraries.
        service: Also run the service-level benchmark.
        service_duration: Seconds of load per service run.
        service_concurrency: Requests in flight during the service runs.
        workdir: Where servers keep their folders and logs; a temporary
            folder unless given.
    """
    report = BenchReport(machine=describe_machine())
    with contextlib.ExitStack() as cleanup:
        if workdir is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
        redis_server = cleanup.enter_context(RedisServer(workdir / "redis"))
        upstream_url = cleanup.enter_context(simulator(workdir, latency_ms=0))
        asyncio.run(
            run_micro(
                report,
                redis_server,
                upstream_url,
                rounds=rounds,
                ops=ops,
                near_ops=near_ops,
                miss_ops=miss_ops,
                peers=peers,
            )
        )
    if service:
        run_service(
            report,
            workdir / "service",
            concurrency=service_concurrency,
            duration=service_duration,
        )
    return report


def format_report(report: BenchReport) -> str:
    """Render the report as the plain-text tables ``bdobs bench`` prints."""
    lines = ["machine:"]
    lines += [f"  {key}: {value}" for key, value in sorted(report.machine.items())]
    lines += ["", f"{'case':<22} {'median µs':>10} {'low':>9} {'high':>9}  what"]
    for figure in report.figures:
        lines.append(
            f"{figure.name:<22} {figure.median_us:>10.2f} {figure.low_us:>9.2f} "
            f"{figure.high_us:>9.2f}  {figure.description}"
        )
    if report.single_flight:
        flight = report.single_flight
        lines += [
            "",
            f"single-flight: {flight['concurrent_lookups']} concurrent cold lookups "
            f"-> {flight['upstream_calls']} upstream call(s), "
            f"{flight['failed_lookups']} failed",
        ]
    if report.service:
        lines += ["", f"{'service':<10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}"]
        for mode, figures in sorted(report.service.items()):
            lines.append(
                f"{mode:<10} {figures['rate']:>8.1f} {figures['p50_ms']:>8.1f} "
                f"{figures['p95_ms']:>8.1f}"
            )
    lines += ["", "ratios:"]
    lines += [f"  {name}: {value:.3g}" for name, value in sorted(report.ratios.items())]
    lines += ["", "goals:"]
    for goal in report.goals:
        mark = "met " if goal.met else "MISS"
        lines.append(f"  [{mark}] {goal.name}: {goal.value:.3g} ({goal.limit})")
    if report.skipped:
        lines += ["", "skipped: " + "; ".join(report.skipped)]
    return "\n".join(lines) + "\n"
