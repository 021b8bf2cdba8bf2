"""The response cache in the request log and the spend reports.

Every record says what the response cache did (``response_cache``: NULL when it was not on, else
hit / miss / bypass) and, on a hit, what the replayed answer cost when it was made
(``cache_saved_picousd``); the spend rollups sum that per batch (``saved_picousd``, ``cache_hits``)
on both stores. Hits are made by the real cache (``cache.response_cache``) over a real routing world.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from interlock.api.admin_logs import AdminLogs
from interlock.cache.response_cache import ResponseCache, Ticket
from interlock.cache.settings import CacheRules, CacheSettings
from interlock.cache.store import Entry, MemoryBackend
from interlock.core.cache import BYPASS, HIT, MISS
from interlock.core.context import RequestContext
from interlock.core.errors import InvalidRequest
from interlock.core.pricing import Usage
from interlock.core.principal import Principal
from interlock.ledger import migrations, record
from interlock.ledger.filters import log_query
from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.record import CACHE_COLUMNS, GUARDRAIL_COLUMN, Redactor, build_row
from interlock.ledger.rowcodec import R_DETAIL, ROW_COLUMNS, from_spill, row_record, spill_line
from interlock.ledger.schema import ROLLUP_KEYS, LogQuery, SpendQuery
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.writer import LogStore
from interlock.observability.metrics import Registry
from interlock.observability.requests import RequestMetrics
from interlock.pipeline.settle import price_openai_usage, price_usage
from interlock.state.migrations import Schema
from interlock.state.sqlite import SQLiteDB
from tests.conftest import MASTER_KEY
from tests.inprocess import Proto, Scope, running_gateway
from tests.pg_util import create_database, drop_database, url
from tests.test_routing_fixtures import MODEL, chat, simulator, world

#: The simulated route's price (USD per million tokens): a hit saves a cost that is not 0.
PRICED = {"sima": {"price": {"input": 2.0, "output": 8.0}}}


def principal(project: str) -> Principal:
    return Principal("project", "ik-Vh3kq9Zr", project=project, key_id=f"key_{project}")


def response_cache(fraction: float = 0.0) -> ResponseCache:
    rules = CacheRules(enabled=True, allow_temperature=True, hit_cost_fraction=fraction)
    return ResponseCache(CacheSettings(rules=rules), MemoryBackend(1 << 20, time.time), time.time)


async def through(w: Any, cache: ResponseCache | None, project: str = "acme", **extra: Any) -> RequestContext:
    """One request as the pipeline runs it: routed, looked up, answered by the vendor or replayed, priced."""
    request = chat(**extra)
    ctx, canonical = w.context(request)
    ctx.principal = principal(project)
    if cache is not None:
        ctx.cache = await cache.lookup(ctx, canonical)
    ticket = ctx.cache
    if ticket is not None and ticket.status == HIT:
        data = ticket.completion().data
    else:
        data = (await w.dispatcher.complete(ctx, canonical, {})).data
    ctx.first_byte = time.perf_counter()
    price_openai_usage(ctx, data["usage"])
    if ticket is not None and ticket.storing:
        ticket.store_completion(ctx, orjson.dumps(data))
        await asyncio.sleep(0)  # the store is a task
    w.engine.observe(ctx)
    return ctx


async def miss_then_hit(fraction: float = 0.0, project: str = "acme") -> tuple[RequestContext, RequestContext]:
    w = world({"sima": simulator()}, routes=PRICED)
    cache = response_cache(fraction)
    first = await through(w, cache, project)
    second = await through(w, cache, project)
    assert first.cache is not None and first.cache.status == MISS
    assert second.cache is not None and second.cache.status == HIT
    return first, second


def bypassed(ticket_of: RequestContext, cache: ResponseCache) -> Ticket:
    ticket = Ticket(cache, cache.settings.rules, "", 0, None)
    ticket.status, ticket.storing, ticket.reason = BYPASS, False, "temperature"
    ticket_of.cache = ticket
    return ticket


def row_of(ctx: RequestContext, level: str = "metadata") -> tuple[Any, ...]:
    return build_row(ctx, level, False, Redactor())


# ----------------------------------------------------------------- the record


async def test_a_hit_records_what_it_saved_and_its_charged_cost() -> None:
    first, hit = await miss_then_hit()
    assert first.cost is not None and first.cost.picousd > 0
    assert hit.target is not None and first.target is not None and hit.target.key == first.target.key
    assert hit.attempts == [] and record._answered_row(hit, "metadata", False) is None  # the full path
    rec = row_record(row_of(hit))
    assert rec["response_cache"] == HIT and rec["cache_saved_picousd"] == first.cost.picousd
    assert rec["cost_picousd"] == 0 and rec["cost_usd"] == 0.0  # the charged fraction: none
    assert rec["cache_saved_usd"] == first.cost.picousd / 1e12
    assert rec["model"] == MODEL and rec["vendor"] == "sima" and rec["attempts"] is None
    # The vendor's prompt cache is another field: nothing was read from it.
    assert rec["cache_hit"] == 0 and rec["status"] == 200


async def test_a_hit_charged_a_fraction_logs_the_fraction_as_its_cost() -> None:
    first, hit = await miss_then_hit(fraction=0.25)
    assert first.cost is not None
    rec = row_record(row_of(hit))
    assert rec["cache_saved_picousd"] == first.cost.picousd
    assert rec["cost_picousd"] == round(first.cost.picousd * 0.25)


async def test_a_hit_whose_route_is_gone_is_logged_without_a_target() -> None:
    """The stored answer's route left the plan: no target, the saving is the stored cost."""
    w = world({"sima": simulator()}, routes=PRICED)
    ctx, _ = w.context(chat())
    ctx.principal = principal("acme")
    cache = response_cache()
    ticket = Ticket(cache, cache.settings.rules, "k", 60, Entry("completion", b"{}", (), time.time(), "gone/m", 5_000))
    ticket.status = HIT
    ctx.cache = ticket
    ctx.target = None
    price_usage(ctx, Usage(input_tokens=3, output_tokens=4))
    rec = row_record(row_of(ctx))
    assert (rec["response_cache"], rec["cache_saved_picousd"], rec["cost_picousd"]) == (HIT, 5_000, 0)
    assert rec["model"] is None and rec["vendor"] is None and rec["input_tokens"] == 3


