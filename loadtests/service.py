"""The reference request service: what a real service built on the client looks like.

A Starlette application, run by uvicorn, that opens one cached
:class:`~instrumentation.BuildingDirectoryClient` (one HTTP client, one Redis
client) for its lifetime and closes it on shutdown.

=================================== ===========================================
endpoint                            answers
=================================== ===========================================
``POST /requests``                  201 the enriched request; 400 malformed
                                    body or id; 404 unknown building; 422
                                    inactive building; 502 a building the
                                    service cannot use; 503 upstream failing
``GET /buildings/{id}``             200 the building; 400; 404; 503
``GET /metrics``                    the Prometheus text format, of every worker
``GET /healthz``                    200 ``ok`` or ``degraded`` with the reasons
``POST /webhooks/building-changed`` 204 cache entry dropped; 400; 401; 413; 503
=================================== ===========================================

Errors are JSON ``{"error": "<code>", "detail": "<why>"}``. An inactive
building answers 422 rather than 404 or 409: the building exists and the body
is well formed, but the request cannot be created for it, and a client must
not retry it unchanged. ``/healthz`` stays 200 when Redis or the upstream
fails: the service still answers (slower, or from stale copies), and an
orchestrator restarting it would not bring Redis back.

The webhook lets the Building Directory say that a building changed. Its body
is ``{"building_id": "<uuid>"}`` and it must carry the header::

    X-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with WEBHOOK_SECRET>

A missing or wrong signature answers 401 and changes nothing; without
``WEBHOOK_SECRET`` the webhook is off (503) rather than open. The worker that
receives it deletes the Redis entry and announces the id over Redis pub/sub,
so every worker and every other process of the tenant drops its near-cache copy
too, within milliseconds (at worst ``CACHE_NEAR_TTL`` while Redis is down).

Settings come from the environment (:meth:`instrumentation.Settings.from_env`)
plus ``WEBHOOK_SECRET``. Run it with ``python -m loadtests.service --port 8080
[--workers N]``. With several workers, every worker writes its metrics to a
shared folder (prometheus-client's multiprocess mode) that is emptied before
the workers start, and ``/metrics`` adds up all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from hashlib import sha256
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from instrumentation import (
    BuildingDirectoryClient,
    BuildingDirectoryMetrics,
    InvalidBuildingIdError,
    Settings,
    UpstreamError,
    _json,
)
from loadtests.servers import LOOPBACK

logger = logging.getLogger(__name__)

#: The exposition format the SPEC fixes for ``/metrics``.
METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
SIGNATURE_HEADER: Final = "X-Signature"
MAX_WEBHOOK_BODY: Final = 4096
MAX_REQUEST_BODY: Final = 64 * 1024
RETRY_AFTER_SECONDS: Final = "5"
_MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# prometheus_client's multiprocess module carries no type hints.
_multiprocess_collector: Callable[[CollectorRegistry], object] = (
    multiprocess.MultiProcessCollector
)
_mark_process_dead: Callable[[int], object] = multiprocess.mark_process_dead


class _BodyTooLarge(Exception):
    """The request body exceeds what the endpoint accepts."""


def _error(status: int, code: str, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status, headers=headers)


def _unavailable(error: BaseException | None) -> JSONResponse:
    detail = "the Building Directory is failing"
    if error is not None:
        detail = f"{detail}: {error}"
    return _error(
        503, "upstream_unavailable", detail, **{"Retry-After": RETRY_AFTER_SECONDS}
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing more than ``limit`` bytes without buffering it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def sign(body: bytes, secret: str) -> str:
    """Return the ``X-Signature`` header value for a webhook body.

    Args:
        body: The exact bytes that will be sent.
        secret: The shared secret (``WEBHOOK_SECRET``).
    """
    digest = hmac.new(secret.encode(), body, sha256).hexdigest()
    return f"sha256={digest}"


def _signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    if not header:
        return False
    # The scheme name and the hex digits may come in either case.
    given = header.strip().lower().encode()
    return hmac.compare_digest(given, sign(body, secret).encode())


class _Service:
    """The routes, around one client opened by the lifespan."""

    def __init__(self, *, webhook_secret: str | None, metrics_registry: Any) -> None:
        self.webhook_secret = webhook_secret
        self.metrics_registry = metrics_registry

    @staticmethod
    def client(request: Request) -> BuildingDirectoryClient:
        client: BuildingDirectoryClient = request.state.client
        return client

    async def create_request(self, request: Request) -> Response:
        try:
            body = _json.loads(await _read_body(request, MAX_REQUEST_BODY))
        except _BodyTooLarge:
            return _error(413, "body_too_large", f"at most {MAX_REQUEST_BODY} bytes")
        except ClientDisconnect:
            return Response(status_code=400)
        except ValueError:
            return _error(400, "invalid_body", "the body must be a JSON object")
        problem = _request_problem(body)
        if problem is not None:
            return _error(400, "invalid_body", problem)
        fields = {k: v for k, v in body.items() if k != "building_id"}

        enriched = await self.client(request).enrich_request(
            fields, body["building_id"]
        )

        validation = enriched.validation
        if validation.result == "invalid_not_found":
            if isinstance(validation.error, InvalidBuildingIdError):
                return _error(400, "invalid_building_id", str(validation.error))
            return _error(
                404,
                "building_not_found",
                f"no building {body['building_id']} in the Building Directory",
            )
        if validation.result == "invalid_inactive":
            return _error(
                422,
                "building_inactive",
                f"building {body['building_id']} is inactive; "
                "requests cannot be created for it",
            )
        if validation.result != "valid":
            return _unavailable(validation.error)
        if enriched.payload is None:
            return _error(
                502,
                "building_unusable",
                "the Building Directory's record of this building cannot be "
                f"merged into the request: {enriched.error}",
            )
        return JSONResponse(
            {"id": str(uuid.uuid4()), **enriched.payload}, status_code=201
        )

    async def get_building(self, request: Request) -> Response:
        building_id = request.path_params["building_id"]
        try:
            building = await self.client(request).get_building(building_id)
        except InvalidBuildingIdError as error:
            return _error(400, "invalid_building_id", str(error))
        except UpstreamError as error:
            return _unavailable(error)
        if building is None:
            return _error(
                404,
                "building_not_found",
                f"no building {building_id} in the Building Directory",
            )
        return JSONResponse(building)

    async def metrics(self, request: Request) -> Response:
        registry = self.metrics_registry
        if registry is None:
            # Multiprocess mode: a fresh registry per scrape reads every
            # worker's files, as prometheus-client requires.
            registry = CollectorRegistry()
            _multiprocess_collector(registry)
        return Response(generate_latest(registry), media_type=METRICS_CONTENT_TYPE)

    async def healthz(self, request: Request) -> Response:
        health = await self.client(request).health()
        return JSONResponse(
            {
                "status": health.status,
                "redis": health.redis,
                "upstream": health.upstream,
                "reasons": list(health.reasons),
                "worker": os.getpid(),
            }
        )

    # TODO(#3): the signature covers no timestamp, so a captured webhook can be
    # replayed; a replay only drops a cache entry again (one extra fetch).
    async def building_changed(self, request: Request) -> Response:
        secret = self.webhook_secret
        if not secret:
            return _error(503, "webhook_disabled", "WEBHOOK_SECRET is not set")
        try:
            raw = await _read_body(request, MAX_WEBHOOK_BODY)
        except _BodyTooLarge:
            return _error(413, "body_too_large", f"at most {MAX_WEBHOOK_BODY} bytes")
        except ClientDisconnect:
            return Response(status_code=400)
        if not _signature_valid(raw, request.headers.get(SIGNATURE_HEADER), secret):
            logger.warning("webhook refused: missing or invalid signature")
            return _error(
                401,
                "invalid_signature",
                f"{SIGNATURE_HEADER} must be sha256=<hex HMAC-SHA256 of the body>",
            )
        try:
            body = _json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("building_id"), str):
            return _error(400, "invalid_body", 'expected {"building_id": "<uuid>"}')

        try:
            dropped = await self.client(request).invalidate(body["building_id"])
        except InvalidBuildingIdError as error:
            return _error(400, "invalid_building_id", str(error))

        logger.info(
            "building %s changed: cache entry %s",
            body["building_id"],
            "dropped" if dropped else "absent",
        )
        return Response(status_code=204)


def _request_problem(body: object) -> str | None:
    """Return why a ``POST /requests`` body is malformed, or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if "building_id" not in body:
        return "building_id is required"
    if not isinstance(body["building_id"], str):
        return "building_id must be a string (a UUID)"
    if "id" in body:
        return "id is assigned by the service; leave it out"
    for name in ("title", "description"):
        if name in body and not isinstance(body[name], str):
            return f"{name} must be a string"
    return None


