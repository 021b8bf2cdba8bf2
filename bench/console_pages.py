"""Server-side page time of the console over a big request log: /models, a model page, /compare.

Generates a SQLite request log of ``--rows`` records (default 10 million) with
the real schema (the ledger's migrations run first) spread over the last 30
days, across a few dozen catalog models and their vendors; rows are inserted
with ``executemany`` in large transactions and the rollups (``spend_daily``,
``spend_dims``, ``route_hourly``) are built with the writer's own functions
(``schema.rollup_deltas``, ``schema.dim_deltas``, ``routes.route_deltas``),
chunk by chunk. ``--db DIR/interlock.db`` keeps the file and reuses it when it
already holds rows (generation takes minutes at 10M).

Then a Gateway is built in this process over that state directory and each
page is requested through its RSGI entry ``--loads`` times (stand-in RSGI
objects, no sockets): the first load of each page is reported apart (cold:
template compilation, the model page's rollup read), then the median and p95
of the rest. The model page is measured twice: as served (the route rollup
cached per model for 30 s) and with that cache emptied before every load, so
every load pays the indexed rollup read. Prints a markdown table.

    .venv/bin/python bench/console_pages.py [--rows 10000000] [--db PATH] [--loads 200]
                                            [--postgres postgresql://postgres@127.0.0.1/DB]

``--postgres URL`` puts the log in that (empty or already generated) PostgreSQL
database instead: rows are ``COPY``-ed and the rollups upserted by the
PostgreSQL store's own statement, chunk by chunk; the gateway reads it
through the asyncpg pool (``store:``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from interlock.app import Gateway
from interlock.catalog import load_catalog
from interlock.config import load_settings
from interlock.ledger.routes import SQLITE_UPSERT_ROUTES, route_deltas
from interlock.ledger.rowcodec import ROW_COLUMNS, TEXT_COLUMNS, row_from_record
from interlock.ledger.schema import SQLITE_UPSERT_DIMS, SQLITE_UPSERT_ROLLUP, dim_deltas, rollup_deltas
from interlock.ledger.store import SQLiteStore
from interlock.ledger.usage import SQLITE_UPSERT_USAGE, usage_deltas
from interlock.vendors.registry import VENDOR_TABLE

PAGE_MODEL = "openai/gpt-4.1-mini"
COMPARE = ("openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5", "google/gemini-2.5-flash")
CHUNK = 200_000
DAYS = 30
CONFIG = """
simulator: {enabled: true, time_scale: 0}
vendors:
  openai: {api_key: sk-bench-not-a-real-key}
  anthropic: {api_key: sk-bench-not-a-real-key}
