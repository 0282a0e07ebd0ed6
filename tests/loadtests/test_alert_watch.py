"""Tests of the alert timeline recorder against a real Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests._alert_watch import AlertWatch
from loadtests.servers import PrometheusServer, wait_until

_RULES = """\
groups:
  - name: watch-test
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(0.14138731436138863) > 0
        labels:
          severity: warning
      - alert: LongPending
        expr: vector(1) > 0
        for: 1h
        labels:
          severity: critical
"""


def test_watch_records_pending_and_firing_alerts(tmp_path: Path) -> None:
    """An alert without `for` is recorded firing; one with a long `for` pending."""
    server = PrometheusServer(tmp_path / "prometheus", evaluation_interval="1s")
    server.rules_dir.mkdir(parents=True)
    (server.rules_dir / "watch.yml").write_text(_RULES)

    with server:
        watch = AlertWatch(server.url, interval=0.2).start()
        wait_until(
            lambda: (
                "firing" in watch.states_seen("AlwaysFiring")
                and "pending" in watch.states_seen("LongPending")
            ),
            timeout=15,
            what="both alerts",
        )
        watch.stop()

    events = json.loads(watch.to_json())["events"]
    assert {(e["alert"], e["state"], e["severity"]) for e in events} >= {
        ("AlwaysFiring", "firing", "warning"),
        ("LongPending", "pending", "critical"),
    }
    assert "firing" not in watch.states_seen("LongPending")
    # Prometheus writes the value as 1.4138731436138863e-01; people read this:
    assert "| AlwaysFiring | firing | warning | 0.1414 |" in watch.to_markdown()


def test_watch_counts_polls_that_fail_without_raising(tmp_path: Path) -> None:
    """A Prometheus that is gone makes a poll count an error, not crash the watch."""
    server = PrometheusServer(tmp_path / "prometheus")
    with server:
        url = server.url
    watch = AlertWatch(url)

    watch.poll()

    assert watch.errors == 1
    assert watch.events == []
