"""Tests of the reference request service against real Redis and the simulator."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtests import simulator
from loadtests.servers import RedisServer
from loadtests.service import sign

StartService = Callable[..., AbstractContextManager[str]]

_ACTIVE = [
    i for i in simulator.ids_by_shape()["nested"] if i not in simulator.inactive_ids()
]


class _Ids:
    """Hands out active buildings with nested coordinates, each used once."""

    def __init__(self) -> None:
        self._ids: Iterator[str] = iter(_ACTIVE)

    def take(self) -> str:
        return next(self._ids)


@pytest.fixture(scope="module")
def fresh_ids() -> _Ids:
    """Building ids that no test of this module has looked up yet."""
    return _Ids()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of ``url``'s ``/metrics`` by name and sorted labels."""
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """Return one sample's value; 0 if the series is absent."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def cache_ops(url: str) -> dict[str, float]:
    """Return the service's cache hit and miss counts."""
    samples = scrape(url)
    return {
        op: value(samples, "building_cache_operations_total", operation=op)
        for op in ("hit", "miss")
    }


def _post(url: str, building_id: object, **fields: str) -> httpx.Response:
    return httpx.post(
        f"{url}/requests",
        json={"building_id": building_id, "title": "Leaking tap", **fields},
        timeout=10,
    )


def _webhook(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    return httpx.post(f"{url}/webhooks/building-changed", content=body, headers=headers)


def test_create_request_answers_201_with_the_building_denormalized(
    service_url: str, fresh_ids: _Ids
) -> None:
    """A request naming an active building comes back with its fields merged in."""
    building_id = fresh_ids.take()
    building = next(b for b in simulator.dataset() if b["id"] == building_id)

    response = _post(service_url, building_id, description="kitchen")

    assert response.status_code == 201
    body = response.json()
    assert uuid.UUID(body["id"])
    assert body["title"] == "Leaking tap"
    assert body["description"] == "kitchen"
    assert body["building_id"] == building_id
    assert body["building_name"] == building["name"]
    assert body["building_coordinates"] == building["location"]["coordinates"]


def test_second_request_for_the_same_building_is_a_cache_hit(
    service_url: str, fresh_ids: _Ids
) -> None:
    """The first request misses and fills the cache; the second one hits it."""
    building_id = fresh_ids.take()
    before = cache_ops(service_url)

    first = _post(service_url, building_id)
    middle = cache_ops(service_url)
    second = _post(service_url, building_id)
    after = cache_ops(service_url)

    assert (first.status_code, second.status_code) == (201, 201)
    assert middle["miss"] - before["miss"] == 1
    assert middle["hit"] - before["hit"] == 0
    assert after["hit"] - middle["hit"] == 1
    assert after["miss"] - middle["miss"] == 0


@pytest.mark.parametrize(
    ("building_id", "status", "code"),
    [
        pytest.param(str(uuid.UUID(int=7)), 404, "building_not_found", id="unknown"),
        pytest.param(
            simulator.inactive_ids()[0], 422, "building_inactive", id="inactive"
        ),
        pytest.param("12345", 400, "invalid_building_id", id="not-a-uuid"),
    ],
)
def test_invalid_building_is_refused_with_a_clear_error(
    service_url: str, building_id: str, status: int, code: str
) -> None:
    """Unknown, inactive and malformed ids answer 404, 422 and 400, saying why."""
    response = _post(service_url, building_id)

    assert response.status_code == status
    body = response.json()
    assert body["error"] == code
    assert building_id in body["detail"] or code == "invalid_building_id"
    assert body["detail"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"[1, 2]", id="not-an-object"),
        pytest.param(b'{"title": "no building"}', id="no-building-id"),
        pytest.param(b'{"building_id": 42}', id="id-not-a-string"),
        pytest.param(
            json.dumps({"building_id": _ACTIVE[-1], "title": 5}).encode(),
            id="title-not-a-string",
        ),
        pytest.param(
            b'{"building_id": "%s", "title": "x", "cost": NaN}' % _ACTIVE[-1].encode(),
            id="nan",
        ),
        pytest.param(
            b'{"building_id": "%s", "x": %s%s}'
            % (_ACTIVE[-1].encode(), b"[" * 20_000, b"]" * 20_000),
            id="nested-too-deep",
        ),
        pytest.param(
            json.dumps({"building_id": _ACTIVE[-1], "id": "chosen"}).encode(),
            id="id-chosen-by-the-caller",
        ),
    ],
)
def test_malformed_body_answers_400(service_url: str, content: bytes) -> None:
    """A body that is not a valid request answers 400 invalid_body."""
    response = httpx.post(f"{service_url}/requests", content=content)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body"


