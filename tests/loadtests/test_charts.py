"""Tests of the demo report's SVG charts."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from loadtests._charts import Band, Line, Reference, line_chart

_SVG = "{http://www.w3.org/2000/svg}"


def test_chart_is_well_formed_svg_with_lines_references_and_bands() -> None:
    """A chart parses as SVG and draws its line, target line and fault band."""
    chart = line_chart(
        "Hit rate",
        [Line("hit rate", [(0, 0.5), (10, 0.8), (20, 0.9)])],
        unit="ratio",
        references=[Reference("target 70 %", 0.7)],
        bands=[Band("Redis stopped", 5, 12)],
    )

    root = ET.fromstring(chart)

    assert root.tag == f"{_SVG}svg"
    assert len(root.findall(f"{_SVG}polyline")) == 1
    texts = [element.text for element in root.iter(f"{_SVG}text")]
    assert "target 70 %" in texts
    assert "Redis stopped" in texts


def test_nan_values_split_a_line_into_segments() -> None:
    """Missing data (NaN) leaves a gap instead of a line drawn across it."""
    points = [(0, 0.1), (1, 0.2), (2, math.nan), (3, 0.3), (4, 0.4)]

    root = ET.fromstring(line_chart("p95", [Line("p95", points)], unit="seconds"))

    assert len(root.findall(f"{_SVG}polyline")) == 2


def test_same_series_render_the_same_text() -> None:
    """Charts are deterministic, so reports compare run to run."""
    series = [Line("rate", [(0, 1.0), (5, 2.0)])]

    assert line_chart("r", series, unit="") == line_chart("r", series, unit="")
