"""The Prometheus registry: exposition format, extension by other subsystems, merging across workers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from interlock.observability.metrics import Registry, SnapshotDir


def test_exposition_format() -> None:
    reg = Registry()
    c = reg.counter("x_total", "Things.", ("vendor",))
    c.inc(("a",))
    c.inc(("a",), 2)
    c.inc(('we"ird\n',))
    h = reg.histogram("lat_seconds", "Latency.", ("vendor",), buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(("a",), v)
    text = reg.render()
    assert "# HELP x_total Things.\n# TYPE x_total counter" in text
    assert 'x_total{vendor="a"} 3' in text
    assert 'x_total{vendor="we\\"ird\\n"} 1' in text
    # Buckets are cumulative and le is inclusive: 0.1 falls in le="0.1".
    assert 'lat_seconds_bucket{vendor="a",le="0.1"} 2' in text
    assert 'lat_seconds_bucket{vendor="a",le="1"} 3' in text
    assert 'lat_seconds_bucket{vendor="a",le="+Inf"} 4' in text
    assert 'lat_seconds_count{vendor="a"} 4' in text
    assert 'lat_seconds_sum{vendor="a"} 3.65' in text


def test_other_subsystems_add_gauges_and_collectors() -> None:
    reg = Registry()
    reg.gauge("interlock_circuit_open", "1 when open.", ("target",)).set(("openai/gpt",), 1)
    reg.collector(lambda: [("interlock_budget_utilisation", "gauge", "Share of budget used.",
                            [({"project": "p1"}, 0.25)])])
    text = reg.render()
    assert 'interlock_circuit_open{target="openai/gpt"} 1' in text
    assert "# TYPE interlock_budget_utilisation gauge" in text
    assert 'interlock_budget_utilisation{project="p1"} 0.25' in text


def test_workers_are_merged_through_snapshots(tmp_path: Path) -> None:
    # Another live worker (this test's parent process stands in for it) and a dead one.
    live_pid = os.getppid()
    dead = subprocess.Popen(["true"])
    dead.wait()
    for pid, n in ((live_pid, 5), (dead.pid, 100)):
        other = Registry()
        other.counter("req_total", "Requests.", ("v",)).inc(("a",), n)
        other.histogram("lat", "L.", ("v",), buckets=(1.0,)).observe(("a",), 0.5)
        other.gauge("up", "Up.").set((), 1)
        SnapshotDir(tmp_path, pid=pid).write(other)
    mine = Registry()
    mine.counter("req_total", "Requests.", ("v",)).inc(("a",), 2)
    mine.histogram("lat", "L.", ("v",), buckets=(1.0,)).observe(("a",), 2.0)
    mine.gauge("up", "Up.").set((), 1)
    snaps = SnapshotDir(tmp_path)
    text = mine.render(snaps.others())
    assert 'req_total{v="a"} 7' in text  # the dead worker's file is ignored (and removed)
    assert 'lat_bucket{v="a",le="1"} 1' in text and 'lat_count{v="a"} 2' in text
    assert f'up{{worker="{os.getpid()}"}} 1' in text and f'up{{worker="{live_pid}"}} 1' in text
    assert not (tmp_path / f"{dead.pid}.json").exists()