def test_get_building_answers_the_building_or_404(service_url: str) -> None:
    """GET /buildings/{id} answers the building, or 404 for an unknown id."""
    building = simulator.dataset()[0]

    found = httpx.get(f"{service_url}/buildings/{building['id']}")
    missing = httpx.get(f"{service_url}/buildings/{uuid.UUID(int=9)}")

    assert found.status_code == 200
    assert found.json() == building
    assert missing.status_code == 404
    assert missing.json()["error"] == "building_not_found"


def test_upstream_failure_answers_503_with_retry_after(
    service_url: str, fresh_ids: _Ids, faults: httpx.Client
) -> None:
    """When the Building Directory fails, a request answers 503 and Retry-After."""
    faults.put("/_faults", json={"error_rate": 1.0}).raise_for_status()

    response = _post(service_url, fresh_ids.take())

    assert response.status_code == 503
    assert response.json()["error"] == "upstream_unavailable"
    assert response.headers["Retry-After"].isdigit()


def test_metrics_are_served_in_the_prometheus_text_format(service_url: str) -> None:
    """/metrics answers text/plain version 0.0.4 with the client's metrics."""
    response = httpx.get(f"{service_url}/metrics")

    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "building_directory_requests",
        "building_directory_request_duration_seconds",
        "building_cache_operations",
        "building_directory_active_connections",
        "building_validations",
        "coordinate_extractions",
        "building_directory_errors",
        "building_denormalization",
    } <= names


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="missing"),
        pytest.param("sha256=" + "0" * 64, id="wrong-digest"),
        pytest.param("__KEY__other-secret", id="wrong-secret"),
        pytest.param("__TAMPERED__", id="signed-another-body"),
    ],
)
def test_webhook_with_a_bad_signature_is_refused_and_drops_nothing(
    service_url: str, fresh_ids: _Ids, webhook_secret: str, signature: str | None
) -> None:
    """A webhook without a valid signature answers 401; the entry stays cached."""
    building_id = fresh_ids.take()
    body = json.dumps({"building_id": building_id}).encode()
    if signature == "__KEY__other-secret":
        signature = sign(body, "other-secret")
    elif signature == "__TAMPERED__":
        signature = sign(
            json.dumps({"building_id": _ACTIVE[0]}).encode(), webhook_secret
        )
    _post(service_url, building_id)
    before = cache_ops(service_url)

    response = _webhook(service_url, body, signature)
    _post(service_url, building_id)
    after = cache_ops(service_url)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert after["hit"] - before["hit"] == 1


@pytest.mark.parametrize("spelling", [str, str.upper], ids=["lower", "upper"])
def test_webhook_with_a_good_signature_drops_the_entry(
    service_url: str,
    fresh_ids: _Ids,
    webhook_secret: str,
    spelling: Callable[[str], str],
) -> None:
    """A signed webhook answers 204 and the next request misses and refetches.

    ``SHA256=<HEX>`` is the same signature as ``sha256=<hex>``.
    """
    building_id = fresh_ids.take()
    body = json.dumps({"building_id": building_id}).encode()
    _post(service_url, building_id)
    before = cache_ops(service_url)

    response = _webhook(service_url, body, spelling(sign(body, webhook_secret)))
    _post(service_url, building_id)
    after = cache_ops(service_url)

    assert response.status_code == 204
    assert after["miss"] - before["miss"] == 1
    assert after["hit"] - before["hit"] == 0


