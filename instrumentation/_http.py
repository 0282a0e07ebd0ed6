"""The HTTP level: one pooled ``httpx.AsyncClient`` calling the Building Directory.

``GET {base_url}/api/v1/buildings/{id}`` answers 200 with a building or 404. A
fetch makes up to ``1 + Settings.retries`` attempts, all within
``Settings.deadline``; only failures that are safe and worth repeating are
retried (a connection that could not be made, 5xx, 429), after a short jittered
backoff, or the wait a ``Retry-After`` header asks for when that is longer; a
wait that would outlast the deadline is not started, and the error is raised.
404 is an answer (None), never an error. Everything else becomes an
:class:`~instrumentation.errors.UpstreamError`:

* no answer in time (connect, read or pool timeout, or the deadline) →
  ``UpstreamTimeoutError`` (``timeout``);
* a status other than 200 and 404 → ``UpstreamHTTPError`` (``http_error``);
* a 200 whose body is not a JSON object with the requested ``id`` (HTML,
  invalid or non-strict JSON, another building), or any body over
  ``MAX_BODY_BYTES`` → ``UpstreamParseError`` (``parse_error``);
* anything else on the way (connection refused or reset, protocol error) →
  ``UpstreamUnknownError`` (``unknown``).

Each attempt counts ``building_directory_requests_total{operation=
"fetch_building"}`` (``success`` for a building, ``not_found`` for a 404,
``error`` otherwise) and its duration, and holds
``building_directory_active_connections`` up while in flight (released on
errors and cancellation too). Each fetch logs one line: INFO when it got an
answer, WARNING when it failed. httpx logs every attempt at INFO on its own
``httpx`` logger, which applications usually set to WARNING.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from typing import Any, Final, Literal

import httpx

from instrumentation import _json
from instrumentation.config import Settings
from instrumentation.errors import (
    ConfigurationError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamParseError,
    UpstreamTimeoutError,
    UpstreamUnknownError,
)
from instrumentation.metrics import BuildingDirectoryMetrics

logger = logging.getLogger(__name__)

UpstreamState = Literal["ok", "failing", "unknown"]

_BACKOFF_BASE: Final = 0.05  # seconds before the first retry, before jitter
_BACKOFF_CAP: Final = 0.5
#: The largest body read from the Building Directory; a building is about 1 KiB.
MAX_BODY_BYTES: Final = 1024 * 1024
# Failures where the request surely never reached the application.
_RETRYABLE_TRANSPORT: Final = (httpx.ConnectError, httpx.ConnectTimeout)


class Upstream:
    """The Building Directory API, seen through one pooled HTTP client.

    Args:
        settings: Base URL, timeouts, deadline, pool size and retries.
        metrics: Where to count attempts.
        transport: An httpx transport to use instead of the network (tests).

    Attributes:
        state: ``ok`` after a fetch got an answer, ``failing`` after one failed,
            ``unknown`` before the first fetch.
        last_error: Why the last fetch failed, or None.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: BuildingDirectoryMetrics,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if settings.base_url is None:
            raise ConfigurationError(
                "BUILDING_DIRECTORY_URL is not set: the client needs the base URL "
                "of the Building Directory API"
            )
        self._client = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.pool_timeout,
            ),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            headers={"Accept": "application/json"},
            follow_redirects=False,
            transport=transport,
        )
        self._deadline = settings.deadline
        self._retries = settings.retries
        self._active = metrics.active_connections
        self._duration = metrics.duration["fetch_building"]
        self._outcomes = {
            status: metrics.requests[("fetch_building", status)]
            for status in ("success", "not_found", "error")
        }
        self.state: UpstreamState = "unknown"
        self.last_error: str | None = None

    async def fetch(self, building_id: str) -> dict[str, Any] | None:
        """Fetch one building; None when the Building Directory says 404.

        Args:
            building_id: A canonical building id.

        Returns:
            The building object as sent, or None for "not found".

        Raises:
            UpstreamError: One of its subclasses, after retries, as described
                in the module docstring.
        """
        started = time.perf_counter()
        tries = [0]  # attempts made so far, also known when a failure escapes
        try:
            async with asyncio.timeout(self._deadline):
                building = await self._attempts(building_id, started, tries)
        except TimeoutError as exc:
            reason = f"no answer within the {self._deadline:g} s deadline"
            self._failed(building_id, started, tries[0], reason)
            raise UpstreamTimeoutError(
                f"the Building Directory gave no answer for {building_id} within "
                f"the {self._deadline:g} s deadline"
            ) from exc
        except UpstreamError as exc:
            self._failed(building_id, started, tries[0], str(exc))
            raise
        self.state = "ok"
        self.last_error = None
        logger.info(
            "Building Directory GET %s: %s after %d attempt(s) in %.1f ms",
            building_id,
            "found" if building is not None else "not found",
            tries[0],
            (time.perf_counter() - started) * 1000,
        )
        return building

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def _attempts(
        self, building_id: str, started: float, tries: list[int]
    ) -> dict[str, Any] | None:
        path = f"/api/v1/buildings/{building_id}"
        while True:
            tries[0] += 1
            attempt = tries[0]
            try:
                return await self._attempt(path, building_id)
            except UpstreamError as exc:
                if attempt > self._retries or not _retryable(exc):
                    raise
                delay = _backoff(attempt)
                if isinstance(exc, UpstreamHTTPError) and exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)  # the server knows best
                if time.perf_counter() - started + delay >= self._deadline:
                    raise  # the deadline would expire while waiting
                logger.debug(
                    "Building Directory GET %s: %s; retrying in %.0f ms",
                    building_id,
                    exc,
                    delay * 1000,
                )
                await asyncio.sleep(delay)

    async def _attempt(self, path: str, building_id: str) -> dict[str, Any] | None:
        started = time.perf_counter()
        outcome = "error"
        self._active.inc()
        try:
            try:
                async with self._client.stream("GET", path) as response:
                    # Read every body, so the connection goes back to the pool.
                    content = await _read_capped(response)
            except httpx.TimeoutException as exc:
                raise UpstreamTimeoutError(
                    f"the Building Directory did not answer in time ({_name(exc)})"
                ) from exc
            except httpx.HTTPError as exc:
                raise UpstreamUnknownError(
                    f"calling the Building Directory failed ({_name(exc)})"
                ) from exc
            status = response.status_code
            if status == 404:
                outcome = "not_found"
                return None
            if status != 200:
                raise UpstreamHTTPError(
                    f"the Building Directory answered HTTP {status}",
                    status_code=status,
                    retry_after=_retry_after(response.headers.get("retry-after")),
                )
            building = _parse(content, building_id)
            outcome = "success"
            return building
        finally:
            self._active.dec()
            self._outcomes[outcome].inc()
            self._duration.observe(time.perf_counter() - started)

    def _failed(
        self, building_id: str, started: float, attempts: int, reason: str
    ) -> None:
        self.state = "failing"
        self.last_error = reason
        logger.warning(
            "Building Directory GET %s failed after %d attempt(s) in %.1f ms: %s",
            building_id,
            attempts,
            (time.perf_counter() - started) * 1000,
            reason,
        )


