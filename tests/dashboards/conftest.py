"""Fixtures of the dashboards package: rendered JSON and a Prometheus with data."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server

from dashboards import overview, render
from instrumentation.metrics import LATENCY_BUCKETS, BuildingDirectoryMetrics
from loadtests.servers import LOOPBACK, PrometheusServer, wait_until

#: A rule that fires as soon as the client's metrics are scraped, named like
#: one of the catalogue's alerts, so the dashboard's firing-alerts annotation
#: has something to find.
CANARY_RULES = """\
groups:
  - name: canary
    rules:
      - alert: BuildingCacheDegraded
        expr: building_directory_active_connections >= 0
        labels:
          severity: warning
"""


@pytest.fixture
def short_run_variables() -> dict[str, str]:
    """Dashboard variables for a one-second scrape: ten samples per rate window."""
    return {"__rate_interval": "10s", "job": ".+", "instance": ".+"}


@pytest.fixture(scope="session")
def overview_json() -> dict[str, Any]:
    """The overview dashboard as written by the build; copy before changing it."""
    return render(overview())


@pytest.fixture
def overview_copy(overview_json: dict[str, Any]) -> dict[str, Any]:
    """A copy of the overview dashboard that a test may break."""
    return copy.deepcopy(overview_json)


def _record_traffic(metrics: BuildingDirectoryMetrics, stop: threading.Event) -> None:
    """Count traffic of every kind, so every rate and ratio is above zero."""
    metrics.active_connections.inc(2)
    # One observation in every bucket, including above the last bound.
    durations = [bound * 0.9 for bound in LATENCY_BUCKETS] + [LATENCY_BUCKETS[-1] * 2]
    families = (
        metrics.requests,
        metrics.cache,
        metrics.validations,
        metrics.coordinates,
        metrics.errors,
        metrics.denormalization,
        metrics.level_hits,
    )
    while not stop.wait(0.05):
        for family in families:
            for child in family.values():
                child.inc()
        for histogram in metrics.duration.values():
            for duration in durations:
                histogram.observe(duration)


def _scraped_enough(url: str) -> bool:
    query = 'count_over_time(building_directory_requests_total{status="error"}[1m])'
    try:
        samples = httpx.get(f"{url}/api/v1/query", params={"query": query}).json()
        alerts = httpx.get(
            f"{url}/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'}
        ).json()
    except httpx.HTTPError:
        return False
    counts = [float(r["value"][1]) for r in samples["data"]["result"]]
    return bool(counts) and min(counts) >= 2 and bool(alerts["data"]["result"])


@pytest.fixture(scope="session")
def scraped_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping a live registry of the client's metrics.

    The registry is served on a loopback port by prometheus_client and keeps
    counting traffic of every kind; Prometheus scrapes it every second and
    evaluates a canary alert. Yields the Prometheus URL once two scrapes
    have landed and the alert fires: about six seconds, most of them
    Prometheus's own wait (about five seconds) before it scrapes new targets.
    """
    registry = CollectorRegistry()
    metrics = BuildingDirectoryMetrics(registry)
    server, _ = start_http_server(0, addr=LOOPBACK, registry=registry)
    stop = threading.Event()
    traffic = threading.Thread(
        target=_record_traffic, args=(metrics, stop), daemon=True
    )
    traffic.start()
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    (workdir / "rules").mkdir()
    (workdir / "rules" / "canary.yml").write_text(CANARY_RULES)
    prometheus = PrometheusServer(
        workdir,
        scrape_targets=[f"{LOOPBACK}:{server.server_port}"],
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    try:
        prometheus.start()
        wait_until(
            lambda: _scraped_enough(prometheus.url),
            timeout=20,
            what="two scrapes and a firing canary alert",
            interval=0.2,
        )
        yield prometheus.url
    finally:
        prometheus.stop()
        stop.set()
        traffic.join(5)
        server.shutdown()
        server.server_close()