def test_oversized_webhook_body_is_refused(
    service_url: str, webhook_secret: str
) -> None:
    """A webhook body over the size limit answers 413 before any checking."""
    body = b'{"building_id": "' + b"x" * 10_000 + b'"}'

    response = _webhook(service_url, body, sign(body, webhook_secret))

    assert response.status_code == 413


def test_webhook_is_off_without_a_secret(
    start_service: StartService, redis_server: RedisServer
) -> None:
    """Without WEBHOOK_SECRET the webhook answers 503 even to a signed body."""
    body = json.dumps({"building_id": _ACTIVE[0]}).encode()

    with start_service(redis_server.url, WEBHOOK_SECRET="") as url:
        response = _webhook(url, body, sign(body, ""))

    assert response.status_code == 503
    assert response.json()["error"] == "webhook_disabled"


def _wait_for_health(url: str, status: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{url}/healthz", timeout=5).json()
        if body["status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_healthz_turns_degraded_without_redis_and_ok_when_it_returns(
    start_service: StartService, own_redis: RedisServer
) -> None:
    """/healthz says degraded (still 200) with Redis down, and ok once it is back."""
    with start_service(own_redis.url) as url:
        healthy = _wait_for_health(url, "ok")

        own_redis.kill()
        served = _post(url, _ACTIVE[1])
        degraded = _wait_for_health(url, "degraded")
        probe = httpx.get(f"{url}/healthz")
        with RedisServer(own_redis.workdir, port=own_redis.port):
            recovered = _wait_for_health(url, "ok")

    assert healthy["status"] == "ok"
    assert served.status_code == 201
    assert (degraded["status"], degraded["redis"]) == ("degraded", "down")
    assert degraded["reasons"]
    assert probe.status_code == 200
    assert (recovered["status"], recovered["redis"]) == ("ok", "ok")


def test_two_workers_report_the_counts_of_the_whole_service(
    start_service: StartService, tmp_path: Path, redis_server: RedisServer
) -> None:
    """With two workers, every scrape reports all N requests, whichever answers."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left over from an earlier run")
    args = ["--workers", "2", "--metrics-dir", str(metrics_dir)]
    requests = 40

    with start_service(redis_server.url, *args) as url:
        workers = set()
        for _ in range(100):
            with httpx.Client() as fresh:  # a new connection may reach either worker
                workers.add(fresh.get(f"{url}/healthz").json()["worker"])
            if len(workers) == 2:
                break
        statuses = set()
        for n in range(requests):
            with httpx.Client() as fresh:
                response = fresh.post(
                    f"{url}/requests",
                    json={"building_id": _ACTIVE[n % 5], "title": "t"},
                )
                statuses.add(response.status_code)
        counts = []
        for _ in range(6):
            with httpx.Client() as fresh:
                text = fresh.get(f"{url}/metrics").text
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            counts.append(
                (
                    value(samples, "building_validations_total", result="valid"),
                    value(samples, "building_cache_operations_total", operation="hit")
                    + value(
                        samples, "building_cache_operations_total", operation="miss"
                    ),
                    value(samples, "building_directory_active_connections"),
                )
            )

    assert len(workers) == 2
    assert statuses == {201}
    assert set(counts) == {(requests, requests, 0)}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no-such-thing", 404, "not_found"),
        ("GET", "/requests", 405, "method_not_allowed"),
    ],
)
def test_unknown_paths_and_methods_answer_in_the_json_error_shape(
    service_url: str, method: str, path: str, status: int, code: str
) -> None:
    """Every error the service gives is JSON with a code and a detail."""
    response = httpx.request(method, f"{service_url}{path}")

    assert response.status_code == status
    assert response.json()["error"] == code
    assert path in response.json()["detail"]
