"""Governance counters in Redis and definitions in PostgreSQL: several processes, one set of counters."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from interlock.core.errors import BudgetExceeded, GatewayError, RateLimited
from interlock.core.vendor import Timeouts
from interlock.governance import ops
from interlock.governance.counters import RedisCounters
from interlock.governance.schema import SCHEMA_VERSION
from interlock.governance.service import RESERVATION_MARGIN_S, Governance, request_lifetime
from interlock.governance.store import PostgresGovStore, SQLiteGovStore
from tests import pg_util
from tests.conftest import MASTER_KEY, GatewayProcess, at_minute_start, clean_env, free_port, start_gateway
from tests.fake_clock import FakeClock
from tests.test_governance_gateway import call, chat
from tests.test_governance_util import REDIS_URL, SECRET, bill, context, governance, request

redis_asyncio = pytest.importorskip("redis.asyncio")
redis_exceptions = pytest.importorskip("redis.exceptions")


@pytest.fixture
def pg_db() -> Iterator[str]:
    name = pg_util.create_database()
    yield pg_util.url(name)
    pg_util.drop_database(name)


async def _cleanup(prefix: str) -> None:
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_two_replicas_share_one_hard_budget_without_overshoot(tmp_path: Path) -> None:
    clock = FakeClock()  # one clock for both replicas: the same minute window
    a = governance(tmp_path, redis_url=REDIS_URL, clock=clock)
    b = governance(tmp_path, redis_url=REDIS_URL, clock=clock)
    assert a.redis is not None and b.redis is not None
    b.redis.prefix = a.redis.prefix
    try:
        await ops.create_project(a.store, {"id": "acme"})
        _, plaintext, _ = await ops.create_key(a.store, SECRET, {"project": "acme"})
        await ops.create_budget(a.store, {"scope": "project", "subject": "acme", "amount_usd": "0.01"})
        await a.poll()
        await b.poll()
        spent = 0
        admitted = 0

        async def one(gov: object) -> None:
            nonlocal spent, admitted
            assert gov is a or gov is b
            ctx = context(gov, plaintext)  # type: ignore[arg-type]
            try:
                res = await gov.admit(ctx, request(max_tokens=100))  # type: ignore[attr-defined]
            except BudgetExceeded:
                return
            admitted += 1
            await asyncio.sleep(random.random() / 50)
            spent += bill(ctx, 10, random.randint(50, 100)).picousd
            gov.settle(ctx, res)  # type: ignore[attr-defined]

        await asyncio.gather(*(one(random.choice((a, b))) for _ in range(200)))
        await asyncio.gather(*a._tasks, *b._tasks)
        budget = next(iter(a.defs.budgets.values()))
        assert admitted > 40 and spent <= budget.amount_micro * 1_000_000
        status = await a.budget_status(budget)
        assert status["reserved_usd"] == "0.000000"
        assert round(float(status["spent_usd"]) * 1e9) == -(-spent // 1000) or abs(
            float(status["spent_usd"]) * 1e12 - spent) < admitted * 1000
    finally:
        await _cleanup(a.redis.prefix)


async def test_redis_rate_limit_is_exact_across_replicas(tmp_path: Path) -> None:
    clock = FakeClock()  # one clock for both replicas: the same minute window
    a = governance(tmp_path, redis_url=REDIS_URL, clock=clock)
    b = governance(tmp_path, redis_url=REDIS_URL, clock=clock)
    assert a.redis is not None and b.redis is not None
    b.redis.prefix = a.redis.prefix
    try:
        await ops.create_project(a.store, {"id": "acme"})
        _, plaintext, _ = await ops.create_key(a.store, SECRET, {"project": "acme", "limits": {"rpm": 25}})
        await a.poll()
        await b.poll()
        results = await asyncio.gather(*(g.admit(context(g, plaintext), request()) for g in [a, b] * 50),
                                       return_exceptions=True)
        assert sum(1 for r in results if isinstance(r, RateLimited)) == 75
    finally:
        await _cleanup(a.redis.prefix)


async def test_migrations_up_on_sqlite_and_postgresql(tmp_path: Path, pg_db: str) -> None:
    lite = SQLiteGovStore(tmp_path / "interlock.db")
    assert lite.migrate() == SCHEMA_VERSION and lite.migrate() == SCHEMA_VERSION  # idempotent
    pg = PostgresGovStore(pg_db)
    try:
        await ops.create_project(pg, {"id": "pg-proj"})
        assert (await pg.load()).projects["pg-proj"].id == "pg-proj"
        rows = await pg.fetch("SELECT max(version) FROM schema_migrations WHERE component = 'governance'")
        assert rows[0][0] == SCHEMA_VERSION
        await pg.add_spend({("bud_x", "", "2025-06"): 5})
        await pg.add_spend({("bud_x", "", "2025-06"): 7})
        assert await pg.spend(["2025-06"]) == {("bud_x", "", "2025-06"): 12}
    finally:
        await pg.close()
        await lite.close()


@pytest.mark.slow
def test_two_gateway_processes_share_redis_and_postgresql(tmp_path: Path, pg_db: str) -> None:
    prefix = f"itest-gw-{random.randrange(1 << 30)}:"
    config = (f"simulator: {{enabled: true, time_scale: 0}}\nstore: {pg_db}\n"
              f"redis: {{url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n")
    gws: list[GatewayProcess] = []
    try:
        # Replicas share the HMAC secret (INTERLOCK_SECRET), or a key made on one is unknown to the other.
        # Both replicas' clocks start one second into a minute: the 80 requests below all fall in one window.
        env = at_minute_start(clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_SECRET="shared-replica-secret"))
        gws = [start_gateway(tmp_path / f"g{i}", config, dict(env)) for i in range(2)]
        call(gws[0], "POST", "/admin/v1/projects", {"id": "shared"})
        _, _, key = call(gws[0], "POST", "/admin/v1/keys", {"project": "shared", "limits": {"rpm": 30}})
        time.sleep(1.2)  # the other gateway polls the definitions' version
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda i: chat(gws[i % 2], key["key"], max_tokens=5)[0], range(80)))
        assert statuses.count(200) == 30 and statuses.count(429) == 50
    finally:
        for gw in gws:
            gw.stop()
        asyncio.run(_cleanup(prefix))


async def test_redis_settle_frees_the_slot_corrects_tokens_and_releases_the_budget(tmp_path: Path) -> None:
    gov = governance(tmp_path, redis_url=REDIS_URL)
    assert gov.redis is not None
    try:
        await ops.create_project(gov.store, {"id": "acme"})
        _, plaintext, _ = await ops.create_key(gov.store, SECRET, {
            "project": "acme", "limits": {"rpm": 100, "tpm": 1000, "concurrent": 1}})
        await ops.create_budget(gov.store, {"scope": "project", "subject": "acme", "amount_usd": 1})
        await gov.poll()
        held = context(gov, plaintext)
        res = await gov.admit(held, request(max_tokens=100))
        with pytest.raises(RateLimited) as err:
            await gov.admit(context(gov, plaintext), request(max_tokens=100))
        assert "concurrent" in err.value.message
        bill(held, 10, 20)
        gov.settle(held, res)
        await asyncio.gather(*gov._tasks)
        ctx = context(gov, plaintext)
        res2 = await gov.admit(ctx, request(max_tokens=100))
        headers = dict(ctx.gov_headers or [])
        assert headers["x-ratelimit-remaining-tokens"] == str(1000 - 30 - (100 + 25))  # actual 30 tokens, then 100 + the prompt bound
        assert headers["x-ratelimit-remaining-requests"] == str(100 - 2)  # two admitted; the refusal counted nothing
        bill(ctx, 10, 20)
        gov.settle(ctx, res2)
        await asyncio.gather(*gov._tasks)
        status = await gov.budget_status(next(iter(gov.defs.budgets.values())))
        assert status["reserved_usd"] == "0.000000" and status["spent_usd"] == "0.000100"
    finally:
        await _cleanup(gov.redis.prefix)
        await gov.redis.close()
        await gov.store.close()


# -------------------------------------------------------------- outages: reservations expire, spent is reconciled


async def _budget_project(gov: Governance, amount: str = "1") -> str:
    await ops.create_project(gov.store, {"id": "acme"})
    _, plaintext, _ = await ops.create_key(gov.store, SECRET, {"project": "acme"})
    await ops.create_budget(gov.store, {"scope": "project", "subject": "acme", "amount_usd": amount})
    await gov.poll()
    return str(plaintext)


def _dead_counters(prefix: str) -> RedisCounters:
    """Counters pointed at a closed port: every call fails as during a Redis outage."""
    return RedisCounters(f"redis://127.0.0.1:{free_port()}/0", prefix)


async def test_reservation_of_a_request_that_never_settles_expires_at_its_deadline(tmp_path: Path) -> None:
    gov = governance(tmp_path, redis_url=REDIS_URL)
    assert gov.redis is not None
    try:
        key = await _budget_project(gov)
        ctx = context(gov, key)
        res = await gov.admit(ctx, request(max_tokens=1000))
        assert res is not None
        budget = next(iter(gov.defs.budgets.values()))
        reserved = float((await gov.budget_status(budget))["reserved_usd"])
        assert reserved > 0
        # The reservation carries the request's deadline: the routing deadline, the vendor's total timeout, a margin.
        (bkey,) = [k for kind, k, *_ in res.checks if kind == "b"]
        members = await gov.redis.client.zrange(gov.redis.prefix + bkey + ":r", 0, -1, withscores=True)
        assert len(members) == 1 and members[0][0].decode().startswith(f"r:{ctx.id}:")
        assert members[0][1] == pytest.approx(gov.clock.time() + request_lifetime(ctx), abs=1e-3)
        assert request_lifetime(ctx) == 120 + Timeouts().total + RESERVATION_MARGIN_S
        # The request never settles (its gateway died). Before the deadline the money stays reserved...
        checks = [(kind, k, limit, 0, seed, expire) for kind, k, limit, _, seed, expire in res.checks]
        _, used = await gov.redis.admit(checks, "probe-1", gov.clock.time())
        assert used == [round(reserved * 1e9)]
        # ...after it, the next admit of that budget releases it.
        _, used = await gov.redis.admit(checks, "probe-2", members[0][1] + 1)
        assert used == [0]
        assert (await gov.budget_status(budget))["reserved_usd"] == "0.000000"
        # A settle arriving after all neither releases it twice nor loses the spend.
        bill(ctx, 1000, 1000)
        gov.settle(ctx, res)
        await asyncio.gather(*gov._tasks)
        status = await gov.budget_status(budget)
        assert (status["spent_usd"], status["reserved_usd"]) == ("0.003000", "0.000000")
    finally:
        await _cleanup(gov.redis.prefix)
        await gov.redis.close()
        await gov.store.close()


async def test_settles_missed_during_an_outage_reach_redis_once_it_is_back(tmp_path: Path) -> None:
    gov = governance(tmp_path, redis_url=REDIS_URL)
    live = gov.redis
    assert live is not None
    try:
        key = await _budget_project(gov)
        budget = next(iter(gov.defs.budgets.values()))
        admitted = []
        for _ in range(3):
            ctx = context(gov, key)
            admitted.append((ctx, await gov.admit(ctx, request(max_tokens=100))))
        # Redis goes away while the requests are answered: their settles fail.
        gov.redis = _dead_counters(live.prefix)
        for ctx, res in admitted:
            bill(ctx, 1000, 500)  # 0.002 USD each
            gov.settle(ctx, res)
        await asyncio.gather(*gov._tasks)
        assert len(gov.unsettled) == 3
        await gov.retry_settles()  # still down: they wait
        assert len(gov.unsettled) == 3
        await gov.flush()  # the durable store (like the request log) has the spend all along
        period = gov._period_keys(gov.clock.time())[budget.period][0]
        assert (await gov.store.spend([period]))[(budget.id, "", period)] == 6_000_000
        await gov.redis.close()
        gov.redis = live
        status = await gov.budget_status(budget)
        assert status["spent_usd"] == "0.000000" and status["reserved_usd"] != "0.000000"  # Redis lags the store
        await gov.retry_settles()
        assert gov.unsettled == []
        status = await gov.budget_status(budget)
        assert (status["spent_usd"], status["reserved_usd"]) == ("0.006000", "0.000000")
        await gov.retry_settles()  # nothing left: nothing charged twice
        assert (await gov.budget_status(budget))["spent_usd"] == "0.006000"
    finally:
        gov.redis = live
        await _cleanup(live.prefix)
        await live.close()
        await gov.store.close()


async def test_a_settle_whose_reply_is_lost_is_retried_and_charged_once(tmp_path: Path) -> None:
    gov = governance(tmp_path, redis_url=REDIS_URL)
    redis = gov.redis
    assert redis is not None
    real = redis._settle

    async def reply_lost(keys: list[str], args: list[object]) -> object:
        await real(keys=keys, args=args)  # Redis ran the script...
        raise redis_exceptions.ConnectionError("Connection reset by peer")  # ...but the answer never arrived

    try:
        key = await _budget_project(gov)
        budget = next(iter(gov.defs.budgets.values()))
        ctx = context(gov, key)
        res = await gov.admit(ctx, request(max_tokens=100))
        redis._settle = reply_lost
        bill(ctx, 1000, 500)
        gov.settle(ctx, res)
        await asyncio.gather(*gov._tasks)
        redis._settle = real
        assert len(gov.unsettled) == 1
        await gov.retry_settles()
        assert gov.unsettled == []
        status = await gov.budget_status(budget)
        assert (status["spent_usd"], status["reserved_usd"]) == ("0.002000", "0.000000")
    finally:
        await _cleanup(redis.prefix)
        await redis.close()
        await gov.store.close()


async def test_unreachable_counters_answer_a_generic_503_and_log_the_detail(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gov = governance(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert gov.redis is not None
    try:
        key = await _budget_project(gov)
        with caplog.at_level(logging.ERROR, logger="interlock.governance"):
            for _ in range(3):
                ctx = context(gov, key)
                with pytest.raises(GatewayError) as info:
                    await gov.admit(ctx, request())
                err = info.value
                assert (err.status, err.code) == (503, "governance_unavailable")
                assert "127.0.0.1" not in err.message and "rrno" not in err.message
                assert "refused" not in err.message.lower()
                assert err.message == ("The gateway cannot reach its rate-limit and budget counters; the request was "
                                       "not sent. Retry later.")
        # The operator's log has the detail once, when the counters were lost, not once per refused request.
        logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(logged) == 1 and "127.0.0.1" in logged[0] and "unreachable" in logged[0], logged
        assert gov.redis.collect()[0][3] == [({}, 0.0)]
    finally:
        await gov.redis.close()
        await gov.store.close()


async def test_losing_and_regaining_the_counters_is_one_metric_and_log_transition_each(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gov = governance(tmp_path, redis_url=REDIS_URL)
    redis = gov.redis
    assert redis is not None
    real = redis._admit

    async def down(*args: object, **kwargs: object) -> object:
        raise redis_exceptions.ConnectionError("Connection refused")

    def metrics() -> dict[str, object]:
        return {name: samples for name, _, _, samples in redis.collect()}

    try:
        key = await _budget_project(gov)
        await gov.admit(context(gov, key), request())
        assert metrics()["interlock_governance_counters_up"] == [({}, 1.0)]
        with caplog.at_level(logging.INFO, logger="interlock.governance"):
            redis._admit = down
            for _ in range(4):
                with pytest.raises(GatewayError):
                    await gov.admit(context(gov, key), request())
            assert metrics()["interlock_governance_counters_up"] == [({}, 0.0)]
            redis._admit = real
            await gov.admit(context(gov, key), request())  # recovers on its own with the next call
        assert metrics() == {
            "interlock_governance_counters_up": [({}, 1.0)],
            "interlock_governance_counters_transitions": [({"to": "up"}, 1.0), ({"to": "down"}, 1.0)]}
        lines = [(r.levelname, r.getMessage()) for r in caplog.records]
        assert [level for level, _ in lines] == ["ERROR", "WARNING"], lines
        assert "unreachable" in lines[0][1] and "answer again" in lines[1][1]
        # A readiness probe notices the loss too (and the return, with no traffic at all).
        redis.client.ping, ping = down, redis.client.ping
        with pytest.raises(redis_exceptions.ConnectionError):
            await redis.ping()
        assert redis.up is False
        redis.client.ping = ping
        await redis.ping()
        assert redis.up is True and redis.transitions == [2, 2]
    finally:
        redis._admit = real
        await _cleanup(redis.prefix)
        await redis.close()
        await gov.store.close()
