"""The generated rules in a real Prometheus scraping the client's real metrics."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server

from alerts import AlertOverride, RuleConfig, alert_names, load_rules, render_rules
from instrumentation.metrics import BuildingDirectoryMetrics
from loadtests.servers import LOOPBACK, PrometheusServer, wait_until

#: Short enough to fire within seconds on a 1 s scrape: a 10 s window, 1 s for:.
_FAST = RuleConfig(
    window="10s",
    min_events=5,
    alerts={
        name: AlertOverride(for_="1s")
        for name in alert_names()
        if not name.startswith("BuildingDirectoryErrorBudget")
    },
)


def _fail_half_and_miss_everything(
    metrics: BuildingDirectoryMetrics, stop: threading.Event
) -> None:
    """Half the lookups fail and no lookup hits the cache."""
    while not stop.wait(0.05):
        metrics.requests["get_building", "success"].inc()
        metrics.requests["get_building", "error"].inc()
        metrics.duration["get_building"].observe(0.02)
        metrics.duration["get_building"].observe(0.02)
        metrics.cache["miss"].inc(2)
        metrics.validations["valid"].inc(2)


@pytest.fixture
def failing_service(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A Prometheus scraping a live registry every second, while lookups fail."""
    registry = CollectorRegistry()
    metrics = BuildingDirectoryMetrics(registry)
    server, _ = start_http_server(0, addr=LOOPBACK, registry=registry)
    stop = threading.Event()
    traffic = threading.Thread(
        target=_fail_half_and_miss_everything, args=(metrics, stop), daemon=True
    )
    traffic.start()
    prometheus = PrometheusServer(
        tmp_path / "prometheus",
        scrape_targets=[f"{LOOPBACK}:{server.server_port}"],
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    try:
        prometheus.start()
        yield prometheus
    finally:
        prometheus.stop()
        stop.set()
        traffic.join(5)
        server.shutdown()
        server.server_close()


def _firing(url: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/alerts", timeout=5)
    return {
        alert["labels"]["alertname"]: alert
        for alert in response.json()["data"]["alerts"]
        if alert["state"] == "firing"
    }


@pytest.mark.slow
def test_error_and_hit_rate_alerts_fire_with_rendered_annotations(
    failing_service: PrometheusServer,
) -> None:
    """Half the lookups failing and every lookup missing fire both alerts.

    The hit rate is a true 0 %, which must alert rather than vanish; the
    healthy validation rate, the scraped target and the present metrics must
    not. Takes about ten seconds: Prometheus's first scrape, then enough
    samples for a 10 s rate.
    """
    url = failing_service.url
    load_rules(url, failing_service.rules_dir, render_rules(_FAST))

    wait_until(
        lambda: (
            {"BuildingDirectoryErrorRateHigh", "BuildingCacheHitRateLow"}
            <= set(_firing(url))
        ),
        timeout=25,
        what="the error-rate and hit-rate alerts",
        interval=0.5,
    )

    firing = _firing(url)
    errors = firing["BuildingDirectoryErrorRateHigh"]
    assert errors["labels"] == {
        "alertname": "BuildingDirectoryErrorRateHigh",
        "job": "building-directory",
        "severity": "critical",
    }
    shown = re.match(
        r"Lookup error rate is ([0-9.]+)% over the last 10s for job "
        r"building-directory\. Alert threshold: > 5 % for 1s",
        errors["annotations"]["description"],
    )
    assert shown is not None, errors["annotations"]["description"]
    # A scrape may land between the two increments: about half, not exactly.
    assert 45 <= float(shown.group(1)) <= 55
    assert (
        "is 0% over the last 10s"
        in (firing["BuildingCacheHitRateLow"]["annotations"]["description"])
    )
    assert not {
        "BuildingValidationFailuresHigh",
        "BuildingDirectoryTargetDown",
        "BuildingDirectoryMetricsAbsent",
    } & set(firing)
