"""A small Prometheus registry: counters, gauges, histograms and the text exposition format.

Written here rather than taken from ``prometheus_client`` because an
observation is on the hot path of every request: here it is a dict lookup and
an add (a ``bisect`` for histograms), with no locks - each worker process runs
one event loop and observes from it. ``bench/logging_overhead.py`` measures it.

Other subsystems register their own series (budget utilisation, circuit
state) with :meth:`Registry.gauge` or a :meth:`Registry.collector` callback
evaluated at scrape time, so a scrape-time value costs nothing between scrapes.

Several workers (``--workers N``): each has its own registry. Each worker
writes a snapshot to ``<state>/metrics/<pid>.json`` about once a second and
``GET /metrics`` merges the snapshots of every live worker (counters and
histograms summed; gauges per worker, labelled ``worker``), so a scrape sees
the whole gateway whichever worker answers, at most ~1 s stale for the others.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from interlock.core.process import pid_alive

Labels = tuple[str, ...]
#: A collector returns (metric name, type, help, [(labels dict, value)]).
Collected = tuple[str, str, str, list[tuple[dict[str, str], float]]]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


@dataclass(slots=True)
class Counter:
    name: str
    help: str
    labelnames: Labels
    values: dict[Labels, float]

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount


@dataclass(slots=True)
class Gauge:
    name: str
    help: str
    labelnames: Labels
    values: dict[Labels, float]

    def set(self, labels: Labels, value: float) -> None:
        self.values[labels] = value


@dataclass(slots=True)
class Histogram:
    name: str
    help: str
    labelnames: Labels
    buckets: tuple[float, ...]
    #: labels → [count per bucket (non-cumulative, +Inf last)..., sum]
    values: dict[Labels, list[float]]

    def observe(self, labels: Labels, value: float) -> None:
        row = self.values.get(labels)
        if row is None:
            row = self.values[labels] = [0.0] * (len(self.buckets) + 2)
        row[bisect.bisect_left(self.buckets, value)] += 1
        row[-1] += value


class Registry:
    def __init__(self) -> None:
        self.counters: dict[str, Counter] = {}
        self.gauges: dict[str, Gauge] = {}
        self.histograms: dict[str, Histogram] = {}
        self.collectors: list[Callable[[], Iterable[Collected]]] = []

    def counter(self, name: str, help: str, labelnames: Labels = ()) -> Counter:
        return self.counters.setdefault(name, Counter(name, help, labelnames, {}))

    def gauge(self, name: str, help: str, labelnames: Labels = ()) -> Gauge:
        return self.gauges.setdefault(name, Gauge(name, help, labelnames, {}))

    def histogram(self, name: str, help: str, labelnames: Labels = (),
                  buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
        return self.histograms.setdefault(name, Histogram(name, help, labelnames, tuple(sorted(buckets)), {}))

    def collector(self, fn: Callable[[], Iterable[Collected]]) -> None:
        """Add series computed at scrape time (e.g. ``budget_utilisation`` from the budget store)."""
        self.collectors.append(fn)

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        """Counters, histograms and gauges as plain JSON (collectors answer for their own worker only)."""
        gauges = {g.name: [[list(k), v] for k, v in g.values.items()] for g in self.gauges.values()}
        return {
            "counters": {c.name: [[list(k), v] for k, v in c.values.items()] for c in self.counters.values()},
            "histograms": {h.name: [[list(k), v] for k, v in h.values.items()] for h in self.histograms.values()},
            "gauges": gauges,
        }

    # ------------------------------------------------------------ exposition

    def render(self, others: Sequence[tuple[str, dict[str, Any]]] = ()) -> str:
        """Text exposition format 0.0.4; ``others`` are (worker id, snapshot) of sibling workers."""
        out: list[str] = []
        for c in self.counters.values():
            merged = dict(c.values)
            for _, snap in others:
                for k, v in snap.get("counters", {}).get(c.name, ()):
                    merged[tuple(k)] = merged.get(tuple(k), 0.0) + v
            out.append(f"# HELP {c.name} {c.help}\n# TYPE {c.name} counter")
            out.extend(f"{c.name}{_labels(c.labelnames, k)} {_fmt(v)}" for k, v in sorted(merged.items()))
        for h in self.histograms.values():
            rows = {k: list(v) for k, v in h.values.items()}
            for _, snap in others:
                for k, v in snap.get("histograms", {}).get(h.name, ()):
                    row = rows.setdefault(tuple(k), [0.0] * len(v))
                    for i, x in enumerate(v):
                        row[i] += x
            out.append(f"# HELP {h.name} {h.help}\n# TYPE {h.name} histogram")
            for k, row in sorted(rows.items()):
                cumulative = 0.0
                for bound, n in zip((*h.buckets, math.inf), row[:-1], strict=True):
                    cumulative += n
                    le = 'le="' + _fmt(bound) + '"'
                    out.append(f"{h.name}_bucket{_labels(h.labelnames, k, le)} {_fmt(cumulative)}")
                out.append(f"{h.name}_sum{_labels(h.labelnames, k)} {_fmt(row[-1])}")
                out.append(f"{h.name}_count{_labels(h.labelnames, k)} {_fmt(cumulative)}")
        worker = f'worker="{os.getpid()}"' if others else ""
        for g in self.gauges.values():
            out.append(f"# HELP {g.name} {g.help}\n# TYPE {g.name} gauge")
            out.extend(f"{g.name}{_labels(g.labelnames, k, worker)} {_fmt(v)}" for k, v in sorted(g.values.items()))
            for wid, snap in others:
                for k, v in snap.get("gauges", {}).get(g.name, ()):
                    label = f'worker="{wid}"'
                    out.append(f"{g.name}{_labels(g.labelnames, k, label)} {_fmt(v)}")
        for fn in self.collectors:
            for name, kind, help_, samples in fn():
                out.append(f"# HELP {name} {help_}\n# TYPE {name} {kind}")
                for lbl, v in samples:
                    out.append(f"{name}{_labels(list(lbl), list(lbl.values()), worker)} {_fmt(v)}")
        return "\n".join(out) + "\n"


class SnapshotDir:
    """Per-worker snapshot files in the state directory, merged at scrape time."""

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.dir = directory
        self.pid = os.getpid() if pid is None else pid

    def write(self, registry: Registry) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{self.pid}.tmp"
        tmp.write_bytes(orjson.dumps(registry.snapshot()))
        tmp.replace(self.dir / f"{self.pid}.json")

    def others(self) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        if not self.dir.is_dir():
            return out
        for path in self.dir.glob("*.json"):
            stem = path.stem
            if not stem.isdigit() or int(stem) == self.pid:
                continue
            if not pid_alive(int(stem)):
                path.unlink(missing_ok=True)
                continue
            try:
                out.append((stem, orjson.loads(path.read_bytes())))
            except (OSError, orjson.JSONDecodeError):
                continue  # being replaced right now: the next scrape reads it
        return out
