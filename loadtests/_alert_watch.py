"""Record when Prometheus alerts go pending, fire and resolve.

A background thread polls ``/api/v1/alerts`` of a Prometheus the project
started and keeps one event per state change, so a demo or a load test can say
which alerts reacted to a fault, and how quickly.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One state change of one alert.

    Attributes:
        at: Seconds since the watch started.
        alert: The alert name.
        state: ``pending``, ``firing`` or ``resolved``.
        severity: The alert's ``severity`` label, if any.
        value: The alert's value when the change was seen, as Prometheus wrote it.
    """

    at: float
    alert: str
    state: str
    severity: str
    value: str


class AlertWatch:
    """Poll a Prometheus for alert state changes until stopped.

    Args:
        prometheus_url: Base URL of a Prometheus on loopback.
        interval: Seconds between polls.
    """

    def __init__(self, prometheus_url: str, *, interval: float = 1.0) -> None:
        self.prometheus_url = prometheus_url.rstrip("/")
        self.interval = interval
        self.events: list[AlertEvent] = []
        self.errors = 0
        self._states: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._lock = threading.Lock()

    def start(self) -> AlertWatch:
        """Start polling in a daemon thread."""
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name="alert-watch", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling, after one last poll."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.poll()

    def elapsed(self) -> float:
        """Seconds since the watch started."""
        return time.monotonic() - self._started

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """Read the alerts once and record every state change since last time."""
        try:
            url = f"{self.prometheus_url}/api/v1/alerts"
            with urllib.request.urlopen(url, timeout=5) as response:
                alerts = json.load(response)["data"]["alerts"]
        except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
            self.errors += 1
            logger.debug("alert poll failed: %s", error)
            return
        now = round(self.elapsed(), 1)
        seen: dict[str, tuple[str, str, str]] = {}
        for alert in alerts:
            name = alert["labels"].get("alertname", "?")
            state = alert.get("state", "?")
            # One alert name can have several series; firing wins over pending.
            if name in seen and seen[name][0] == "firing":
                continue
            seen[name] = (
                state,
                alert["labels"].get("severity", ""),
                str(alert.get("value", "")),
            )
        with self._lock:
            for name, (state, severity, value) in sorted(seen.items()):
                if self._states.get(name) != state:
                    self._states[name] = state
                    self.events.append(AlertEvent(now, name, state, severity, value))
            for name in sorted(set(self._states) - set(seen)):
                if self._states[name] != "resolved":
                    self._states[name] = "resolved"
                    self.events.append(AlertEvent(now, name, "resolved", "", ""))

    def states_seen(self, alert: str) -> set[str]:
        """Return every state this alert was seen in."""
        with self._lock:
            return {event.state for event in self.events if event.alert == alert}

    def to_json(self) -> str:
        """The events as deterministic JSON."""
        with self._lock:
            events = [asdict(event) for event in self.events]
        return json.dumps({"events": events}, indent=2, sort_keys=True) + "\n"

    def to_markdown(self) -> str:
        """The events as a Markdown table."""
        lines = [
            "| at (s) | alert | state | severity | value |",
            "| ---: | --- | --- | --- | --- |",
        ]
        with self._lock:
            for event in self.events:
                lines.append(
                    f"| {event.at:.1f} | {event.alert} | {event.state} | "
                    f"{event.severity} | {_readable(event.value)} |"
                )
        return "\n".join(lines) + "\n"


def _readable(value: str) -> str:
    """Prometheus's ``1.4138731436138863e-01`` as ``0.1414``; text as it is."""
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value
