"""Server-rendered charts for the Overview and Spend pages: geometry for inline SVG, and number formatting.

Pure functions (no I/O): the templates draw what these return with SVG attributes and CSS classes only
(the console's CSP forbids inline styles and scripts). A chart never relies on colour alone: stacked
segments carry a fill pattern as well as a colour, lines differ by dash and are named in a legend, bars
carry their value in a tooltip and the peak on the axis, and every chart has a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT = 720, 200
TOP, BOTTOM, LEFT, RIGHT = 18, 22, 22, 22
#: Fill patterns of stacked segments, in order (``console.css`` colours them; the template defines them).
PATTERNS = ("solid", "hatch", "dots", "cross", "rows", "cols", "grid")


def usd(picousd: float | None) -> str:
    """Dollars: cents for a dollar and more, six decimals below a cent (a few requests' worth)."""
    if picousd is None:
        return "—"
    value = picousd / 1e12
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) >= 0.01:
        return f"${value:.4f}"
    return f"${value:.6f}"


def count(n: float) -> str:
    """A count, compact above ten thousand (12.3k, 4.56M)."""
    if abs(n) < 10_000:
        return f"{n:,.0f}"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:,.0f}"


def pct(part: float, whole: float) -> str:
    if not whole:
        return "—"
    value = 100.0 * part / whole
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} tok/s" if value >= 10 else f"{value:.1f} tok/s"


def _label_step(n: int, room: int = 12) -> int:
    """Every how many buckets a label fits under the axis."""
    return max(1, math.ceil(n / room))


def stacked_chart(chart_id: str, labels: Sequence[str], stacks: Sequence[Sequence[float]], names: Sequence[str],
                  fmt: Any, *, title: str, lines: Sequence[tuple[float, str]] = ()) -> dict[str, Any]:
    """Bars (one per label) stacked by series (``stacks[i][j]``: bar i, series j), with horizontal reference lines.

    ``fmt`` formats a value for the axis and tooltips; ``lines`` are (value, text) drawn across the plot and
    labelled at their right end (budget lines). Returns the template's geometry and a text summary."""
    n = len(labels)
    totals = [sum(s) for s in stacks]
    top_total = max(totals, default=0.0)
    # A reference line far above every bar would flatten them: it is pinned to the top edge and says so.
    in_scale = [v for v, _ in lines if top_total <= 0 or v <= 4 * top_total]
    peak = max([*totals, *in_scale, 0.0])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n if n else plot_w
    bar_w = max(1.0, round(slot * 0.72, 1))
    step = _label_step(n)
    bars = []
    for i, (label, stack) in enumerate(zip(labels, stacks, strict=True)):
        x = round(LEFT + i * slot + (slot - bar_w) / 2, 1)
        y: float = TOP + plot_h
        segments = []
        for j, value in enumerate(stack):
            if value <= 0 or peak <= 0:
                continue
            h = plot_h * value / peak
            y -= h
            segments.append({"y": round(y, 1), "h": max(round(h, 1), 0.5), "pattern": j % len(PATTERNS),
                             "title": f"{label} · {names[j]}: {fmt(value)}"})
        bars.append({"x": x, "w": bar_w, "segments": segments, "label": label if i % step == 0 else "",
                     "minor": (i // step) % 2 == 1,
                     "cx": round(x + bar_w / 2, 1), "total": fmt(totals[i]), "title": f"{label}: {fmt(totals[i])}"})
    refs = []
    for v, text in lines:
        if peak and v > peak:
            refs.append({"y": float(TOP), "text": f"{text} (above this scale)"})
        else:
            refs.append({"y": round(TOP + plot_h - plot_h * v / peak, 1) if peak else TOP + plot_h, "text": text})
    return {
        "id": chart_id, "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": LEFT + plot_w,
        "base": TOP + plot_h, "top": TOP,
        "label_y": HEIGHT - 6, "bars": bars, "lines": refs, "peak": fmt(peak), "names": list(names),
        "patterns": PATTERNS, "empty": top_total <= 0,
        "summary": f"{title}: " + (", ".join(f"{lb} {fmt(t)}" for lb, t in zip(labels, totals, strict=True))
                                   if n <= 40 else f"{n} bars, highest {fmt(top_total)}"),
    }


def line_chart(chart_id: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], fmt: Any,
               *, title: str) -> dict[str, Any]:
    """Lines over buckets (``series``: name, one value or None per label), each labelled at its last point.

    Series differ by dash pattern (``line-0``, ``line-1``... in CSS) as well as colour and are named, with
    their latest value, in the legend; a gap is left where a bucket has no value, a lone point is a dot."""
    n = len(labels)
    values = [v for _, vs in series for v in vs if v is not None]
    peak = max(values, default=0.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n if n else plot_w
    out = []
    for k, (name, vs) in enumerate(series):
        runs: list[list[tuple[float, float]]] = [[]]
        last: tuple[float, float, float] | None = None
        for i, v in enumerate(vs):
            if v is None:
                if runs[-1]:
                    runs.append([])
                continue
            x = round(LEFT + i * slot + slot / 2, 1)
            y = round(TOP + plot_h - (plot_h * v / peak if peak else 0), 1)
            runs[-1].append((x, y))
            last = (x, y, v)
        paths = [" ".join(f"{x},{y}" for x, y in run) for run in runs if len(run) > 1]
        dots = [{"x": run[0][0], "y": run[0][1]} for run in runs if len(run) == 1]
        out.append({"name": name, "cls": f"line-{k}", "paths": paths, "dots": dots,
                    "latest": "—" if last is None else fmt(last[2])})
    step = _label_step(n)
    return {
        "id": chart_id, "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": LEFT + plot_w,
        "base": TOP + plot_h, "top": TOP,
        "label_y": HEIGHT - 6, "series": out, "peak": fmt(peak) if values else "", "empty": not values,
        "labels": [{"x": round(LEFT + i * slot + slot / 2, 1), "text": lb, "minor": (i // step) % 2 == 1}
                   for i, lb in enumerate(labels) if i % step == 0],
        "summary": f"{title}: " + ("; ".join(
            f"{name} " + ", ".join(f"{lb} {fmt(v)}" for lb, v in zip(labels, vs, strict=True) if v is not None)
            for name, vs in series) if values and n <= 40 else "no data" if not values else f"{n} buckets"),
    }
