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
from typing import Final
from urllib.parse import urlsplit

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_TIMEOUT: Final = 10.0  # seconds per request, connecting included


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class _Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the answer.

    Hand-written rather than httpx: a general-purpose client costs more CPU
    per request than the service it loads, and a saturated load generator
    would measure itself. This one speaks only what the service answers:
    ``Content-Length`` bodies, no chunked encoding.
    """

    def __init__(self, host: str, port: int, path: str) -> None:
        self._host = host
        self._port = port
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        """Send one request; return the response's status code."""
        async with asyncio.timeout(_TIMEOUT):
            if self._reader is None or self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(
                    self._host, self._port
                )
            reader, writer = self._reader, self._writer
            writer.write(self._head + b"%d\r\n\r\n" % len(body) + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = parse_head(head)
            await reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        """Drop the connection; the next request opens a new one."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """Return status, Content-Length and whether the server closes the line."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length: int | None = None
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
        elif name == "transfer-encoding":
            raise ValueError(f"unsupported Transfer-Encoding: {value.strip()}")
    if length is None:
        raise ValueError("the response has no Content-Length")
    return status, length, close


_FAILURES: Final = (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError)


async def _worker(
    connection: _Connection,
    ids: Sequence[str],
    rng: random.Random,
    stop_at: float,
    budget: list[int],
    latencies: list[float],
    failures: list[int],
) -> None:
    while time.perf_counter() < stop_at and budget[0] > 0:
        budget[0] -= 1
        body = _body(rng.choice(ids), "Benchmark request")
        started = time.perf_counter()
        try:
            ok = await connection.post(body) < 500
        except _FAILURES:
            connection.close()
            ok = False
        latencies.append(time.perf_counter() - started)
        if not ok:
            failures[0] += 1
    connection.close()


def _body(building_id: str, title: str) -> bytes:
    return json.dumps({"building_id": building_id, "title": title}).encode()


async def _warm(connections: Sequence[_Connection], ids: Sequence[str]) -> None:
    pending = iter(ids)

    async def one_worker(connection: _Connection) -> None:
        for building_id in pending:
            try:
                await connection.post(_body(building_id, "Warm-up request"))
            except _FAILURES:
                connection.close()

    await asyncio.gather(*(one_worker(connection) for connection in connections))


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
        base_url: The service, on a loopback address (``http`` only).
        ids: Building ids to draw from, uniformly.
        concurrency: Requests in flight at any time, one connection each.
        duration: Seconds to run at most.
        max_requests: Requests to send at most.
        seed: Seed of the id choice.
        warm: Ask for every id once, untimed, before the timed run, so a
            cache starts warm and the figures describe its steady state.
    """
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"expected an http:// URL, got {base_url!r}")
    path = f"{parts.path.rstrip('/')}/requests"
    connections = [
        _Connection(parts.hostname, parts.port or 80, path) for _ in range(concurrency)
    ]
    latencies: list[float] = []
    failures = [0]
    budget = [max_requests]
    if warm:
        await _warm(connections, ids)
    started = time.perf_counter()
    stop_at = started + duration
    try:
        await asyncio.gather(
            *(
                _worker(
                    connection,
                    ids,
                    random.Random(seed + n),
                    stop_at,
                    budget,
                    latencies,
                    failures,
                )
                for n, connection in enumerate(connections)
            )
        )
    finally:
        for connection in connections:
            connection.close()
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
