"""The writer never loses a record: a real PostgreSQL made unreachable (and hung) under load, then back.

The outage is a TCP proxy in front of the machine's PostgreSQL (see
``tests/ledger_proxy.py``): stopping the shared server would disturb other
tests running at the same time.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.schema import LogQuery
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.writer import LedgerWriter, SpillFile
from tests.ledger_proxy import PgProxy
from tests.pg_util import create_database, drop_database, url

T0 = 1_750_000_000.0


@pytest.fixture
def pg() -> Iterator[tuple[str, PgProxy]]:
    name = create_database()
    proxy = PgProxy()
    proxy.up()
    yield name, proxy
    proxy.close()
    drop_database(name)


def rec(i: int) -> dict[str, Any]:
    return {"id": f"req_{i:06d}", "received_at": T0 + i / 1000, "inbound": "openai-chat", "stream": 0,
            "status": 200, "model": "m", "vendor": "v", "input_tokens": 1, "output_tokens": 2,
            "cost_picousd": 1000}


async def counts(name: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(url(name))
    try:
        rows = await conn.fetchval("SELECT count(*) FROM requests")
        distinct = await conn.fetchval("SELECT count(DISTINCT id) FROM requests")
        rolled = await conn.fetchval("SELECT coalesce(sum(requests), 0) FROM spend_daily WHERE tag = '*'")
    finally:
        await conn.close()
    return int(rows), int(distinct), int(rolled)


async def produce(writer: LedgerWriter, n: int, per_second: float) -> None:
    start = time.monotonic()
    for i in range(n):
        writer.submit(rec(i))
        # Pace the load; submit itself never awaits.
        ahead = i / per_second - (time.monotonic() - start)
        if ahead > 0:
            await asyncio.sleep(ahead)


@pytest.mark.parametrize("outage", ["down", "stall"])
async def test_postgres_outage_under_load_loses_nothing(pg: tuple[str, PgProxy], tmp_path: Path,
                                                        outage: str) -> None:
    name, proxy = pg
    store = PostgresLog(url(name, proxy.port), timeout=1.0)
    writer = LedgerWriter(store, SpillFile(tmp_path / "spill"), interval=0.05, batch=200, write_timeout=1.0)
    writer.start()
    load = asyncio.create_task(produce(writer, 4000, 1000.0))
    await asyncio.sleep(0.8)
    proxy.down() if outage == "down" else proxy.stall()
    await asyncio.sleep(1.5)
    assert not writer.store_up, "the outage was not noticed"
    if outage == "stall":
        proxy.down()  # reset the hung connections, as a restarted server would
    proxy.up()
    await load
    # While the load ran some records were spilled, then replayed once the store answered.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not writer.store_up or writer.pending or writer.spill.pending()):
        await asyncio.sleep(0.1)
    await writer.drain()
    assert writer.spilled > 0 and writer.replayed > 0
    assert await counts(name) == (4000, 4000, 4000)
    assert not writer.spill.pending()


async def test_drain_spills_when_the_store_is_down_and_next_start_replays(pg: tuple[str, PgProxy],
                                                                          tmp_path: Path) -> None:
    name, proxy = pg
    proxy.down()
    writer = LedgerWriter(PostgresLog(url(name, proxy.port), timeout=0.5), SpillFile(tmp_path / "spill"),
                          interval=0.05, write_timeout=0.5)
    for i in range(300):
        writer.submit(rec(i))
    await writer.drain()  # graceful shutdown with the store down: everything to the spill file
    assert writer.spill.pending()
    proxy.up()
    again = LedgerWriter(PostgresLog(url(name, proxy.port)), SpillFile(tmp_path / "spill"), interval=0.05)
    again.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and again.spill.pending():
        await asyncio.sleep(0.05)
    await again.drain()
    assert await counts(name) == (300, 300, 300)


async def test_a_dead_workers_spill_file_is_replayed_once(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    spill_dir = tmp_path / "spill"
    SpillFile(spill_dir, pid=dead.pid).append([rec(i) for i in range(50)])
    # A line cut by a hard kill mid-write is skipped, not fatal.
    with (spill_dir / f"{dead.pid}.jsonl").open("ab") as f:
        f.write(b'{"id": "req_cut", "rece')
    sqlite = SQLiteStore(tmp_path / "interlock.db")
    try:
        writer = LedgerWriter(SQLiteLog(sqlite), SpillFile(spill_dir), interval=0.05)
        writer.start()
        assert not writer.store_up  # pending spill: replay first
        await asyncio.sleep(0.3)
        await writer.drain()
        rows = sqlite.query_logs(LogQuery(limit=1000))
        assert len(rows) == 50
        assert not list(spill_dir.glob("*.jsonl"))
    finally:
        sqlite.close()


async def test_submit_never_awaits_and_batches_by_size(tmp_path: Path) -> None:
    sqlite = SQLiteStore(tmp_path / "interlock.db")
    writes: list[int] = []

    class Counting(SQLiteLog):
        async def write(self, records: list[Any]) -> int:
            writes.append(len(records))
            return await super().write(records)

    try:
        writer = LedgerWriter(Counting(sqlite), SpillFile(tmp_path / "spill"), interval=1.0, batch=100)
        for i in range(250):
            writer.submit(rec(i))  # synchronous: no await on the hot path
        await asyncio.sleep(0.2)
        # Two full batches went out before the 1 s interval; the rest waits for it (or the drain).
        assert writes and writes[0] >= 100
        await writer.drain()
        assert sum(writes) == 250
    finally:
        sqlite.close()
