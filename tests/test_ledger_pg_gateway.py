"""A gateway logging to PostgreSQL (``store: postgresql://``) loses nothing when the database goes away under load.

Between the gateway and the machine's PostgreSQL sits a TCP proxy this test
stops and restarts (``tests/ledger_proxy.py``), rather than stopping the shared
server other tests use.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import start_gateway
from tests.ledger_proxy import PgProxy
from tests.pg_util import create_database, drop_database, url
from tests.test_ledger_gateway import chat, config

pytestmark = pytest.mark.slow


@pytest.fixture
def pg() -> Iterator[tuple[str, PgProxy]]:
    name = create_database()
    proxy = PgProxy()
    proxy.up()
    yield name, proxy
    proxy.close()
    drop_database(name)


async def stored(name: str) -> tuple[set[str], int]:
    conn = await asyncpg.connect(url(name))
    try:
        ids = {r["id"] for r in await conn.fetch("SELECT id FROM requests")}
        rolled = await conn.fetchval("SELECT coalesce(sum(requests), 0) FROM spend_daily WHERE tag = '*'")
    finally:
        await conn.close()
    return ids, int(rolled)


def test_postgres_unreachable_under_load_then_back(pg: tuple[str, PgProxy], tmp_path: Path) -> None:
    name, proxy = pg
    g = start_gateway(tmp_path, config(f"store: {url(name, proxy.port)}", level="metadata", flush=0.2))
    ids: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            status, rid = chat(g, "load")
            assert status == 200
            ids.append(rid)

    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(client) for _ in range(4)]
            time.sleep(1.0)
            proxy.down()
            time.sleep(2.0)
            during = len(ids)
            proxy.up()
            time.sleep(1.0)
            stop.set()
            for f in futures:
                f.result()
        assert during > 50 and len(ids) > during
        # The gateway noticed (it spilled) and replays on its own once the store answers.
        spill = tmp_path / "state" / "ledger-spill"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            have, _ = asyncio.run(stored(name))
            if set(ids) <= have:
                break
            time.sleep(0.2)
        assert "spilling" in g.output()
    finally:
        g.stop()
    have, rolled = asyncio.run(stored(name))
    assert set(ids) <= have and rolled == len(have)
    assert not list(spill.glob("*.jsonl"))
