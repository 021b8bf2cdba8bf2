"""Spend queries on a large request log: 10 million records, spend-by-day for a month, SQLite and PostgreSQL.

Generates the records through the stores' own write path (``insert_requests`` /
``PostgresLog.write``: the same batched insert + rollup upsert the gateway
uses), then times ``spend(group_by=day)`` over 30 days, and the other
groupings, as the admin API would run them. The figure that matters is the
query time; generation time is printed too (it is the sustained write rate).

    .venv/bin/python bench/spend.py --records 10000000 [--backend sqlite|postgresql|both]

PostgreSQL: a throwaway database on 127.0.0.1:5432 (``--pg-admin``), dropped
at the end unless ``--keep``. Not a test: it takes minutes at full size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.schema import GROUPS, SpendQuery
from interlock.ledger.store import SQLiteStore

DAY = 86400.0
START = 1_748_736_000.0  # 2025-06-01 00:00 UTC
MODELS = [(f"lab{i % 4}/model-{i}", f"vendor{i % 6}") for i in range(20)]


def records(n: int, days: int, seed: int = 7) -> Any:
    """Realistic cardinality: 20 projects, 200 keys, 20 models on 6 vendors, 12 tags (0-2 per request)."""
    rnd = random.Random(seed)
    tags = [f"tag{i}" for i in range(12)]
    step = days * DAY / n
    for i in range(n):
        key = rnd.randrange(200)
        model, vendor = MODELS[rnd.randrange(len(MODELS))]
        k = rnd.random()
        yield {
            "id": f"req_{i:012d}", "received_at": START + i * step, "inbound": "openai-chat", "stream": 0,
            "status": 200 if k > 0.02 else 502, "project": f"project{key % 20}", "key_id": f"key{key}",
            "model": model, "vendor": vendor, "input_tokens": rnd.randrange(50, 4000),
            "output_tokens": rnd.randrange(10, 800), "cost_picousd": rnd.randrange(10_000, 50_000_000),
            "tags": rnd.sample(tags, rnd.choice((0, 1, 1, 2))) or None, "content_level": "metadata",
        }


def timed(fn: Any, repeat: int = 7) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def month() -> SpendQuery:
    return SpendQuery(group_by="day", since="2025-06-01", until="2025-06-30")


def bench_sqlite(n: int, days: int, batch: int, path: Path) -> None:
    store = SQLiteStore(path)
    t = time.perf_counter()
    buf: list[dict[str, Any]] = []
    for r in records(n, days):
        buf.append(r)
        if len(buf) == batch:
            store.insert_requests(buf)
            buf = []
    store.insert_requests(buf)
    gen = time.perf_counter() - t
    print(f"sqlite: wrote {n:,} records in {gen:.0f} s ({n / gen:,.0f} records/s, batches of {batch})")
    rows = store.spend(month())
    assert sum(r["requests"] for r in rows) == n or days > 30
    print(f"sqlite: spend by day, one month ({len(rows)} rows): {timed(lambda: store.spend(month())):.1f} ms (median)")
    for group in GROUPS:
        q = SpendQuery(group_by=group, since="2025-06-01", until="2025-06-30")
        print(f"sqlite:   group_by={group:<8} {timed(lambda q=q: store.spend(q), 3):8.1f} ms")
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    print(f"sqlite: database size {size / 1e9:.2f} GB")
    store.close()


async def bench_pg(n: int, days: int, batch: int, admin: str, keep: bool) -> None:
    name = "interlock_bench_" + os.urandom(4).hex()
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    base = admin.rsplit("/", 1)[0]
    store = PostgresLog(f"{base}/{name}", max_size=4)
    try:
        t = time.perf_counter()
        buf: list[dict[str, Any]] = []
        pending: set[asyncio.Task[int]] = set()
        for r in records(n, days):
            buf.append(r)
            if len(buf) == batch:
                pending.add(asyncio.create_task(store.write(buf)))
                buf = []
                if len(pending) >= 4:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for d in done:
                        d.result()
        pending.add(asyncio.create_task(store.write(buf)))
        for d in pending:
            await d
        gen = time.perf_counter() - t
        print(f"postgresql: wrote {n:,} records in {gen:.0f} s ({n / gen:,.0f} records/s, batches of {batch}, "
              "4 writers)")
        samples = []
        for _ in range(7):
            t = time.perf_counter()
            rows = await store.spend(month())
            samples.append((time.perf_counter() - t) * 1000)
        print(f"postgresql: spend by day, one month ({len(rows)} rows): {statistics.median(samples):.1f} ms (median)")
        for group in GROUPS:
            q = SpendQuery(group_by=group, since="2025-06-01", until="2025-06-30")
            s = []
            for _ in range(3):
                t = time.perf_counter()
                await store.spend(q)
                s.append((time.perf_counter() - t) * 1000)
            print(f"postgresql:   group_by={group:<8} {statistics.median(s):8.1f} ms")
    finally:
        await store.close()
        if not keep:
            subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE {name} WITH (FORCE)"], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--dir", default=None, help="where the SQLite file goes (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            bench_sqlite(args.records, args.days, args.batch, Path(tmp) / "interlock.db")
    if args.backend in ("postgresql", "both"):
        asyncio.run(bench_pg(args.records, args.days, args.batch, args.pg_admin, args.keep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
