"""Small inline SVG charts for reports (no chart library, no network)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from maps.safe import esc

IN_RANGE, OUT_OF_RANGE, RESERVE = "#1a9850", "#d73027", "#9e9e9e"


def load_histogram_svg(
    loads: ArrayLike,
    *,
    low: int,
    high: int,
    x_label: str,
    y_label: str,
    band_label: str,
    width: int = 440,
    height: int = 200,
) -> str:
    """A histogram of loads (households per member) with the allowed range shaded.

    Parameters
    ----------
    loads
        One load per member (0 for reserve members).
    low, high
        The allowed range; bars inside it are green, outside red, zero grey.
    x_label, y_label, band_label
        Axis and band captions (escaped here).

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    values = np.asarray(loads, dtype=int)
    top = int(max(values.max(initial=0), high)) + 1
    counts = np.bincount(values, minlength=top)[:top] if values.size else np.zeros(top, int)
    left, bottom, right, top_pad = 40, 34, 8, 14
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    bar_w = plot_w / top
    peak = max(int(counts.max(initial=0)), 1)
    band_x = left + low * bar_w
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(x_label)}" '
        'style="font:11px sans-serif">',
        f'<rect x="{band_x:.1f}" y="{top_pad}" width="{(high - low + 1) * bar_w:.1f}" '
        f'height="{plot_h}" fill="#e5f5e0"><title>{esc(band_label)}</title></rect>',
    ]
    for load, count in enumerate(counts):
        if not count:
            continue
        h = plot_h * count / peak
        color = RESERVE if load == 0 else IN_RANGE if low <= load <= high else OUT_OF_RANGE
        parts.append(
            f'<rect x="{left + load * bar_w + 0.5:.1f}" y="{top_pad + plot_h - h:.1f}" '
            f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{load}: {count}</title></rect>"
        )
    axis_y = top_pad + plot_h
    parts.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#333"/>'
    )
    step = max(1, round(top / 10))
    for tick in range(0, top, step):
        x = left + (tick + 0.5) * bar_w
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 12}" text-anchor="middle">{tick}</text>')
    parts += [
        f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{axis_y}" text-anchor="end">0</text>',
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">'
        f"{esc(x_label)}</text>",
        f'<text x="10" y="{top_pad + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 10 {top_pad + plot_h / 2:.0f})">{esc(y_label)}</text>',
        "</svg>",
    ]
    return "".join(parts)


def bar_chart_svg(
    labels: list[str],
    values: list[int],
    *,
    caption: str,
    width: int = 440,
    height: int = 180,
    color: str = "#b30000",
) -> str:
    """A small bar chart (contacts per week): one bar per label, the count on hover.

    Returns
    -------
    str
        An ``<svg>`` element; labels and caption escaped here.
    """
    left, bottom, right, top_pad = 34, 34, 6, 12
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    n = max(len(values), 1)
    bar_w = plot_w / n
    peak = max(max(values, default=0), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(caption)}" '
        'style="font:10px sans-serif">'
    ]
    for i, (name, count) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * count / peak
        x = left + i * bar_w
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{esc(name)}: {count}</title></rect>'
        )
        if i % 2 == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top_pad + plot_h + 12}" '
                f'text-anchor="middle">{esc(name)}</text>'
            )
    axis_y = top_pad + plot_h
    parts += [
        f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#333"/>',
        f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{axis_y}" text-anchor="end">0</text>',
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">'
        f"{esc(caption)}</text>",
        "</svg>",
    ]
    return "".join(parts)
