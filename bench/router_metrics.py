"""Router metrics as RouteLLM's evaluation code computes them (``/work/shared/routing/README.md``).

Pure Python but for ``np.interp`` (numpy from the dev extra), so the tests can check them on hand-computed
examples.

* ``curve``: the 11 thresholds are the decile edges of the router's scores on the benchmark (``pd.qcut(scores,
  10)``: linear-interpolation quantiles 0, 0.1, ..., 1). Every edge but the last sends a prompt to the strong model
  when ``score >= edge``; the last (the maximum score) when ``score > edge``, so the curve runs from 100% strong
  calls down to 0%. Each point is (strong share, quality, PGR).
* ``apgr``: trapezoid integral of quality over the strong share, normalised: ``(auc - r_w) / (r_s - r_w)``.
* ``cpt``: ``np.interp(r_w + x (r_s - r_w), quality_points, strong_share_points)`` over the points in order of
  increasing strong share (as ``np.interp``: clamped at the ends; it assumes quality rises with cost).
* ``random_curve``: uniform random scores, ``runs`` seeded runs, points averaged per position.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    strong_share: float  # 0..1
    quality: float
    pgr: float


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """numpy's default ('linear') quantile of already sorted values."""
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def curve(scores: Sequence[float], weak: Sequence[float], strong: Sequence[float], bins: int = 10) -> list[Point]:
    """The quality-cost curve at the decile edges, in order of decreasing strong share (as RouteLLM yields it)."""
    n = len(scores)
    if n == 0 or n != len(weak) or n != len(strong):
        raise ValueError("scores, weak and strong must be non-empty and of one length")
    r_w, r_s = sum(weak) / n, sum(strong) / n
    ordered = sorted(scores)
    edges = [quantile(ordered, i / bins) for i in range(bins + 1)]
    points = []
    for i, edge in enumerate(edges):
        last = i == bins
        picked = [(s > edge) if last else (s >= edge) for s in scores]
        share = sum(picked) / n
        quality = sum(st if p else wk for p, wk, st in zip(picked, weak, strong, strict=True)) / n
        points.append(Point(share, quality, (quality - r_w) / (r_s - r_w) if r_s != r_w else math.nan))
    return points


def references(weak: Sequence[float], strong: Sequence[float]) -> tuple[float, float]:
    return sum(weak) / len(weak), sum(strong) / len(strong)


def apgr(points: Sequence[Point], r_w: float, r_s: float) -> float:
    """Trapezoid area under quality over strong share, normalised (RouteLLM's ``apgr_metric``)."""
    pts = sorted(points, key=lambda p: p.strong_share)
    span = pts[-1].strong_share - pts[0].strong_share
    auc = sum((b.strong_share - a.strong_share) * (a.quality + b.quality) / 2 for a, b in itertools.pairwise(pts))
    return (auc - r_w * span) / ((r_s - r_w) * span)


def cpt(points: Sequence[Point], r_w: float, r_s: float, x: float) -> float:
    """Strong share (0..1) at which quality reaches PGR x, interpolated (RouteLLM's ``pct_call_metric``)."""
    import numpy as np  # np.interp itself: its handling of ties and of a non-monotone curve is RouteLLM's

    pts = sorted(points, key=lambda p: p.strong_share)
    return float(np.interp(r_w + x * (r_s - r_w), [p.quality for p in pts], [p.strong_share for p in pts]))


def random_curve(weak: Sequence[float], strong: Sequence[float], runs: int = 10, seed: int = 0) -> list[Point]:
    """RouteLLM's ``random`` router: uniform scores, ``runs`` seeded runs, the points averaged."""
    rng = random.Random(seed)
    curves = [curve([rng.random() for _ in weak], weak, strong) for _ in range(runs)]
    return [Point(*(sum(getattr(c[i], f) for c in curves) / runs for f in ("strong_share", "quality", "pgr")))
            for i in range(len(curves[0]))]


@dataclass(frozen=True)
class Summary:
    apgr: float
    cpt50: float
    cpt80: float
    points: list[Point]


def summarize(points: list[Point], weak: Sequence[float], strong: Sequence[float]) -> Summary:
    r_w, r_s = references(weak, strong)
    return Summary(apgr(points, r_w, r_s), cpt(points, r_w, r_s, 0.5), cpt(points, r_w, r_s, 0.8), points)


def evaluate(scores: Sequence[float], weak: Sequence[float], strong: Sequence[float]) -> Summary:
    return summarize(curve(scores, weak, strong), weak, strong)
