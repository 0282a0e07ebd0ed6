"""Calls to the Building Directory: answers, retries, error classes, the gauge."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fake_directory import FakeDirectory, Scripted

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryMetrics,
    Settings,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamParseError,
    UpstreamTimeoutError,
    UpstreamUnknownError,
)
from loadtests.servers import free_port


def lookups(value: Callable[..., float], status: str) -> float:
    return value(
        "building_directory_requests_total", operation="get_building", status=status
    )


def attempts(value: Callable[..., float], status: str) -> float:
    return value(
        "building_directory_requests_total", operation="fetch_building", status=status
    )


async def test_unknown_building_is_none_not_an_error(
    client: BuildingDirectoryClient, value: Callable[..., float]
) -> None:
    """A 404 answers None and counts not_found, never an error."""
    building = await client.get_building(str(uuid.uuid4()))

    assert building is None
    assert lookups(value, "not_found") == 1
    assert attempts(value, "not_found") == 1
    assert (
        sum(
            value("building_directory_errors_total", error_type=kind)
            for kind in ("timeout", "http_error", "parse_error", "unknown")
        )
        == 0
    )


async def test_server_errors_are_retried_then_raised_as_http_error(
    client: BuildingDirectoryClient,
    settings: Settings,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """A 500 is retried `retries` times, then raised and counted as http_error."""
    building_id = str(uuid.uuid4())
    directory.always(building_id, Scripted(500, b'{"detail": "down"}'))

    with pytest.raises(UpstreamHTTPError) as raised:
        await client.get_building(building_id)

    assert raised.value.status_code == 500
    assert directory.calls[building_id] == 1 + settings.retries
    assert attempts(value, "error") == 1 + settings.retries
    assert lookups(value, "error") == 1
    assert value("building_directory_errors_total", error_type="http_error") == 1


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(Scripted(503, b"busy"), id="503"),
        pytest.param(Scripted(429, b"slow down"), id="429"),
    ],
)
async def test_retryable_status_then_success_answers_the_building(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    value: Callable[..., float],
    first: Scripted,
) -> None:
    """5xx and 429 are retried; a later 200 answers the lookup."""
    building_id = directory.add(make_building())
    directory.script(building_id, first)

    building = await client.get_building(building_id)

    assert building is not None
    assert directory.calls[building_id] == 2
    assert attempts(value, "error") == 1
    assert attempts(value, "success") == 1
    assert lookups(value, "success") == 1


@pytest.mark.parametrize("status", [400, 401, 403, 409, 301])
async def test_other_statuses_are_not_retried(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    status: int,
) -> None:
    """Client errors and redirects fail at once as http_error."""
    building_id = str(uuid.uuid4())
    directory.always(building_id, Scripted(status, b"{}"))

    with pytest.raises(UpstreamHTTPError) as raised:
        await client.get_building(building_id)

    assert raised.value.status_code == status
    assert directory.calls[building_id] == 1


async def test_retry_after_that_fits_the_deadline_is_waited_for(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
) -> None:
    """A 503 asking for 1 s is retried after 1 s, not after the 50 ms backoff."""
    building = make_building()
    directory.add(building)
    directory.script(
        building["id"], Scripted(503, b"busy", headers=(("Retry-After", "1"),))
    )

    started = time.perf_counter()
    answer = await client.get_building(building["id"])

    assert answer == building
    assert time.perf_counter() - started >= 0.95
    assert directory.calls[building["id"]] == 2


async def test_retry_after_past_the_deadline_fails_at_once(
    client: BuildingDirectoryClient, directory: FakeDirectory
) -> None:
    """A 429 asking for 100 s is not waited for: the 2 s deadline could not hold."""
    building_id = str(uuid.uuid4())
    directory.always(
        building_id, Scripted(429, b"slow down", headers=(("Retry-After", "100"),))
    )

    with pytest.raises(UpstreamHTTPError) as raised:
        await client.get_building(building_id)

    assert raised.value.status_code == 429
    assert raised.value.retry_after == 100
    assert directory.calls[building_id] == 1


async def test_a_body_over_the_cap_is_a_parse_error(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """A 2 MiB answer is not read whole into memory; it is an unreadable body."""
    building_id = str(uuid.uuid4())
    padding = b"x" * (2 * 1024 * 1024)
    body = b'{"id": "%s", "pad": "%s"}' % (building_id.encode(), padding)
    directory.script(building_id, Scripted(200, body))

    with pytest.raises(UpstreamParseError, match="bytes"):
        await client.get_building(building_id)

    assert value("building_directory_errors_total", error_type="parse_error") == 1


async def test_slow_answer_is_a_timeout_error(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """A read timeout is raised as UpstreamTimeoutError, counted, not retried."""
    building_id = str(uuid.uuid4())
    directory.script(building_id, Scripted(404, b"{}", delay=1.0))
    impatient = settings.replace(read_timeout=0.2)

    async with BuildingDirectoryClient(impatient, metrics=metrics) as client:
        with pytest.raises(UpstreamTimeoutError):
            await client.get_building(building_id)

    assert directory.calls[building_id] == 1
    assert value("building_directory_errors_total", error_type="timeout") == 1
    assert value("building_directory_active_connections") == 0


async def test_deadline_bounds_the_whole_lookup(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
) -> None:
    """However patient the socket timeouts, the lookup ends at the deadline."""
    building_id = str(uuid.uuid4())
    directory.script(building_id, Scripted(404, b"{}", delay=2.0))
    short = settings.replace(deadline=0.3, read_timeout=5.0)

    async with BuildingDirectoryClient(short, metrics=metrics) as client:
        started = time.perf_counter()
        with pytest.raises(UpstreamTimeoutError):
            await client.get_building(building_id)
        elapsed = time.perf_counter() - started

    assert elapsed < 1.0


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Scripted(200, b"{not json"), id="invalid-json"),
        pytest.param(
            Scripted(200, b"<html><body>Login</body></html>", "text/html"), id="html"
        ),
        pytest.param(Scripted(200, b'[{"id": "x"}]'), id="json-list"),
        pytest.param(Scripted(200, b'{"name": "no id"}'), id="no-id"),
        pytest.param(Scripted(200, b'{"id": "another-building"}'), id="other-id"),
        pytest.param(Scripted(200, b"\xff\xfe\x00"), id="not-utf8"),
        pytest.param(Scripted(200, b""), id="empty"),
    ],
)
async def test_body_that_is_not_the_building_is_a_parse_error(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    redis_raw: Any,
    tenant: str,
    value: Callable[..., float],
    answer: Scripted,
) -> None:
    """A 200 that is not this building's JSON object is counted, never cached."""
    building_id = str(uuid.uuid4())
    directory.script(building_id, answer)

    with pytest.raises(UpstreamParseError):
        await client.get_building(building_id)

    assert value("building_directory_errors_total", error_type="parse_error") == 1
    assert attempts(value, "error") == 1
    assert directory.calls[building_id] == 1
    keys = [key async for key in redis_raw.scan_iter(match=f"*{{{tenant}}}*")]
    assert keys == []


_DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "template",
    [
        pytest.param(b'{"id": "%s", "floors": NaN}', id="nan"),
        pytest.param(b'{"id": "%s", "name": -Infinity}', id="infinity"),
        pytest.param(b'{"id": "%s", "name": "\\ud800 tower"}', id="lone-surrogate"),
        pytest.param(b'{"id": "%s", "x": ' + _DEEP + b"}", id="nested-too-deep"),
    ],
)
async def test_what_python_reads_but_json_is_not_is_a_parse_error(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    redis_raw: Any,
    tenant: str,
    value: Callable[..., float],
    template: bytes,
) -> None:
    """NaN, a lone surrogate or deep nesting is refused at the door, not cached."""
    building_id = str(uuid.uuid4())
    directory.script(building_id, Scripted(200, template % building_id.encode()))

    with pytest.raises(UpstreamParseError, match="strict JSON"):
        await client.get_building(building_id)

    assert value("building_directory_errors_total", error_type="parse_error") == 1
    assert value("building_directory_errors_total", error_type="unknown") == 0
    keys = [key async for key in redis_raw.scan_iter(match=f"*{{{tenant}}}*")]
    assert keys == []


async def test_an_escaped_surrogate_pair_is_one_character_and_fine(
    client: BuildingDirectoryClient, directory: FakeDirectory
) -> None:
    """The strict check refuses lone halves only, not characters beyond the BMP."""
    building_id = str(uuid.uuid4())
    body = b'{"id": "%s", "name": "Tower \\ud83c\\udfe2"}' % building_id.encode()
    directory.script(building_id, Scripted(200, body))

    building = await client.get_building(building_id)

    assert building is not None
    assert building["name"] == "Tower \U0001f3e2"


