"""Server time of the console's pages (Overview and Spend in detail) over a big request log, SQLite and PostgreSQL.

Generates a log of ``--rows`` records (default 10 million) spread over the last 30 days - a dozen
projects, five keys each, a few dozen catalog models and their vendors, tags on a third of the requests,
varied TTFT and speed, some response cache hits - straight into the store with the real schema (the
ledger's migrations run first): SQLite rows with ``executemany`` in large transactions, PostgreSQL rows
``COPY``-ed; the rollups (spend, route, usage) are built with the writer's own functions and statements,
chunk by chunk. ``--db`` / ``--postgres`` reuse a log that already holds rows (generation takes minutes
at 10M).

Then each page's work - its rollup reads through the store (off the loop, as served) and the template
render - is timed ``--loads`` times per variant (admin and project key, each window, each grouping): the
first load apart (cold), then the median and p95. Last, a few pages are requested the way a browser gets
them: a Gateway over the same state, signed in (a session cookie), through its RSGI entry (stand-in RSGI
objects, no sockets): routing, the session lookup, the headers, the same reads and render. Prints a markdown
table.

    .venv/bin/python bench/console_overview.py [--rows 10000000] [--db DIR/interlock.db] [--loads 50]
                                               [--postgres postgresql://postgres@127.0.0.1/DB]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from interlock.catalog import load_catalog
from interlock.console.overview import WINDOWS, OverviewPage
from interlock.console.spend import SpendPage, parse_params
from interlock.console.web import load_static, make_environment, render
from interlock.ledger.routes import route_deltas
from interlock.ledger.rowcodec import ROW_COLUMNS
from interlock.ledger.schema import rollup_deltas
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.usage import usage_deltas
from interlock.ledger.writer import LogStore

sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_pages import Proto, Scope, fill_sqlite

CHUNK = 200_000
DAYS = 30
PROJECTS = [f"proj{i:02d}" for i in range(12)]
TAGS = ["", "", "", "", "", "", '["team-a"]', '["team-b"]', '["team-a","batch"]']
BUDGETS = [{"name": "project 'proj01' daily budget", "scope": "project", "subject": "proj01", "period": "daily",
            "mode": "hard", "amount_usd": 400.0, "spent_usd": 12.5, "reserved_usd": 0.1, "remaining_usd": 387.4}]


def pairs() -> list[tuple[str, str]]:
    catalog = load_catalog()
    out = [("openai/gpt-4.1-mini", "openai"), ("openai/gpt-4.1-mini", "azure")]
    for m in catalog.models[:: max(1, len(catalog.models) // 40)]:
        for vendor in m.vendors[:2]:
            out.append((m.id, vendor))
    return out


#: One request in a hundred has a guardrail detection (its strongest action, the log's guardrail column).
GUARDED = (("monitor", [{"detector": "pii", "action": "monitor", "score": 1.0, "entities": {"EMAIL_ADDRESS": 1}}]),
           ("redact", [{"detector": "pii", "action": "redact", "score": 1.0, "entities": {"PHONE_NUMBER": 1}}]),
           ("block", [{"detector": "secrets", "action": "block", "score": 1.0, "entities": {"OPENAI_KEY": 1}}]))


def _details(rng: random.Random, guardrails: Any = None) -> list[str]:
    """Detail arrays as the gateway writes them (``record.build_row``): only the timings vary here."""
    out = []
    for _ in range(64):
        ttft = int(rng.lognormvariate(12.3, 0.6))  # ~220 ms median, in µs
        duration = ttft + int(rng.lognormvariate(13.5, 0.7))
        out.append(orjson.dumps([2, None, duration, ttft, None, None, "m", None, None, None, None, 0, 0, 0,
                                 None, guardrails, "the only capable target", None, "metadata"]).decode())
    return out


def generated_rows(rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of rows (``ROW_COLUMNS``), "" for absent text, oldest first."""
    rng = random.Random(7)
    routes = pairs()
    details = _details(rng)
    guarded = [(action, _details(rng, found)) for action, found in GUARDED]
    statuses = [200] * 970 + [429] * 10 + [400] * 10 + [502] * 7 + [500] * 3
    start = time.time() - DAYS * 86400
    step = DAYS * 86400 / rows
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        batch = []
        for i in range(done, done + n):
            model, vendor = routes[rng.randrange(len(routes))]
            status = statuses[rng.randrange(1000)]
            project = PROJECTS[rng.randrange(len(PROJECTS))]
            tin, tout = rng.randrange(50, 4000), rng.randrange(10, 800) if status == 200 else 0
            hit = status == 200 and rng.random() < 0.05
            action, texts = guarded[rng.randrange(3)] if rng.random() < 0.01 else ("", details)
            batch.append((f"req_{i:012d}", start + i * step, project, f"key_{project}_{i % 5}", model, model, vendor,
                          status, (tin * 4 + tout * 16) * 100_000, tin, 0, tout, TAGS[rng.randrange(len(TAGS))],
                          "openai.chat", i & 1, "", "", "hit" if hit else "", (tin * 4 + tout * 16) * 100_000 if hit
                          else "", action, texts[rng.randrange(len(texts))]))
        done += n
        yield batch