def _parse(content: bytes, building_id: str) -> dict[str, Any]:
    try:
        body = _json.loads(content)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise UpstreamParseError(
            f"the Building Directory answered 200 with a body that is not "
            f"strict JSON: {exc}"
        ) from exc
    if not isinstance(body, dict):
        raise UpstreamParseError(
            f"the Building Directory answered 200 with a JSON "
            f"{type(body).__name__}, not a building object"
        )
    received = body.get("id")
    if not isinstance(received, str) or received.lower() != building_id:
        raise UpstreamParseError(
            f"the Building Directory answered 200 with a body whose id is not "
            f"{building_id}"
        )
    return body


async def _read_capped(response: httpx.Response) -> bytes:
    """Read a body of at most ``MAX_BODY_BYTES``; a longer one is unreadable."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise UpstreamParseError(
            f"the Building Directory announced a {declared}-byte body; a building "
            f"takes at most {MAX_BODY_BYTES}"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise UpstreamParseError(
                f"the Building Directory sent more than {MAX_BODY_BYTES} bytes; "
                "a building takes fewer"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    """Read ``Retry-After`` (seconds, or an HTTP date) as seconds from now."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _retryable(exc: UpstreamError) -> bool:
    if isinstance(exc, UpstreamHTTPError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc.__cause__, _RETRYABLE_TRANSPORT)


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: between half and all of the step."""
    step: float = min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** (attempt - 1))
    return step * (0.5 + random.random() / 2)


def _name(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
