"""The overview's history chart: processed and failed per day as an inline SVG (no script, no library)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ..api.history import DayCount

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 900, 220, 48, 30, 10


def daily_chart(days: Sequence[DayCount]) -> str:
    """Two bars a day (processed, failed) scaled to the busiest day, with a y-axis maximum and date labels."""
    if not days:
        return ""
    peak = max(max(d.processed, d.failed) for d in days) or 1
    slot = (WIDTH - LEFT) / len(days)
    bar = max(1.0, slot * 0.4)
    plot_h = HEIGHT - BOTTOM - TOP
    parts = [f"<line x1='{LEFT}' y1='{TOP + plot_h}' x2='{WIDTH}' y2='{TOP + plot_h}' stroke='#999'/>",
             f"<text x='{LEFT - 4}' y='{TOP + 8}' text-anchor='end'>{peak}</text>",
             f"<text x='{LEFT - 4}' y='{TOP + plot_h}' text-anchor='end'>0</text>"]
    label_every = max(1, len(days) // 10)
    for i, d in enumerate(days):
        x = LEFT + i * slot
        for offset, value, kind in ((0.0, d.processed, "processed"), (bar, d.failed, "failed")):
            h = plot_h * value / peak
            parts.append(f"<rect class='{kind}' x='{x + offset:.1f}' y='{TOP + plot_h - h:.1f}' width='{bar:.1f}' "
                         f"height='{h:.1f}'><title>{escape(d.day.isoformat())} {kind}: {value}</title></rect>")
        if i % label_every == 0:
            parts.append(f"<text x='{x:.1f}' y='{HEIGHT - 12}'>{escape(d.day.strftime('%m-%d'))}</text>")
    legend = ("<p class='legend'><span class='processed'>&#9632;</span> processed "
              "<span class='failed'>&#9632;</span> failed</p>")
    return (f"<svg class='chart' id='chart' viewBox='0 0 {WIDTH} {HEIGHT}' width='100%' height='{HEIGHT}' "
            f"role='img' aria-label='processed and failed per day'>{''.join(parts)}</svg>{legend}")