async def test_refused_connection_is_retried_then_unknown_error(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    value: Callable[..., float],
) -> None:
    """Nothing listening: connect errors are retried, then raised as unknown."""
    nowhere = settings.replace(base_url=f"http://127.0.0.1:{free_port()}")

    async with BuildingDirectoryClient(nowhere, metrics=metrics) as client:
        with pytest.raises(UpstreamUnknownError):
            await client.get_building(str(uuid.uuid4()))

    assert attempts(value, "error") == 1 + settings.retries
    assert value("building_directory_errors_total", error_type="unknown") == 1
    assert value("building_directory_active_connections") == 0


@pytest.mark.parametrize(
    ("failure", "expected", "tries"),
    [
        pytest.param(
            httpx.ConnectTimeout("connect timed out"),
            UpstreamTimeoutError,
            3,
            id="connect-timeout-retried",
        ),
        pytest.param(
            httpx.RemoteProtocolError("peer closed"),
            UpstreamUnknownError,
            1,
            id="protocol-error",
        ),
        pytest.param(
            httpx.PoolTimeout("pool exhausted"),
            UpstreamTimeoutError,
            1,
            id="pool-timeout",
        ),
    ],
)
async def test_transport_failures_are_classified(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    value: Callable[..., float],
    failure: Exception,
    expected: type[UpstreamError],
    tries: int,
) -> None:
    """Failures a real server cannot easily produce map to the right class."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise failure

    async with BuildingDirectoryClient(
        settings.replace(retries=2),
        metrics=metrics,
        transport=httpx.MockTransport(handler),
    ) as client:
        with pytest.raises(expected) as raised:
            await client.get_building(str(uuid.uuid4()))

    assert calls == tries
    assert raised.value.__cause__ is not None
    assert value("building_directory_errors_total", error_type=expected.error_type) == 1


async def wait_for_gauge(value: Callable[..., float], wanted: float) -> float:
    for _ in range(200):
        current = value("building_directory_active_connections")
        if current == wanted:
            return current
        await asyncio.sleep(0.01)
    return value("building_directory_active_connections")


async def test_gauge_returns_to_zero_when_a_cancelled_callers_fetch_ends(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """Cancelling the caller leaves the shared call running; it then releases."""
    building_id = str(uuid.uuid4())
    directory.script(building_id, Scripted(404, b"{}", delay=0.3))

    lookup = asyncio.create_task(client.get_building(building_id))
    in_flight = await wait_for_gauge(value, 1)
    lookup.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lookup
    still_in_flight = value("building_directory_active_connections")
    after = await wait_for_gauge(value, 0)

    assert (in_flight, still_in_flight, after) == (1, 1, 0)
    assert directory.calls[building_id] == 1


async def test_gauge_returns_to_zero_when_closing_cancels_the_call(
    settings: Settings,
    metrics: BuildingDirectoryMetrics,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """Closing the client cancels calls in flight; their waiters get an error."""
    building_id = str(uuid.uuid4())
    directory.script(building_id, Scripted(404, b"{}", delay=2.0))
    client = BuildingDirectoryClient(settings, metrics=metrics)

    lookup = asyncio.create_task(client.get_building(building_id))
    in_flight = await wait_for_gauge(value, 1)
    await client.aclose()

    with pytest.raises(UpstreamUnknownError):
        await lookup
    assert in_flight == 1
    assert value("building_directory_active_connections") == 0


async def test_gauge_returns_to_zero_after_errors(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    value: Callable[..., float],
) -> None:
    """Failed attempts release the gauge like successful ones."""
    building_id = str(uuid.uuid4())
    directory.always(building_id, Scripted(500, b"{}"))

    with pytest.raises(UpstreamHTTPError):
        await client.get_building(building_id)

    assert value("building_directory_active_connections") == 0


async def test_one_log_line_per_upstream_fetch(
    client: BuildingDirectoryClient,
    directory: FakeDirectory,
    make_building: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fetch with a retry logs one INFO line, and a cache hit logs none."""
    building_id = directory.add(make_building())
    directory.script(building_id, Scripted(502, b"bad gateway"))
    caplog.set_level(logging.INFO, logger="instrumentation")

    await client.get_building(building_id)
    await client.get_building(building_id)

    lines = [r for r in caplog.records if r.name.startswith("instrumentation")]
    assert [r.levelname for r in lines] == ["INFO"]
    assert "2 attempt(s)" in lines[0].getMessage()
