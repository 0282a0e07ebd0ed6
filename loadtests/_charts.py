"""Small, dependency-free SVG line charts for the demo report.

A chart is a pure function of its series: the same points give the same SVG
text, so reports can be compared run to run. Horizontal reference lines mark
targets and alert thresholds.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

_WIDTH = 720
_HEIGHT = 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 36
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


@dataclass(frozen=True, slots=True)
class Line:
    """A series of (seconds since start, value) points; NaN values leave gaps."""

    label: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Reference:
    """A horizontal line, e.g. a target or an alert threshold."""

    label: str
    value: float
    colour: str = "#ff7f0e"


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded time span, e.g. a fault phase."""

    label: str
    start: float
    end: float


def _fmt(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value * 100:.0f} %"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
    return f"{value:.3g}"


def line_chart(
    title: str,
    lines: Sequence[Line],
    *,
    unit: str,
    references: Sequence[Reference] = (),
    bands: Sequence[Band] = (),
) -> str:
    """Render an SVG line chart.

    Args:
        title: Shown above the plot.
        lines: The series to draw.
        unit: ``ratio``, ``seconds`` or anything else for plain numbers; used
            for axis labels.
        references: Horizontal lines with labels.
        bands: Shaded spans of time with labels.
    """
    xs = [x for line in lines for x, _ in line.points]
    ys = [y for line in lines for _, y in line.points if math.isfinite(y)]
    ys += [reference.value for reference in references]
    x_max = max(xs, default=1.0) or 1.0
    y_max = max(ys, default=1.0)
    y_max = 1.0 if unit == "ratio" else _nice_ceiling(y_max * 1.05)
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + plot_w * x / x_max

    def sy(y: float) -> float:
        return _TOP + plot_h * (1 - min(y, y_max) / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" '
        f'height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">'
        f"{html.escape(title)}</text>",
    ]
    for band in bands:
        parts.append(
            f'<rect x="{sx(band.start):.1f}" y="{_TOP}" '
            f'width="{max(sx(band.end) - sx(band.start), 1):.1f}" height="{plot_h}" '
            f'fill="#eeeeee"><title>{html.escape(band.label)}</title></rect>'
            f'<text x="{sx(band.start) + 3:.1f}" y="{_TOP + 12}" fill="#777">'
            f"{html.escape(band.label)}</text>"
        )
    for tick in range(5):
        value = y_max * tick / 4
        y = sy(value)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#dddddd"/><text x="{_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{_fmt(value, unit)}</text>'
        )
    for tick in range(6):
        x = x_max * tick / 5
        parts.append(
            f'<text x="{sx(x):.1f}" y="{_HEIGHT - _BOTTOM + 16}" '
            f'text-anchor="middle">{x:.0f} s</text>'
        )
    for reference in references:
        y = sy(reference.value)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{reference.colour}" stroke-dasharray="6 4"/>'
            f'<text x="{_WIDTH - _RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end" '
            f'fill="{reference.colour}">{html.escape(reference.label)}</text>'
        )
    for index, line in enumerate(lines):
        colour = _PALETTE[index % len(_PALETTE)]
        for segment in _segments(line.points):
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in segment)
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" '
                f'points="{path}"/>'
            )
        parts.append(
            f'<text x="{_LEFT + 8 + 150 * index}" y="{_HEIGHT - 6}" '
            f'fill="{colour}">{html.escape(line.label)}</text>'
        )
    parts.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#999999"/></svg>'
    )
    return "\n".join(parts)


def _nice_ceiling(value: float) -> float:
    """Round up to 1, 2, 2.5 or 5 times a power of ten, for even axis ticks."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power:
            return step * power
    return 10 * power


def _segments(
    points: Sequence[tuple[float, float]],
) -> list[list[tuple[float, float]]]:
    """Split a series at NaN values, so gaps in the data stay gaps."""
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if math.isfinite(y):
            segments[-1].append((x, y))
        elif segments[-1]:
            segments.append([])
    return [segment for segment in segments if segment]
