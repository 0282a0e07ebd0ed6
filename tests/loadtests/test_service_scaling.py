"""The service scaled out: processes share invalidations, workers sum metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtests import simulator
from loadtests.servers import RedisServer
from loadtests.service import sign

StartService = Callable[..., AbstractContextManager[str]]

#: Generous: an announcement crosses a loopback Redis in milliseconds.
DELIVERY_BOUND = 2.0
#: Buildings every request can be created for (201), in data set order.
ACTIVE = [
    i for i in simulator.ids_by_shape()["nested"] if i not in simulator.inactive_ids()
]


def metric_sum(url: str, name: str, **labels: str) -> float:
    """Return the sum of ``name``'s samples at ``url/metrics`` matching ``labels``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
        and all(sample.labels.get(key) == want for key, want in labels.items())
    )


def near_hits(url: str) -> float:
    """Return how many lookups the service's near cache answered."""
    return metric_sum(url, "building_cache_level_hits_total", level="near")


def test_webhook_on_one_process_drops_the_near_copy_in_another(
    start_service: StartService, any_redis_url: str, webhook_secret: str
) -> None:
    """After the webhook reaches A, B's next lookups stop coming from its near cache."""
    building_id = ACTIVE[0]
    shared = {
        "MANAGEMENT_COMPANY_ID": str(uuid.uuid4()),
        "CACHE_NEAR_SIZE": "100",
        "CACHE_NEAR_TTL": "60",
    }
    body = json.dumps({"building_id": building_id}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Signature": sign(body, webhook_secret),
    }

    with (
        start_service(any_redis_url, **shared) as a,
        start_service(any_redis_url, **shared) as b,
    ):
        for url in (a, b, b):
            httpx.get(f"{url}/buildings/{building_id}").raise_for_status()
        warm_near_hits = near_hits(b)
        misses_before = metric_sum(
            b, "building_cache_operations_total", operation="miss"
        )
        webhook = httpx.post(
            f"{a}/webhooks/building-changed", content=body, headers=headers
        )
        started = time.perf_counter()
        while time.perf_counter() - started < DELIVERY_BOUND:
            before = near_hits(b)
            httpx.get(f"{b}/buildings/{building_id}").raise_for_status()
            if near_hits(b) == before:
                break
            time.sleep(0.01)
        delay = time.perf_counter() - started
        misses_after = metric_sum(
            b, "building_cache_operations_total", operation="miss"
        )

    assert warm_near_hits == 1
    assert webhook.status_code == 204
    assert delay < DELIVERY_BOUND
    assert misses_after == misses_before + 1


@pytest.mark.slow
def test_two_workers_count_every_request_of_a_concurrent_load_once(
    start_service: StartService, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Under load from another process, the summed counts match what was sent."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ACTIVE[:200]) + "\n")
    args = ["--workers", "2", "--metrics-dir", str(tmp_path / "metrics")]

    with start_service(redis_server.url, *args) as url:
        load = subprocess.run(
            [sys.executable, "-m", "loadtests._loadgen", "--url", url,
             "--ids-file", str(ids_file), "--concurrency", "8", "--duration", "3",
             "--max-requests", "20000"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        figures = json.loads(load.stdout)
        counted = metric_sum(
            url, "building_directory_requests_total", operation="get_building"
        )
        validations = metric_sum(url, "building_validations_total")
        in_flight = metric_sum(url, "building_directory_active_connections")

    assert figures["requests"] > 100
    assert figures["failures"] == 0
    assert counted == figures["requests"]
    assert validations == figures["requests"]
    assert in_flight == 0
