"""The demo's ``report.html``: verdicts, alert timeline and charts in one page.

Charts come from Prometheus range queries over the whole demo, built from the
indicator catalogue (the same PromQL the dashboards and rules use), with the
targets and alert thresholds drawn as reference lines and the phases of the
demo shaded.
"""

from __future__ import annotations

import html
import json
import math
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from instrumentation.indicators import (
    CACHE_HIT_RATE,
    ERROR_RATE,
    LATENCY_P95,
    Indicator,
)
from loadtests._alert_watch import AlertEvent
from loadtests._charts import Band, Line, Reference, line_chart
from loadtests.stack import JOB_NAME
from loadtests.verdict import Verdict

#: Rate window of the charts: several scrapes (2 s) wide, short enough to
#: show a fault within seconds.
_WINDOW: Final = "30s"
_STEP: Final = 5.0
_SELECTOR: Final = f'job="{JOB_NAME}"'


@dataclass(frozen=True, slots=True)
class Phase:
    """A span of the demo, in seconds since the alert watch started."""

    label: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart's title, SVG and the query behind it."""

    title: str
    svg: str
    query: str


def range_query(
    prometheus_url: str, query: str, *, start: float, end: float, step: float
) -> list[tuple[float, float]]:
    """Run a range query; return (seconds since ``start``, value) points.

    Several series are summed point by point; missing points are NaN.
    """
    params = urllib.parse.urlencode(
        {"query": query, "start": start, "end": end, "step": step}
    )
    url = f"{prometheus_url.rstrip('/')}/api/v1/query_range?{params}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    points: dict[float, float] = {}
    for series in body["data"]["result"]:
        for timestamp, value in series["values"]:
            at = round(float(timestamp) - start, 1)
            number = float(value)
            if math.isfinite(number):
                points[at] = points.get(at, 0.0) + number
    count = int((end - start) // step) + 1
    grid = [round(n * step, 1) for n in range(count)]
    return [(at, points.get(at, math.nan)) for at in grid]


def _references(indicator: Indicator) -> list[Reference]:
    references = []
    if indicator.target is not None:
        references.append(
            Reference(
                f"target {indicator.target.describe(indicator.unit)}",
                indicator.target.value,
                "#2ca02c",
            )
        )
    if indicator.alert is not None:
        references.append(
            Reference(
                f"alert {indicator.alert.threshold.describe(indicator.unit)}",
                indicator.alert.threshold.value,
                "#d62728",
            )
        )
    return references


def fetch_charts(
    prometheus_url: str,
    *,
    start: float,
    end: float,
    phases: Sequence[Phase],
    asked_rate: float,
) -> list[Chart]:
    """Query Prometheus over the demo and draw the four charts."""
    bands = [Band(p.label, p.start, p.end) for p in phases if p.end > p.start]
    charts = []
    for indicator in (CACHE_HIT_RATE, LATENCY_P95, ERROR_RATE):
        query = indicator.promql(_SELECTOR, _WINDOW)
        points = range_query(prometheus_url, query, start=start, end=end, step=_STEP)
        svg = line_chart(
            indicator.title,
            [Line(indicator.title, points)],
            unit=indicator.unit,
            references=_references(indicator),
            bands=bands,
        )
        charts.append(Chart(indicator.title, svg, query))
    query = f"60 * {ERROR_RATE.traffic_promql(_SELECTOR, _WINDOW)}"
    points = range_query(prometheus_url, query, start=start, end=end, step=_STEP)
    svg = line_chart(
        "Request rate (lookups per minute)",
        [Line("lookups / min", points)],
        unit="",
        references=[Reference(f"baseline {asked_rate:g} / min", asked_rate)],
        bands=bands,
    )
    charts.insert(2, Chart("Request rate", svg, query))
    return charts


def _verdict_table(verdict: Verdict) -> str:
    rows = "".join(
        f"<tr class='{html.escape(check.status)}'><td>{html.escape(check.title)}</td>"
        f"<td>{html.escape(check.shown())}</td><td>{html.escape(check.target)}</td>"
        f"<td>{html.escape(check.status)}</td><td>{html.escape(check.detail)}</td></tr>"
        for check in verdict.checks
    )
    return (
        "<table><tr><th>check</th><th>value</th><th>target</th><th>result</th>"
        f"<th>why</th></tr>{rows}</table>"
    )


def write_html(
    path: Path,
    *,
    baseline: Verdict,
    faults: Verdict,
    charts: Sequence[Chart],
    timeline: Sequence[AlertEvent],
    summary: Mapping[str, Any],
) -> None:
    """Write the self-contained report page."""
    events = "".join(
        f"<tr><td>{event.at:.1f}</td><td>{html.escape(event.alert)}</td>"
        f"<td>{html.escape(event.state)}</td><td>{html.escape(event.severity)}</td>"
        "</tr>"
        for event in timeline
    )
    figures = "".join(
        f"<figure>{chart.svg}<figcaption><code>{html.escape(chart.query)}</code>"
        "</figcaption></figure>"
        for chart in charts
    )
    workload = html.escape(
        json.dumps(dict(baseline.workload), indent=2, sort_keys=True)
    )
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in baseline.notes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Building Directory bundle: demo report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 60em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
tr.pass td:nth-child(4) {{ color: #2ca02c; }}
tr.fail td:nth-child(4) {{ color: #d62728; font-weight: bold; }}
tr.inconclusive td:nth-child(4) {{ color: #ff7f0e; }}
figcaption code {{ font-size: 0.75em; white-space: pre-wrap; }}
</style></head><body>
<h1>Demo report</h1>
<p>Result: <strong>{"passed" if summary["exit_code"] == 0 else "FAILED"}</strong>
(baseline {html.escape(baseline.status)}, fault phase {html.escape(faults.status)}).
Raw data: <a href="verdict.json">verdict.json</a>,
<a href="locust.html">Locust report</a>, <a href="metrics.prom">metrics.prom</a>,
<a href="alerts-timeline.json">alert timeline</a>,
<a href="demo.json">demo.json</a>.</p>
<h2>Baseline</h2>
{_verdict_table(baseline)}
<ul>{notes}</ul>
<details><summary>Workload</summary><pre>{workload}</pre></details>
<h2>Fault phase</h2>
<p>{html.escape(str(faults.scenario.get("description", "")))}</p>
{_verdict_table(faults)}
<h3>Alerts</h3>
<p>Expected to fire: {html.escape(json.dumps(summary["alerts_fired"]))}</p>
<table><tr><th>at (s)</th><th>alert</th><th>state</th><th>severity</th></tr>
{events}</table>
<h2>Over time</h2>
<p>From Prometheus range queries (the catalogue's PromQL over a {_WINDOW}
window); green lines are targets, red lines alert thresholds; shaded spans are
the demo's phases.</p>
{figures}
</body></html>
"""
    path.write_text(page)