def progress(done: int, rows: int, t0: float) -> None:
    print(f"\r  {done:,} / {rows:,} rows ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr, flush=True)


def generate_sqlite(path: Path, rows: int) -> None:
    fill_sqlite(path, generated_rows(rows), rows)


async def generate_pg(url: str, rows: int) -> int:
    """Fills an empty PostgreSQL log (or returns how many rows it already holds, by its rollup)."""
    from interlock.ledger.pgstore import _ROLLUP, PostgresLog, _nulls

    log = PostgresLog(url)
    pool = await log.pool()
    have = int(await pool.fetchval("SELECT coalesce(sum(requests), 0) FROM usage_hourly "
                                   "WHERE project = '*' AND model = '*'"))
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
                                   orjson.dumps(route_deltas(batch)).decode(),
                                   orjson.dumps(usage_deltas(batch)).decode())
            done += len(batch)
            progress(done, rows, t0)
        for table in ("spend_daily", "spend_dims", "route_hourly", "usage_hourly"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    print(file=sys.stderr)
    await log.close()
    return rows


async def budgets(project: str | None) -> list[dict[str, Any]]:
    return [b for b in BUDGETS if project is None or b["subject"] == project]


def variants(overview: OverviewPage, spend: SpendPage, env: Any) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    today = dt.datetime.now(dt.UTC).date()
    base = {"viewer": "bench", "csrf": "", "error": None, "error_param": None, "off": False, "health": []}

    def ov(project: str | None, window: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            data = await overview.view(project, window)
            render(env, "overview.html", {**base, "title": "Overview", "active": "overview", "admin": project is None,
                                          "own_project": project, "windows": list(WINDOWS), "window": window,
                                          "project": "", "data": data})
        return run

    def sp(project: str | None, **params: str) -> Callable[[], Awaitable[None]]:
        choice = parse_params(params, today, admin=project is None, own=project)

        async def run() -> None:
            data = await spend.view(choice, project is None)
            render(env, "spend.html", {**base, "title": "Spend", "active": "spend", "admin": project is None,
                                       "own_project": project, "periods": ("day", "week", "month"),
                                       "groups": ["model"], "choice": choice, "data": data, "export": "x"})
        return run

    return [
        *((f"/console/overview?window={w} (admin)", ov(None, w)) for w in WINDOWS),
        ("/console/overview?window=30d (project key)", ov("proj03", "30d")),
        ("/console/spend?by=day&group=model (admin, 30 d)", sp(None, by="day", group="model")),
        ("/console/spend?by=week&group=tag (admin, 12 weeks)", sp(None, by="week", group="tag")),
        ("/console/spend?by=month&group=project (admin, 12 months)", sp(None, by="month", group="project")),
        ("/console/spend?by=day&group=key (project key, 30 d)", sp("proj03", by="day", group="key")),
        ("/console/spend?by=month&group=model (project key, 12 months)", sp("proj03", by="month", group="model")),
    ]


GATEWAY_CONFIG = "simulator: {enabled: true, time_scale: 0}\n"
MASTER_KEY = "ik-bench-master-key-0123456789abcdef"
#: Pages requested through the gateway's RSGI entry with a signed-in session (the whole server path).
SERVED = (("/console/overview", "window=24h"), ("/console/overview", "window=30d"),
          ("/console/spend", "by=day&group=model"), ("/console/spend", "by=month&group=project"),
          # The other console pages over the same log: the request log (newest page, one project, one model,
          # errors only, a cost range, one guardrail action), keys (spend and last use per key), budgets, audit,
          # guardrails (the flagged requests of 7 days, through the guardrail index), cache, policies and tools.
          ("/console/requests", ""), ("/console/requests", "project=proj03"),
          ("/console/requests", "model=openai/gpt-4.1-mini"), ("/console/requests", "status=error"),
          ("/console/requests", "min_cost=0.001&max_cost=0.01"), ("/console/requests", "guardrail=block"),
          ("/console/requests", "project=proj03&guardrail=any"), ("/console/keys", ""),
          ("/console/budgets", ""), ("/console/audit", ""), ("/console/guardrails", ""), ("/console/cache", ""),
          ("/console/policies", ""), ("/console/tools", ""))


async def seed(gw: Any) -> None:
    """What an operator's gateway holds beside the log: the log's projects and keys (the same ids, so the keys
    page reads real last use and spend), a budget and a limit per project, and 300 audit entries."""
    from interlock.core.principal import Principal
    from interlock.governance import ops
    from interlock.governance.audit import AuditLog
    from interlock.governance.model import ApiKey

    store = gw.governance.store
    if await store.fetch("SELECT 1 FROM gov_projects WHERE id = ?", (PROJECTS[0],)):
        return  # seeded by an earlier run over the same state
    audit = AuditLog(store)
    admin = Principal("admin", "ik-bench")
    for project in PROJECTS:
        await ops.create_project(store, {"id": project})
        for k in range(5):
            key = ApiKey(f"key_{project}_{k}", project, f"key {k}", "ik-bench", f"{project}-{k}", created_at=time.time())
            await store.add_key(key)
            await audit.record(admin, "console", "key.create", "key", key.id, project=project, after=key.to_json())
        await ops.create_budget(store, {"scope": "project", "subject": project, "amount_usd": 500, "period": "daily"})
        await ops.create_limit(store, {"scope": "project", "subject": project, "rpm": 6000})
    for i in range(300 - 5 * len(PROJECTS)):
        await audit.record(admin, "api", "project.update", "project", PROJECTS[i % len(PROJECTS)],
                           project=PROJECTS[i % len(PROJECTS)], before={"name": "a"}, after={"name": "b"})
    await gw.governance.poll()


def served(home: Path, postgres: str | None, loads: int) -> list[tuple[str, float, float, float]]:
    """The pages as a browser gets them: a Gateway over the generated state, a session cookie, the RSGI entry."""
    import os

    from interlock.app import Gateway
    from interlock.config import load_settings
    from interlock.console.sessions import COOKIE
    from interlock.vendors.registry import VENDOR_TABLE

    (home / "bench.yaml").write_text(GATEWAY_CONFIG + (f"store: {postgres}\n" if postgres else ""))
    os.environ.setdefault("INTERLOCK_MASTER_KEY", MASTER_KEY)
    settings = load_settings(home / "bench.yaml", vendor_table=VENDOR_TABLE, environ={"INTERLOCK_HOME": str(home)})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gw = Gateway(settings)  # outside the loop: it loads governance synchronously

    async def run() -> list[tuple[str, float, float, float]]:
        route = gw.router.match("/console/overview")
        page: Any = getattr(route.handler, "__self__", None) if route is not None else None
        if page is None:
            raise SystemExit("the console is not served by this gateway")
        await seed(gw)
        token, _ = await page.sessions.start(os.environ["INTERLOCK_MASTER_KEY"])
        cookie = f"{COOKIE}={token}"
        out = []
        for path, query in SERVED:
            times = []
            for _ in range(loads + 1):
                proto = Proto()
                t = time.perf_counter()
                await gw.__rsgi__(Scope(path, query, cookie), proto)  # type: ignore[arg-type]
                if proto.status != 200:
                    raise SystemExit(f"{path}?{query} answered {proto.status}")  # every page must render
                times.append((time.perf_counter() - t) * 1000)
            out.append((f"{path}{'?' + query if query else ''} (admin, through the gateway)", times[0], statistics.median(times[1:]),
                        p95(times[1:])))
        return out

    try:
        return loop.run_until_complete(run())
    finally:
        loop.run_until_complete(gw.obs.store.close())
        loop.run_until_complete(gw.http.close())
        gw.store.close()
        loop.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def measure(store: LogStore, loads: int) -> list[tuple[str, float, float, float]]:
    env = make_environment(load_static())
    overview = OverviewPage(env, None, store, lambda: [])  # type: ignore[arg-type]
    spend = SpendPage(env, None, store, budgets)  # type: ignore[arg-type]
    out = []
    for label, run in variants(overview, spend, env):
        t = time.perf_counter()
        await run()
        cold = (time.perf_counter() - t) * 1000
        times = []
        for _ in range(loads):
            t = time.perf_counter()
            await run()
            times.append((time.perf_counter() - t) * 1000)
        out.append((label, cold, statistics.median(times), p95(times)))
    return out


async def run_pg(url: str, rows: int, loads: int) -> tuple[int, list[tuple[str, float, float, float]]]:
    from interlock.ledger.pgstore import PostgresLog

    have = await generate_pg(url, rows)
    log = PostgresLog(url)
    try:
        return have, await measure(log, loads)
    finally:
        await log.close()


async def run_sqlite(path: Path, loads: int) -> list[tuple[str, float, float, float]]:
    store = SQLiteStore(path)
    try:
        return await measure(SQLiteLog(store), loads)
    finally:
        store.close()


def report(kind: str, rows: int, loads: int, results: list[tuple[str, float, float, float]]) -> bool:
    print(f"\n{kind} request log of {rows:,} rows; {loads} loads per page after the first, in process.\n")
    print("| page (rollup reads + render; last rows: the whole server path) | cold (first load) | median | p95 | "
          "target p95 ≤ 200 ms |")
    print("|---|---|---|---|---|")
    ok = True
    for label, cold, median, high in results:
        met = high <= 200.0
        ok = ok and met
        print(f"| `{label}` | {cold:.1f} ms | {median:.1f} ms | {high:.1f} ms | {'met' if met else '**missed**'} |")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, help="a SQLite file to keep, reused when it already holds rows")
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument("--postgres", metavar="URL", help="the log in this PostgreSQL database instead of SQLite")
    args = parser.parse_args()
    if args.postgres:
        t = time.perf_counter()
        have, results = asyncio.run(run_pg(args.postgres, args.rows, args.loads))
        home = Path(tempfile.mkdtemp(prefix="interlock-overview-bench-"))
        results += served(home, args.postgres, args.loads)
        print(f"ready and measured in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        report("PostgreSQL", have, args.loads, results)
        return
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="interlock-overview-bench-")
        args.db = Path(tmp.name) / "interlock.db"
    have = 0
    if args.db.exists():
        with sqlite3.connect(args.db) as conn:
            have = conn.execute("SELECT coalesce(max(rowid), 0) FROM requests").fetchone()[0]
    if have:
        print(f"reusing {args.db} ({have:,} rows)", file=sys.stderr)
    else:
        args.db.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {args.rows:,} rows in {args.db}", file=sys.stderr)
        t = time.perf_counter()
        generate_sqlite(args.db, args.rows)
        print(f"generated in {time.perf_counter() - t:.0f} s, {args.db.stat().st_size / 1e9:.2f} GB", file=sys.stderr)
        have = args.rows
    results = asyncio.run(run_sqlite(args.db, args.loads))
    results += served(args.db.parent, None, args.loads)
    report("SQLite", have, args.loads, results)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
