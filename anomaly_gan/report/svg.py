"""The batch report's score histogram as inline SVG: drawn by hand so that `detect` never imports
matplotlib (0.8 s of start-up on the 2-core host, a tenth of a 1,000-scan run)."""

from __future__ import annotations

import html

import numpy as np

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 600, 250, 48, 36, 44
GROUP_COLOURS = ("#3a9a4a", "#d0453a")


def histogram_svg(
    groups: tuple[np.ndarray, np.ndarray], names: tuple[str, str], threshold: float, title: str, bins: int = 40
) -> str:
    """Two score histograms as shares of their group (the groups differ in size), the threshold as
    a dashed line."""
    values = np.concatenate([*groups, [threshold]])
    edges = np.linspace(values.min(), values.max() + 1e-9, bins + 1)
    shares = [np.histogram(g, edges)[0] / max(len(g), 1) for g in groups]
    top = max(max(s.max() for s in shares), 1e-9)
    plot_w, plot_h = WIDTH - LEFT - 12, HEIGHT - BOTTOM - TOP

    def x(v: float) -> float:
        return LEFT + (v - edges[0]) / (edges[-1] - edges[0]) * plot_w

    parts = [
        f'<svg width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="11" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
    ]
    bar_w = plot_w / bins
    for share, colour in zip(shares, GROUP_COLOURS, strict=True):
        for k in np.flatnonzero(share):
            h = share[k] / top * plot_h
            parts.append(
                f'<rect x="{LEFT + k * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}" fill-opacity="0.6"/>'
            )
    base = TOP + plot_h
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + plot_w}" y2="{base}" stroke="#333"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#333"/>')
    for v in np.linspace(edges[0], edges[-1], 6):
        parts.append(f'<text x="{x(v):.1f}" y="{base + 14}" text-anchor="middle">{v:.2f}</text>')
    for f in (0, 0.5, 1):
        parts.append(f'<text x="{LEFT - 4}" y="{base - f * plot_h + 4:.1f}" text-anchor="end">{f * top:.0%}</text>')
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" text-anchor="middle">anomaly score '
        f"(bars: share of each group&#8217;s scans)</text>"
    )
    t = x(threshold)
    parts.append(f'<line x1="{t:.1f}" y1="{TOP}" x2="{t:.1f}" y2="{base}" stroke="black" stroke-dasharray="5,3"/>')
    legend = [(f"{names[i]} ({len(groups[i])})", GROUP_COLOURS[i]) for i in range(2)]
    legend.append((f"threshold {threshold:.2f}", "black"))
    at = LEFT  # one legend row between the title and the plot, clear of the bars
    for label, colour in legend:
        parts.append(
            f'<rect x="{at}" y="24" width="10" height="10" fill="{colour}" fill-opacity="0.7"/>'
            f'<text x="{at + 14}" y="33">{html.escape(label)}</text>'
        )
        at += 24 + 6 * len(label)
    parts.append("</svg>")
    return "".join(parts)
