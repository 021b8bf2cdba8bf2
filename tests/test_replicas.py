"""Replicas on one PostgreSQL store and one Redis: definitions changes reach every replica by pub/sub, and a
replica with another key-hashing secret refuses to start (issue: scale-out).

Gateways are real processes; the clients are the official OpenAI SDK and plain HTTP for the admin API.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from interlock.governance.auth import SecretMismatch, check_secret
from interlock.governance.propagate import Propagation
from interlock.governance.store import GovStore, PostgresGovStore, SQLiteGovStore
from tests import pg_util
from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway
from tests.test_governance_gateway import call
from tests.test_governance_util import REDIS_URL

redis_asyncio = pytest.importorskip("redis.asyncio")

MODEL = "openai/gpt-4.1-mini"


@pytest.fixture
def pg_db() -> Iterator[str]:
    name = pg_util.create_database()
    yield pg_util.url(name)
    pg_util.drop_database(name)


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"itest-replicas-{random.randrange(1 << 30)}:"
    yield value

    async def cleanup() -> None:
        client = redis_asyncio.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=value + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    asyncio.run(cleanup())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_store_keeps_the_first_secrets_verifier(kind: str, tmp_path: Path) -> None:
    name = pg_util.create_database() if kind == "postgresql" else ""
    stores: list[GovStore] = []

    def store() -> GovStore:
        s: GovStore = PostgresGovStore(pg_util.url(name)) if name else SQLiteGovStore(tmp_path / "interlock.db")
        stores.append(s)
        return s

    try:
        await check_secret(store(), b"secret-one-xyz", "here")
        await check_secret(store(), b"secret-one-xyz", "here")  # the same secret again: fine
        with pytest.raises(SecretMismatch) as info:
            await check_secret(store(), b"secret-two-xyz", "here")
        assert "INTERLOCK_SECRET" in str(info.value) and "xyz" not in str(info.value)
    finally:
        for s in stores:
            await s.close()
        if name:
            pg_util.drop_database(name)


def config(pg_db: str, prefix: str) -> str:
    # While subscribed the version is read every 30 s only (the catch-up): a change within 100 ms came by pub/sub.
    return (f"simulator: {{enabled: true, time_scale: 0}}\nstore: {pg_db}\n"
            f"redis: {{url: '{REDIS_URL}', key_prefix: '{prefix}'}}\ngovernance: {{poll_interval_s: 1}}\n")


def test_a_replica_with_another_secret_refuses_to_start(tmp_path: Path, pg_db: str, prefix: str) -> None:
    first = start_gateway(tmp_path / "a", config(pg_db, prefix),
                          clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_SECRET="the-replicas-secret"))
    try:
        other = start_gateway(tmp_path / "b", config(pg_db, prefix),
                              clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_SECRET="another-secret"), wait=False)
        assert other.proc.wait(30) != 0
        out = other.output()
        assert "another key-hashing secret" in out and "INTERLOCK_SECRET" in out and "Traceback" not in out
        assert "the-replicas-secret" not in out and "another-secret" not in out
        # The CLI refuses too: a key it made would be refused by every replica.
        cli = subprocess.run([sys.executable, "-m", "interlock", "projects", "create", "p1", "--config",
                              str(tmp_path / "b" / "interlock.yaml")], capture_output=True, text=True, timeout=60,
                             env=clean_env(INTERLOCK_SECRET="another-secret", INTERLOCK_HOME=str(tmp_path / "b")))
        assert cli.returncode == 2 and "INTERLOCK_SECRET" in cli.stderr, cli.stderr
    finally:
        first.stop()


def first_refusal(gw: GatewayProcess, key: str, deadline_s: float) -> float:
    """Seconds until ``key`` is refused on ``gw`` (polling every 2 ms), or raises at the deadline."""
    client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=5)
    start = time.perf_counter()
    while time.perf_counter() - start < deadline_s:
        try:
            client.models.list()
        except openai.AuthenticationError:
            return time.perf_counter() - start
        time.sleep(0.002)
    raise AssertionError(f"the key was still accepted after {deadline_s} s")


def test_a_change_on_one_replica_reaches_the_others_within_100_ms(tmp_path: Path, pg_db: str,
                                                                  prefix: str) -> None:
    env = clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_SECRET="shared-replica-secret")
    gws = [start_gateway(tmp_path / f"g{i}", config(pg_db, prefix), dict(env)) for i in range(3)]
    try:
        assert call(gws[0], "POST", "/admin/v1/projects", {"id": "acme"})[0] == 201
        waits = []
        for _ in range(5):
            status, _, made = call(gws[0], "POST", "/admin/v1/keys", {"project": "acme"})
            assert status == 201
            # Created on A: accepted on C once announced (C reads the version only every 30 s).
            client = openai.OpenAI(base_url=gws[2].base_url, api_key=made["key"], max_retries=0, timeout=5)
            start = time.perf_counter()
            while True:
                try:
                    client.models.list()
                    break
                except openai.AuthenticationError:
                    assert time.perf_counter() - start < 1.0, "a key made on A was not accepted on C"
                    time.sleep(0.002)
            assert call(gws[0], "POST", f"/admin/v1/keys/{made['id']}/revoke")[0] == 200
            waits.append(first_refusal(gws[2], made["key"], 1.0))
        assert max(waits) < 0.1, waits
        for gw in gws:  # each is subscribed, and never lost it
            with urllib.request.urlopen(f"{gw.url}/metrics", timeout=10) as resp:
                metrics = resp.read().decode()
            assert "interlock_governance_pubsub_up 1" in metrics, metrics[-2000:]
            assert "subscription for definitions changes was lost" not in gw.output()
    finally:
        for gw in gws:
            gw.stop()


async def test_a_lost_subscription_polls_then_catches_up(prefix: str) -> None:
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    reloads: list[float] = []

    async def reload() -> None:
        reloads.append(time.monotonic())

    prop = Propagation(client, prefix + "definitions", reload, 0.5)
    task = asyncio.create_task(prop.run())
    try:
        for _ in range(200):
            if prop.up:
                break
            await asyncio.sleep(0.01)
        assert prop.up and len(reloads) == 1  # subscribing reloads first
        other = Propagation(redis_asyncio.Redis.from_url(REDIS_URL), prefix + "definitions", reload, 0.5)
        await other.announce(7)
        for _ in range(200):
            if len(reloads) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(reloads) == 2
        # Redis drops the subscriber's connection: down (the governance loop polls), then up again and reloads.
        admin = redis_asyncio.Redis.from_url(REDIS_URL)
        assert await admin.client_kill_filter(_type="pubsub") >= 1
        for _ in range(300):
            if prop.transitions == [2, 1] and prop.up:
                break
            await asyncio.sleep(0.01)
        assert prop.transitions == [2, 1] and prop.up and len(reloads) == 3
        await other.client.aclose()
        await admin.aclose()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
