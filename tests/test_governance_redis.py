"""Governance counters in Redis and definitions in PostgreSQL: several processes, one set of counters."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from interlock.errors import BudgetExceeded, RateLimited
from interlock.governance import ops
from interlock.governance.schema import SCHEMA_VERSION
from interlock.governance.store import PostgresGovStore, SQLiteGovStore
from tests import pg_util
from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway
from tests.test_governance_gateway import call, chat
from tests.test_governance_util import REDIS_URL, SECRET, bill, context, governance, request

redis_asyncio = pytest.importorskip("redis.asyncio")


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
    a = governance(tmp_path, redis_url=REDIS_URL)
    b = governance(tmp_path, redis_url=REDIS_URL)
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
    a = governance(tmp_path, redis_url=REDIS_URL)
    b = governance(tmp_path, redis_url=REDIS_URL)
    assert a.redis is not None and b.redis is not None
    b.redis.prefix = a.redis.prefix
    try:
        await ops.create_project(a.store, {"id": "acme"})
        _, plaintext, _ = await ops.create_key(a.store, SECRET, {"project": "acme", "limits": {"rpm": 25}})
        await a.poll()
        await b.poll()
        if time.time() % 60 > 55:
            await asyncio.sleep(61 - time.time() % 60)
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
        rows = await pg.fetch("SELECT max(version) FROM governance_schema")
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
        gws = [start_gateway(tmp_path / f"g{i}", config, clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY,
                                                                    INTERLOCK_SECRET="shared-replica-secret"))
               for i in range(2)]
        call(gws[0], "POST", "/admin/v1/projects", {"id": "shared"})
        _, _, key = call(gws[0], "POST", "/admin/v1/keys", {"project": "shared", "limits": {"rpm": 30}})
        time.sleep(1.2)  # the other gateway polls the definitions' version
        if time.time() % 60 > 45:
            time.sleep(61 - time.time() % 60)
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
        if time.time() % 60 > 55:
            await asyncio.sleep(61 - time.time() % 60)
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