"""


def models_for_log() -> list[tuple[str, str]]:
    """(model, vendor) pairs the generated traffic goes to: the pages' models and a few dozen more."""
    catalog = load_catalog()
    pairs = [(PAGE_MODEL, "openai"), (PAGE_MODEL, "azure"), (PAGE_MODEL, "simulator")]
    for m in catalog.models[:: max(1, len(catalog.models) // 40)]:
        for vendor in m.vendors[:2]:
            pairs.append((m.id, vendor))
    return pairs


def generated_rows(rows: int) -> Any:
    """Chunks of generated rows (``ROW_COLUMNS``), "" for absent text."""
    pairs = models_for_log()
    template = row_from_record({"id": "x", "received_at": 0.0, "inbound": "openai.chat", "status": 200,
                                "content_level": "metadata", "duration_ms": 420.0, "ttft_ms": 180.0})
    detail = template[-1]
    rng = random.Random(7)
    start = time.time() - DAYS * 86400
    step = DAYS * 86400 / rows
    statuses = [200] * 970 + [429] * 10 + [400] * 10 + [502] * 7 + [500] * 3
    projects = ["alpha", "beta", "gamma"]
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        batch = []
        for i in range(done, done + n):
            model, vendor = pairs[rng.randrange(len(pairs))]
            status = statuses[rng.randrange(1000)]
            tin, tout = rng.randrange(50, 4000), rng.randrange(10, 800) if status == 200 else 0
            batch.append((f"req_{i:012d}", start + i * step, projects[i % 3], f"key{i % 7}", model, model, vendor,
                          status, (tin * 4 + tout * 16) * 100_000, tin, 0, tout, "", "openai.chat", 0, "", "",
                          "", "", "", detail))
        done += n
        yield batch


async def generate_pg(url: str, rows: int) -> int:
    """Fills an empty PostgreSQL log (or returns the rows it already holds)."""
    # Imported here: asyncpg (the PostgreSQL store) only for --postgres. Its statement and NULL mapping are
    # the store's own, so the generated log is what the writer would have made.
    from interlock.ledger.pgstore import _ROLLUP, PostgresLog, _nulls

    log = PostgresLog(url)
    pool = await log.pool()
    have = int(await pool.fetchval("SELECT count(*) FROM requests"))
    if have:
        await log.close()
        return have
    t0 = time.perf_counter()
    done = 0
    async with pool.acquire() as conn:
        for batch in generated_rows(rows):
            async with conn.transaction():
                await conn.copy_records_to_table("requests", records=_nulls(batch), columns=ROW_COLUMNS)
                await conn.execute(_ROLLUP, orjson.dumps(rollup_deltas(batch)).decode(),
                                   orjson.dumps(route_deltas(batch)).decode())
            done += len(batch)
            print(f"\r  {done:,} / {rows:,} rows ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr,
                  flush=True)
        await conn.execute("VACUUM ANALYZE route_hourly")
    print(file=sys.stderr)
    await log.close()
    return rows


def generate(path: Path, rows: int) -> None:
    fill_sqlite(path, generated_rows(rows), rows)


def fill_sqlite(path: Path, batches: Iterable[list[tuple[Any, ...]]], rows: int) -> None:
    """Writes ``batches`` of rows (``ROW_COLUMNS``, "" for an absent text) into a SQLite log with the real schema,
    and every rollup with the writer's own functions, one transaction per batch. No ANALYZE: the gateway never
    runs it, so the planner works without statistics, as in production."""
    SQLiteStore(path).close()  # the real schema, through the ledger's migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    # As the store inserts: NULL for an absent text column.
    values = ", ".join("NULLIF(?, '')" if c in TEXT_COLUMNS else "?" for c in ROW_COLUMNS)
    insert = f"INSERT INTO requests ({', '.join(ROW_COLUMNS)}) VALUES ({values})"
    t0 = time.perf_counter()
    done = 0
    for batch in batches:
        conn.execute("BEGIN")
        conn.executemany(insert, batch)
        deltas = rollup_deltas(batch)
        conn.executemany(SQLITE_UPSERT_ROLLUP, deltas)
        conn.executemany(SQLITE_UPSERT_DIMS, dim_deltas(deltas))
        conn.executemany(SQLITE_UPSERT_ROUTES, route_deltas(batch))
        conn.executemany(SQLITE_UPSERT_USAGE, usage_deltas(batch))
        conn.execute("COMMIT")
        done += len(batch)
        print(f"\r  {done:,} / {rows:,} rows ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(file=sys.stderr)


class Scope:
    """The RSGI scope of one GET (``cookie``: a signed-in browser's session)."""

    def __init__(self, path: str, query: str, cookie: str = "") -> None:
        self.method = "GET"
        self.path = path
        self.query_string = query
        self.client = "127.0.0.1"
        self.scheme = "http"
        self.headers = {"host": "127.0.0.1:4000", **({"cookie": cookie} if cookie else {})}


class Proto:
    def __init__(self) -> None:
        self.status = 0
        self._gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def __call__(self) -> bytes:
        return b""

    def client_disconnect(self) -> asyncio.Future[None]:
        return self._gone

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.status = status


async def load(gw: Gateway, path: str, query: str) -> float:
    proto = Proto()
    t = time.perf_counter()
    await gw.__rsgi__(Scope(path, query), proto)  # type: ignore[arg-type]
    elapsed = (time.perf_counter() - t) * 1000.0
    if proto.status != 200:
        raise SystemExit(f"{path}?{query} answered {proto.status}")
    return elapsed


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def measure(gw: Gateway, loads: int) -> list[tuple[str, float, float, float]]:
    compare_q = "&".join(f"m={m}" for m in COMPARE)
    model_path = "/models/" + PAGE_MODEL
    pages: list[tuple[str, str, str, Callable[[], None] | None]] = [
        ("/models", "/models", "", None),
        (model_path, model_path, "", None),
        (f"{model_path} (rollup read every load)", model_path, "", _uncached(gw)),
        (f"/compare?{compare_q}", "/compare", compare_q, None),
    ]
    out = []
    for label, path, query, before in pages:
        if before is not None:
            before()
        cold = await load(gw, path, query)
        times = []
        for _ in range(loads):
            if before is not None:
                before()
            times.append(await load(gw, path, query))
        out.append((label, cold, statistics.median(times), p95(times)))
    return out


def _uncached(gw: Gateway) -> Callable[[], None]:
    """Empties the model page's per-model cache of the route rollup (the pages behind ``/models``)."""
    route = gw.router.match("/models")
    pages: Any = getattr(route.handler, "__self__", None) if route is not None else None
    if pages is None or pages.traffic is None:
        raise SystemExit("the console's model page reads no request log here")
    cache: dict[str, Any] = pages.traffic._cache
    return cache.clear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, help="DIR/interlock.db: kept, and reused when it holds rows")
    parser.add_argument("--loads", type=int, default=200)
    parser.add_argument("--postgres", metavar="URL", help="the log in this PostgreSQL database instead of SQLite")
    args = parser.parse_args()
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="interlock-console-bench-")
        args.db = Path(tmp.name) / "interlock.db"
    if args.db.name != "interlock.db":
        raise SystemExit("--db must name a file called interlock.db (its directory is the gateway's state)")
    args.db.parent.mkdir(parents=True, exist_ok=True)
    have = 0
    if args.postgres:
        print(f"PostgreSQL log at {args.postgres}", file=sys.stderr)
        t = time.perf_counter()
        have = asyncio.run(generate_pg(args.postgres, args.rows))
        print(f"ready in {time.perf_counter() - t:.0f} s ({have:,} rows)", file=sys.stderr)
    elif args.db.exists():
        with sqlite3.connect(args.db) as conn:
            have = conn.execute("SELECT max(rowid) FROM requests").fetchone()[0] or 0
    if have and not args.postgres:
        print(f"reusing {args.db} ({have:,} rows)", file=sys.stderr)
    elif not have:
        print(f"generating {args.rows:,} rows in {args.db}", file=sys.stderr)
        t = time.perf_counter()
        generate(args.db, args.rows)
        print(f"generated in {time.perf_counter() - t:.0f} s, {args.db.stat().st_size / 1e9:.2f} GB", file=sys.stderr)
        have = args.rows
    home = args.db.parent
    (home / "bench.yaml").write_text(CONFIG + (f"store: {args.postgres}\n" if args.postgres else ""))
    os.environ.setdefault("INTERLOCK_MASTER_KEY", "ik-bench-master-key-0123456789abcdef")
    settings = load_settings(home / "bench.yaml", vendor_table=VENDOR_TABLE, environ={"INTERLOCK_HOME": str(home)})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gw = Gateway(settings)
    try:
        results = loop.run_until_complete(measure(gw, args.loads))
    finally:
        loop.run_until_complete(gw.obs.store.close())
        loop.run_until_complete(gw.http.close())
        gw.store.close()
        loop.close()
    kind = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\n{kind} request log of {have:,} rows; {args.loads} loads per page after the first, in process.\n")
    print("| page | cold (first load) | median | p95 | target ≤ 100 ms |")
    print("|---|---|---|---|---|")
    for label, cold, median, high in results:
        ok = "met" if high <= 100.0 and cold <= 100.0 else ("met (warm)" if high <= 100.0 else "**missed**")
        print(f"| `{label}` | {cold:.1f} ms | {median:.1f} ms | {high:.1f} ms | {ok} |")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
