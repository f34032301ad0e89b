"""Small charts as inline SVG strings: no JavaScript library, no CDN, readable offline.

Each function takes plain numbers and returns one ``<figure>`` with its
title, the SVG and a text fallback in ``<title>`` elements (hover tooltips).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

BAR_HEIGHT = 22
LABEL_WIDTH = 230
PLOT_WIDTH = 420


def _figure(title: str, svg: str, caption: str = "") -> str:
    cap = f'<figcaption>{escape(caption)}</figcaption>' if caption else ""
    return f'<figure class="chart"><h3>{escape(title)}</h3>{svg}{cap}</figure>'


def _empty(title: str, why: str) -> str:
    return _figure(title, f'<p class="empty">{escape(why)}</p>')


def bar_chart(title: str, rows: Sequence[tuple[str, float, str]], *, max_value: float | None = None,
              percent: bool = False, caption: str = "") -> str:
    """Horizontal bars, one per ``(label, value, note)``; ``note`` is printed after the value."""
    if not rows:
        return _empty(title, "nothing to show yet")
    top = max_value if max_value is not None else max((v for _, v, _ in rows), default=0.0)
    top = top or 1.0
    width = LABEL_WIDTH + PLOT_WIDTH + 290
    height = BAR_HEIGHT * len(rows) + 8
    parts = [f'<svg class="bars" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'aria-label="{escape(title)}">']
    for i, (label, value, note) in enumerate(rows):
        y = 4 + i * BAR_HEIGHT
        w = max(PLOT_WIDTH * value / top, 1.0 if value else 0.0)
        shown = f"{value:.0%}" if percent else _number(value)
        text = f"{shown} {note}".strip()
        parts.append(
            f'<g><title>{escape(label)}: {escape(text)}</title>'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(_clip(label, 34))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{w:.1f}" height="{BAR_HEIGHT - 6}" rx="2"/>'
            f'<text x="{LABEL_WIDTH + w + 6:.1f}" y="{y + 15}" class="value">{escape(text)}</text></g>')
    parts.append("</svg>")
    return _figure(title, "".join(parts), caption)


def histogram(title: str, values: Sequence[float], *, x_label: str, bins: int = 12, integer: bool = True,
              caption: str = "") -> str:
    """Vertical bars counting ``values`` per bin; integer data gets one bin per value when few."""
    if not values:
        return _empty(title, "nothing to show yet")
    lo, hi = min(values), max(values)
    edges = _edges(lo, hi, bins, integer)
    counts = [0] * (len(edges) - 1)
    for v in values:
        i = min(max(0, _bisect(edges, v)), len(counts) - 1)
        counts[i] += 1
    top = max(counts) or 1
    plot_h, bar_w = 160, max(12, min(48, 560 // len(counts)))
    width, height = max(60 + bar_w * len(counts) + 20, 300), plot_h + 56
    parts = [f'<svg class="hist" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'aria-label="{escape(title)}">',
             f'<text x="6" y="14" class="value">{top}</text><text x="6" y="{plot_h + 10}" class="value">0</text>']
    for i, count in enumerate(counts):
        x = 50 + i * bar_w
        h = plot_h * count / top
        label = _bin_label(edges[i], edges[i + 1], integer)
        parts.append(f'<g><title>{escape(label)}: {count}</title>'
                     f'<rect x="{x + 1}" y="{10 + plot_h - h:.1f}" width="{bar_w - 2}" height="{h:.1f}" rx="1"/>'
                     + (f'<text x="{x + bar_w / 2:.1f}" y="{plot_h + 26}" text-anchor="middle" class="tick">'
                        f'{escape(label)}</text>' if len(counts) <= 16 or i % 2 == 0 else "") + "</g>")
    parts.append(f'<text x="{width / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text></svg>')
    return _figure(title, "".join(parts), caption)


def _edges(lo: float, hi: float, bins: int, integer: bool) -> list[float]:
    if integer and hi - lo + 1 <= bins:
        return [lo + k - 0.5 for k in range(int(hi - lo) + 2)]
    if hi == lo:
        return [lo - 0.5, hi + 0.5]
    step = (hi - lo) / bins
    if integer:
        step = math.ceil(step)
        return [lo - 0.5 + k * step for k in range(math.ceil((hi - lo + 1) / step) + 1)]
    return [lo + k * step for k in range(bins + 1)]


def _bisect(edges: list[float], v: float) -> int:
    for i in range(len(edges) - 1):
        if v < edges[i + 1]:
            return i
    return len(edges) - 2


def _bin_label(a: float, b: float, integer: bool) -> str:
    if integer:
        first, last = math.ceil(a), math.ceil(b) - 1
        return str(first) if first >= last else f"{first}-{last}"
    return f"{a:.3g}-{b:.3g}"


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 100 or float(value).is_integer() else f"{value:.2f}"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


SERIES_COLOURS = ("#4f6bed", "#f79009", "#12b76a", "#9e77ed")


def grouped_bar_chart(title: str, groups: Sequence[tuple[str, Sequence[tuple[float | None, str]]]],
                      series: Sequence[str], *, max_value: float = 1.0, percent: bool = True,
                      caption: str = "", styles: Sequence[str] = ()) -> str:
    """Horizontal bars in groups: one group per ``(label, [(value, note), ...])``, one bar per series
    (in ``series`` order, named in a legend); a None value draws no bar. ``styles`` gives each series
    its fill (``fill:#4f6bed;fill-opacity:0.5``, written as SVG attributes: the report's
    Content-Security-Policy refuses style attributes); by default each series gets its own colour."""
    styles = [_paint(s) for s in styles] or [_paint(f"fill:{_colour(k)}") for k in range(len(series))]
    if not groups:
        return _empty(title, "nothing to show yet")
    bar_h = BAR_HEIGHT - 6
    group_h = bar_h * len(series) + 10
    legend_h = 18 * math.ceil(len(series) / 3) + 4
    width = LABEL_WIDTH + PLOT_WIDTH + 290
    height = legend_h + group_h * len(groups) + 4
    parts = [f'<svg class="bars grouped" role="img" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" aria-label="{escape(title)}">']
    for k, name in enumerate(series):
        x, y = LABEL_WIDTH + (k % 3) * 240, 4 + (k // 3) * 18  # three to a row
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" {styles[k]}/>'
                     f'<text x="{x + 16}" y="{y + 11}">{escape(_clip(name, 36))}</text>')
    for i, (label, values) in enumerate(groups):
        y0 = legend_h + i * group_h
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{y0 + group_h / 2 + 3:.0f}" text-anchor="end">'
                     f'{escape(_clip(label, 34))}</text>')
        for k, (value, note) in enumerate(values):
            y = y0 + 4 + k * bar_h
            shown = "-" if value is None else (f"{value:.0%}" if percent else _number(value))
            w = 0.0 if value is None else max(PLOT_WIDTH * value / (max_value or 1.0), 1.0 if value else 0.0)
            text = f"{shown} {note}".strip()
            parts.append(f'<g><title>{escape(label)}, {escape(series[k])}: {escape(text)}</title>'
                         f'<rect x="{LABEL_WIDTH}" y="{y + 1}" width="{w:.1f}" height="{bar_h - 2}" rx="2" '
                         f'{styles[k]}/>'
                         f'<text x="{LABEL_WIDTH + w + 6:.1f}" y="{y + bar_h - 4}" class="value">{escape(text)}'
                         f'</text></g>')
    parts.append("</svg>")
    return _figure(title, "".join(parts), caption)


def _paint(style: str) -> str:
    """``fill:#4f6bed;fill-opacity:0.5`` as SVG presentation attributes: ``fill="#4f6bed" fill-opacity="0.5"``."""
    pairs = (part.split(":", 1) for part in style.split(";") if ":" in part)
    return " ".join(f'{escape(k.strip())}="{escape(v.strip())}"' for k, v in pairs)


def _colour(index: int) -> str:
    return SERIES_COLOURS[index % len(SERIES_COLOURS)]
