"""A closed-loop HTTP load generator for the service-level benchmark.

Runs in its own process (``python -m loadtests._loadgen``) so that the service
under test never shares an event loop or a core's Python interpreter with the
client that loads it. A fixed number of workers each send one request at a
time, for a bounded duration and a bounded request count, and the result is
printed as one JSON object: request count, rate, p50/p95/p99 and failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


async def _worker(
    client: httpx.AsyncClient,
    url: str,
    ids: Sequence[str],
    rng: random.Random,
    stop_at: float,
    budget: list[int],
    latencies: list[float],
    failures: list[int],
) -> None:
    while time.perf_counter() < stop_at and budget[0] > 0:
        budget[0] -= 1
        body = {"building_id": rng.choice(ids), "title": "Benchmark request"}
        started = time.perf_counter()
        try:
            response = await client.post(url, json=body)
            ok = response.status_code < 500
        except httpx.HTTPError:
            ok = False
        latencies.append(time.perf_counter() - started)
        if not ok:
            failures[0] += 1


async def _warm(
    client: httpx.AsyncClient, url: str, ids: Sequence[str], concurrency: int
) -> None:
    pending = iter(ids)

    async def one_worker() -> None:
        for building_id in pending:
            body = {"building_id": building_id, "title": "Warm-up request"}
            try:
                await client.post(url, json=body)
            except httpx.HTTPError:
                continue

    await asyncio.gather(*(one_worker() for _ in range(concurrency)))


async def run(
    base_url: str,
    ids: Sequence[str],
    *,
    concurrency: int,
    duration: float,
    max_requests: int,
    seed: int = 1,
    warm: bool = False,
) -> dict[str, float]:
    """Load ``POST {base_url}/requests`` and return the figures.

    Args:
        base_url: The service, on a loopback address.
        ids: Building ids to draw from, uniformly.
        concurrency: Requests in flight at any time.
        duration: Seconds to run at most.
        max_requests: Requests to send at most.
        seed: Seed of the id choice.
        warm: Ask for every id once, untimed, before the timed run, so a
            cache starts warm and the figures describe its steady state.
    """
    url = f"{base_url.rstrip('/')}/requests"
    latencies: list[float] = []
    failures = [0]
    budget = [max_requests]
    limits = httpx.Limits(max_connections=concurrency)
    timeout = httpx.Timeout(10.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        if warm:
            await _warm(client, url, ids, concurrency)
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(
            *(
                _worker(
                    client,
                    url,
                    ids,
                    random.Random(seed + n),
                    stop_at,
                    budget,
                    latencies,
                    failures,
                )
                for n in range(concurrency)
            )
        )
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures[0],
        "seconds": elapsed,
        "rate": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the load and print its figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m loadtests._loadgen")
    parser.add_argument("--url", required=True, help="service base URL (loopback)")
    parser.add_argument("--ids-file", required=True, help="one building id a line")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument(
        "--warm", action="store_true", help="ask for every id once before timing"
    )
    args = parser.parse_args(argv)

    host = urlsplit(args.url).hostname
    if host not in _LOOPBACK_HOSTS:
        parser.error(f"--url must point at this machine (loopback), got {host!r}")
    with open(args.ids_file, encoding="utf-8") as handle:
        ids = [line.strip() for line in handle if line.strip()]
    if not ids:
        parser.error(f"{args.ids_file} holds no ids")

    figures = asyncio.run(
        run(
            args.url,
            ids,
            concurrency=args.concurrency,
            duration=args.duration,
            max_requests=args.max_requests,
            warm=args.warm,
        )
    )
    json.dump(figures, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
