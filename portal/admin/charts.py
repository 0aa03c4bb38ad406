"""Charts as server-rendered SVG: no JavaScript, no CDN, readable with the page's own stylesheet.

Each chart is drawn from plain (label, value) pairs; values are numbers already in
the unit shown (minor units, or a fraction for rates), ``fmt`` turns one into its label.
"""
from __future__ import annotations

from typing import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 600, 200
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 10, 30


def _frame(title: str, body: str) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
                  f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>')


def _axes(top_label: str, first: str, last: str) -> str:
    bottom = HEIGHT - BOTTOM
    return (f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>'
            f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>'
            f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{escape(top_label)}</text>'
            f'<text x="{LEFT - 6}" y="{bottom}" text-anchor="end">0</text>'
            f'<text x="{LEFT}" y="{HEIGHT - 8}">{escape(first)}</text>'
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{escape(last)}</text>')


def line_chart(title: str, points: Sequence[tuple[str, float]], fmt: Callable[[float], str]) -> Markup:
    """A line over time; one point per label, oldest first. No points: an empty frame saying so."""
    if not points:
        return _frame(title, f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">—</text>')
    top = max(value for _label, value in points) or 1
    span_x = WIDTH - LEFT - RIGHT
    span_y = HEIGHT - TOP - BOTTOM
    step = span_x / max(len(points) - 1, 1)
    coords = [(LEFT + index * step, TOP + span_y * (1 - value / top)) for index, (_label, value) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" class="bar"><title>{escape(label)}: '
                   f'{escape(fmt(value))}</title></circle>' for (x, y), (label, value) in zip(coords, points))
    return _frame(title, _axes(fmt(top), points[0][0], points[-1][0])
                  + f'<polyline class="line" points="{path}"/>' + dots)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], fmt: Callable[[float], str]) -> Markup:
    """Horizontal bars, one per label, with its value written at its end."""
    if not bars:
        return _frame(title, f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">—</text>')
    top = max(value for _label, value in bars) or 1
    row = (HEIGHT - TOP - BOTTOM) / len(bars)
    body = []
    for index, (label, value) in enumerate(bars):
        y = TOP + index * row
        width = (WIDTH - LEFT - RIGHT - 90) * value / top
        body.append(f'<text x="{LEFT - 6}" y="{y + row / 2 + 4:.1f}" text-anchor="end">{escape(label)}</text>'
                    f'<rect class="bar" x="{LEFT}" y="{y + row * 0.15:.1f}" width="{width:.1f}" '
                    f'height="{row * 0.7:.1f}"/>'
                    f'<text x="{LEFT + width + 6:.1f}" y="{y + row / 2 + 4:.1f}">{escape(fmt(value))}</text>')
    return _frame(title, "".join(body))
