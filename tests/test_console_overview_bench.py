"""The console benchmarks run (small) on SQLite and PostgreSQL, so they cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from console_overview import SERVED  # noqa: E402

pytestmark = [pytest.mark.slow]


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "console_overview.py"), "--rows", "20000",
                           "--loads", "2", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_bench_runs_on_sqlite(tmp_path: Path) -> None:
    out = run("--db", str(tmp_path / "interlock.db"))
    assert "SQLite request log of 20,000 rows" in out
    assert out.count("| `/console/overview") == 7 and out.count("| `/console/spend") == 7
    assert out.count("through the gateway") == len(SERVED)  # every console page rendered (200) over the log


def test_the_bench_runs_on_postgresql(pg_url: str) -> None:
    out = run("--postgres", pg_url)
    assert "PostgreSQL request log of 20,000 rows" in out and out.count("| `/console/") == 10 + len(SERVED)


def test_the_catalog_pages_bench_runs(tmp_path: Path) -> None:
    """``bench/console_pages.py`` (the catalog pages over a generated log) still runs, small."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "console_pages.py"), "--rows", "2000", "--loads", "2",
                           "--db", str(tmp_path / "interlock.db")], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("| `/models") == 3 and "| `/compare" in done.stdout