def create_app(
    settings: Settings | None = None,
    *,
    webhook_secret: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Starlette:
    """Build the service's ASGI application (a uvicorn ``--factory``).

    Args:
        settings: The client's settings; read from the environment unless given.
        webhook_secret: The webhook's shared secret; ``WEBHOOK_SECRET`` unless
            given. Without one the webhook answers 503.
        environ: The environment to read; ``os.environ`` unless given.
    """
    env = os.environ if environ is None else environ
    settings = settings or Settings.from_env(env)
    secret = webhook_secret if webhook_secret is not None else env.get("WEBHOOK_SECRET")
    if env.get(_MULTIPROC_ENV):
        # Metric values go to the shared folder whatever the registry; none is
        # registered here so a scrape does not count this worker twice.
        metrics = BuildingDirectoryMetrics(registry=None)
        registry: CollectorRegistry | None = None
    else:
        registry = CollectorRegistry()
        metrics = BuildingDirectoryMetrics(registry)
    service = _Service(webhook_secret=secret or None, metrics_registry=registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with BuildingDirectoryClient(settings, metrics=metrics) as client:
            logger.info(
                "service ready: upstream %s, cache %s",
                settings.base_url,
                "on" if settings.redis_url else "off",
            )
            yield {"client": client}
        if env.get(_MULTIPROC_ENV):
            # Drops this worker's live gauge files, so the in-flight gauge
            # does not keep counting a worker that is gone.
            _mark_process_dead(os.getpid())

    return Starlette(
        routes=[
            Route("/requests", service.create_request, methods=["POST"]),
            Route("/buildings/{building_id}", service.get_building),
            Route("/metrics", service.metrics),
            Route("/healthz", service.healthz),
            Route(
                "/webhooks/building-changed",
                service.building_changed,
                methods=["POST"],
            ),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception},
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Answer an unknown path or method in the service's JSON error shape."""
    if not isinstance(exc, HTTPException):
        raise exc
    codes = {404: "not_found", 405: "method_not_allowed"}
    return _error(
        exc.status_code,
        codes.get(exc.status_code, "http_error"),
        f"{request.method} {request.url.path}: {exc.detail}",
        **(exc.headers or {}),
    )


def prepare_metrics_dir(path: Path) -> Path:
    """Create the multiprocess metrics folder, or empty it of earlier files.

    Only prometheus-client's own ``*.db`` files are removed, so pointing it at
    the wrong folder by mistake does not delete anything else.
    """
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service with uvicorn on a loopback port until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m loadtests.service",
        description="Serve the reference request service on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--metrics-dir",
        type=Path,
        help="shared metrics folder of the workers (with --workers > 1); "
        "emptied at start; a temporary folder unless given",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )

    options: dict[str, Any] = {
        "host": LOOPBACK,
        "port": args.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 2,
    }
    if args.workers == 1:
        uvicorn.run(create_app(), **options)
        return 0

    temporary = args.metrics_dir is None
    metrics_dir = (
        Path(tempfile.mkdtemp(prefix="bdobs-metrics-"))
        if temporary
        else args.metrics_dir
    )
    # Set before the workers start: each one reads it when it first imports
    # prometheus_client, which decides there whether values go to files.
    os.environ[_MULTIPROC_ENV] = str(prepare_metrics_dir(metrics_dir))
    try:
        uvicorn.run(
            "loadtests.service:create_app",
            factory=True,
            workers=args.workers,
            **options,
        )
    finally:
        if temporary:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