@pytest.mark.parametrize("level", ["metadata", "full"])
async def test_a_miss_and_a_bypass_are_recorded_by_either_path(level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = await miss_then_hit()
    w = world({"sima": simulator()}, routes=PRICED)
    other = await through(w, None)
    bypassed(other, response_cache())
    plain = await through(w, None)
    fast = {name: record._answered_row(ctx, level, False) for name, ctx in
            (("miss", first), ("bypass", other), ("off", plain))}
    assert all(row is not None for row in fast.values())  # no content captured: the fast path at either level
    with monkeypatch.context() as patched:
        patched.setattr(record, "_answered_row", lambda *_: None)
        full = {"miss": row_of(first, level), "bypass": row_of(other, level), "off": row_of(plain, level)}
    for name, row in full.items():
        rec = row_record(row)
        assert rec["response_cache"] == (None if name == "off" else name), name
        assert rec["cache_saved_picousd"] is None and rec["cache_saved_usd"] is None, name
        fast_row = fast[name]
        if fast_row is not None:  # the fast path writes the full path's row
            assert fast_row[:R_DETAIL] == row[:R_DETAIL], name


# ----------------------------------------------------------------- metrics


async def test_the_cost_counter_counts_what_a_hit_was_charged() -> None:
    first, hit = await miss_then_hit(fraction=0.5)
    assert first.cost is not None and hit.cost is not None
    metrics = RequestMetrics(Registry())
    metrics.observe(first)
    metrics.observe(hit)
    charged = round(first.cost.picousd * 0.5)
    assert hit.cost.picousd == charged
    assert metrics.cost.values[("sima", MODEL)] == pytest.approx((first.cost.picousd + charged) / 1e12)


# ----------------------------------------------------------------- stores


async def logged_traffic() -> list[tuple[Any, ...]]:
    """Rows of: acme 1 miss + 2 hits, beta 1 hit + 1 bypass, gamma 1 request with the cache off."""
    w = world({"sima": simulator()}, routes=PRICED)
    cache = response_cache()
    ctxs = [await through(w, cache, "acme") for _ in range(3)]
    ctxs += [await through(w, cache, "beta"), await through(w, cache, "beta")]
    bypass = await through(w, None, "beta", temperature=1)
    bypassed(bypass, cache)
    ctxs += [bypass, await through(w, None, "gamma")]
    assert [c.cache.status if c.cache is not None else None for c in ctxs] == [
        MISS, HIT, HIT, MISS, HIT, BYPASS, None]
    return [row_of(c) for c in ctxs]


async def test_rollups_sum_savings_and_hits_per_project_and_model(log_store: LogStore) -> None:
    rows = await logged_traffic()
    saved = {r[0]: r[ROW_COLUMNS.index("cache_saved_picousd")] for r in rows}
    cost = rows[0][ROW_COLUMNS.index("cost_picousd")]
    assert cost > 0 and sorted(v for v in saved.values() if v != "") == [cost, cost, cost]
    assert await log_store.write(rows) == len(rows)
    by_project = {r["project"]: r for r in await log_store.spend(SpendQuery(group_by="project"))}
    assert {p: (r["requests"], r["cache_hits"], r["saved_picousd"]) for p, r in by_project.items()} == {
        "acme": (3, 2, 2 * cost), "beta": (3, 1, cost), "gamma": (1, 0, 0)}
    assert by_project["acme"]["saved_usd"] == 2 * cost / 1e12
    assert by_project["acme"]["cost_picousd"] == cost  # the miss paid; the hits were free
    by_model = await log_store.spend(SpendQuery(group_by="model"))
    assert [(r["model"], r["cache_hits"], r["saved_picousd"]) for r in by_model] == [(MODEL, 3, 3 * cost)]
    # spend_daily (a filter and a grouping) agrees with spend_dims.
    filtered = await log_store.spend(SpendQuery(group_by="model", project="acme"))
    assert [(r["cache_hits"], r["saved_usd"]) for r in filtered] == [(2, 2 * cost / 1e12)]
    # A replayed batch counts nothing twice.
    assert await log_store.write(rows) == 0
    day = await log_store.spend(SpendQuery())
    assert [(r["cache_hits"], r["saved_picousd"]) for r in day] == [(3, 3 * cost)]


async def test_the_log_filters_by_what_the_cache_did(log_store: LogStore) -> None:
    rows = await logged_traffic()
    await log_store.write(rows)

    async def projects(what: str) -> list[tuple[str, str | None]]:
        found = await log_store.query(LogQuery(response_cache=what, ascending=True))
        return [(r["project"], r["response_cache"]) for r in found]

    assert await projects("hit") == [("acme", HIT), ("acme", HIT), ("beta", HIT)]
    assert await projects("miss") == [("acme", MISS), ("beta", MISS)]
    assert await projects("bypass") == [("beta", BYPASS)]
    assert await projects("off") == [("gamma", None)]
    hit = await log_store.get(rows[1][0])
    assert hit is not None and hit["cache_saved_usd"] == hit["cache_saved_picousd"] / 1e12 > 0


def test_rows_spilled_before_the_cache_columns_replay_as_cache_off() -> None:
    first = build_row(RequestContext("openai.chat"), "metadata", False, Redactor())
    old = [*orjson.loads(spill_line(first))]
    # ... and before the guardrail column, which follows them.
    del old[1 + ROW_COLUMNS.index(CACHE_COLUMNS[0]):1 + ROW_COLUMNS.index(GUARDRAIL_COLUMN) + 1]
    assert from_spill(old) == first  # the cache was off: both "" as a new row would hold them
    assert from_spill(orjson.loads(spill_line(first))) == first
    assert from_spill(old[:-1]) is None


# ----------------------------------------------------------------- migrations

T0 = 1_750_000_000.0  # 2025-06-15
#: A row as the previous version wrote it (no cache columns), and its rollups.
PREVIOUS_COLUMNS = tuple(c for c in ROW_COLUMNS if c not in (*CACHE_COLUMNS, GUARDRAIL_COLUMN))
PREVIOUS_VALUES = (
    "req_prev", T0, "acme", "key_a", MODEL, MODEL, "sima", 200, 9_000, 10, 0, 5, None, "openai.chat", 0, None, None,
    orjson.dumps([2, None, 500_000, 80_000, None, None, "m", None, None, None, None, 0, 0, 0, None, None, None, None,
                  "metadata"]).decode())
PREVIOUS_ROLLUP = ("2025-06-15", "acme", "key_a", MODEL, "sima", "*", 1, 0, 10, 0, 5, 9_000)
#: Its spend_dims rows, as the previous writer left them.
PREVIOUS_DIMS = [
    f"INSERT INTO spend_dims (day, dim, value, {', '.join(migrations.V1_ROLLUP_VALUES)}) "
    f"VALUES ('2025-06-15', '{dim}', '{value}', 1, 0, 10, 0, 5, 9000)"
    for dim, value in (("*", "*"), ("project", "acme"), ("key_id", "key_a"), ("model", MODEL), ("vendor", "sima"))]


def check_previous(rec: dict[str, Any] | None) -> None:
    assert rec is not None and rec["cost_picousd"] == 9_000 and rec["duration_ms"] == 500.0
    assert {k: rec[k] for k in ("response_cache", "cache_saved_picousd", "cache_saved_usd")} == dict.fromkeys(
        ("response_cache", "cache_saved_picousd", "cache_saved_usd"))


async def check_upgraded_log(log: LogStore) -> None:
    check_previous(await log.get("req_prev"))
    _, hit = await miss_then_hit()
    row = row_of(hit)
    assert await log.write([row]) == 1
    assert [r["id"] for r in await log.query(LogQuery(response_cache="hit"))] == [row[0]]
    assert [r["id"] for r in await log.query(LogQuery(response_cache="off"))] == ["req_prev"]
    saved = row[ROW_COLUMNS.index("cache_saved_picousd")]
    by_project = await log.spend(SpendQuery(group_by="project", since="2025-06-15"))
    assert [(r["project"], r["requests"], r["cache_hits"], r["saved_picousd"]) for r in by_project] == [
        ("acme", 2, 1, saved)]
    old_day = await log.spend(SpendQuery(until="2025-06-15"))
    assert [(r["requests"], r["cost_picousd"], r["saved_picousd"], r["cache_hits"]) for r in old_day] == [
        (1, 9_000, 0, 0)]


async def test_a_sqlite_log_of_the_previous_version_gains_the_cache_columns(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    previous = Schema("ledger", sqlite=[s for s in migrations.SCHEMA.sqlite if s[0] < 6])
    SQLiteDB(db, schemas=(previous,)).close()
    with sqlite3.connect(db) as conn:
        assert "response_cache" not in {r[1] for r in conn.execute("PRAGMA table_info(requests)")}
        conn.execute(f"INSERT INTO requests ({', '.join(PREVIOUS_COLUMNS)}) VALUES "
                     f"({', '.join('?' for _ in PREVIOUS_COLUMNS)})", PREVIOUS_VALUES)
        conn.execute(f"INSERT INTO spend_daily ({', '.join(ROLLUP_KEYS + migrations.V1_ROLLUP_VALUES)}) VALUES "
                     f"({', '.join('?' for _ in PREVIOUS_ROLLUP)})", PREVIOUS_ROLLUP)
        for sql in PREVIOUS_DIMS:
            conn.execute(sql)
    store = SQLiteStore(db)
    try:
        assert store.schema_version() == 8  # the cache's migration, the usage rollup's, the guardrail column's
        await check_upgraded_log(SQLiteLog(store))
    finally:
        store.close()


async def test_a_postgresql_log_of_the_previous_version_gains_the_cache_columns() -> None:
    name = create_database()
    try:
        conn = await asyncpg.connect(url(name))
        try:  # the schema as the previous version's migrations (1-6) left it
            await conn.execute("CREATE TABLE schema_migrations (component text NOT NULL, version integer NOT NULL, "
                               "applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))")
            for version, sql in migrations.POSTGRES:
                if version < 7:
                    assert isinstance(sql, str)
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (component, version) VALUES ('ledger', $1)",
                                       version)
            params = ", ".join(f"${i + 1}" + ("::text" if c == "detail" else "") for i, c in enumerate(PREVIOUS_COLUMNS))
            await conn.execute(f"INSERT INTO requests ({', '.join(PREVIOUS_COLUMNS)}) VALUES ({params})",
                               *PREVIOUS_VALUES)
            await conn.execute(f"INSERT INTO spend_daily ({', '.join(ROLLUP_KEYS + migrations.V1_ROLLUP_VALUES)}) "
                               f"VALUES ({', '.join(f'${i + 1}' for i in range(len(PREVIOUS_ROLLUP)))})",
                               *PREVIOUS_ROLLUP)
            for sql in PREVIOUS_DIMS:
                await conn.execute(sql)
        finally:
            await conn.close()
        log = PostgresLog(url(name))
        try:
            await check_upgraded_log(log)
        finally:
            await log.close()
        conn = await asyncpg.connect(url(name))
        try:
            assert await conn.fetchval("SELECT max(version) FROM schema_migrations WHERE component = 'ledger'") == 9
        finally:
            await conn.close()
    finally:
        drop_database(name)


# ----------------------------------------------------------------- the admin API


def test_the_response_cache_filter_is_checked() -> None:
    q, _ = log_query({"response_cache": "hit"})
    assert q.response_cache == HIT and log_query({"response_cache": "off"})[0].response_cache == "off"
    assert log_query({})[0].response_cache is None
    with pytest.raises(InvalidRequest) as err:
        log_query({"response_cache": "yes"})
    assert err.value.param == "response_cache" and err.value.status == 400


class Admin:
    kind = "admin"


class Auth:
    def authenticate(self, *_: Any) -> Admin:
        return Admin()


class Call:
    """Just enough of an exchange for the admin handlers: a path, a query, the JSON answer."""

    def __init__(self, path: str, query: str = "") -> None:
        self.path, self.query = path, query
        self.answer: tuple[int, Any] | None = None

    def header(self, name: str) -> str | None:
        return "Bearer admin" if name == "authorization" else None

    def json(self, status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> None:
        self.answer = status, orjson.loads(orjson.dumps(data))


async def test_the_admin_api_shows_the_cache_fields(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "interlock.db")
    try:
        log = SQLiteLog(store)
        rows = await logged_traffic()
        await log.write(rows)
        admin = AdminLogs(log, Auth())  # type: ignore[arg-type]
        listed = Call("/admin/v1/logs", "response_cache=hit&project=acme")
        await admin.list(listed)  # type: ignore[arg-type]
        assert listed.answer is not None and listed.answer[0] == 200
        assert [r["response_cache"] for r in listed.answer[1]["data"]] == [HIT, HIT]
        one = Call(f"/admin/v1/logs/{rows[1][0]}")
        await admin.detail(one)  # type: ignore[arg-type]
        assert one.answer is not None
        detail = one.answer[1]
        assert detail["response_cache"] == HIT and detail["cache_saved_usd"] == detail["cache_saved_picousd"] / 1e12
        spend = Call("/admin/v1/spend", "group_by=project")
        await admin.spend(spend)  # type: ignore[arg-type]
        assert spend.answer is not None
        body = spend.answer[1]
        acme = next(r for r in body["data"] if r["project"] == "acme")
        assert acme["cache_hits"] == 2 and acme["saved_usd"] == acme["saved_picousd"] / 1e12 > 0
        assert body["total_saved_usd"] == pytest.approx(sum(r["saved_usd"] for r in body["data"]))
        with pytest.raises(InvalidRequest) as err:
            await admin.list(Call("/admin/v1/logs", "response_cache=maybe"))  # type: ignore[arg-type]
        assert err.value.param == "response_cache"
    finally:
        store.close()


# ----------------------------------------------------------------- a gateway


def test_a_gateways_hits_reach_the_log_and_the_spend_report(tmp_path: Path) -> None:
    """The real pipeline: a miss, then a hit replayed by the cache stage, logged and rolled up."""
    config = ("simulator: {enabled: true, time_scale: 0}\ncache: {enabled: true}\n"
              "logging: {level: metadata, flush_interval: 0.05}\n")
    body = orjson.dumps({"model": "openai/gpt-4.1-mini", "temperature": 0,
                         "messages": [{"role": "user", "content": "cache me"}]})
    auth = {"authorization": f"Bearer {MASTER_KEY}", "host": "127.0.0.1:4000"}
    with running_gateway(config, tmp_path) as (gw, loop):

        def call(method: str, path: str, query: str = "", raw: bytes = b"") -> Proto:
            async def run() -> Proto:
                proto = Proto(raw)
                scope = Scope(method, path, {**auth, "content-type": "application/json",
                                             "content-length": str(len(raw))})
                scope.query_string = query
                await gw.__rsgi__(scope, proto)  # type: ignore[arg-type]
                return proto
            return loop.run_until_complete(run())

        answers = [call("POST", "/v1/chat/completions", raw=body) for _ in range(2)]
        assert [a.status for a in answers] == [200, 200]
        assert [a.headers.get("x-interlock-cache") for a in answers] == [MISS, HIT]
        writer = gw.obs.writer
        assert writer is not None
        loop.run_until_complete(writer.flush())
        ids = [a.headers["x-interlock-request-id"] for a in answers]
        records = [orjson.loads(b"".join(call("GET", f"/admin/v1/logs/{rid}").chunks)) for rid in ids]
        assert [r["response_cache"] for r in records] == [MISS, HIT]
        miss, hit = records
        assert miss["cost_picousd"] > 0 and miss["cache_saved_usd"] is None
        assert hit["cache_saved_picousd"] == miss["cost_picousd"] and hit["cost_picousd"] == 0
        assert hit["cache_saved_usd"] == miss["cost_usd"] and hit["model"] == miss["model"]
        listed = orjson.loads(b"".join(call("GET", "/admin/v1/logs", "response_cache=hit").chunks))
        assert [r["id"] for r in listed["data"]] == [ids[1]]
        spend = orjson.loads(b"".join(call("GET", "/admin/v1/spend", "group_by=model").chunks))
        assert [(r["model"], r["requests"], r["cache_hits"], r["saved_picousd"]) for r in spend["data"]] == [
            (miss["model"], 2, 1, miss["cost_picousd"])]
        assert spend["total_saved_usd"] == miss["cost_usd"]
