"""What the request log costs per request, in CPU µs, measured in-process (no load generator, no gateway).

Builds ``--records`` requests the way the pipeline does - a ``RequestContext``
routed by the real routing engine over ``--candidates`` vendors of one catalog
model, dispatched through the real dispatcher and vendor adapter (one answered
attempt; the simulator's answer is recorded once and replayed, so building
requests stays cheap), priced from the vendor's usage - then hands each to the
request log exactly as ``pipeline/settle.py`` does (``RequestSink.settle``:
the record is built and submitted to a ``LedgerWriter``) and flushes the
writer every ``--batch`` records into a real store: SQLite in a temporary
directory, and PostgreSQL in a temporary database created and dropped here.
The garbage collector is set up as a gateway worker sets it (``app.py``).

Only the log's own work is timed, with ``time.process_time`` (this process,
every thread - SQLite writes run in a worker thread): **hot path** = what
``settle`` does per request (build + submit); **writer** = ``flush`` (encode
if any, insert, spend rollups), amortised per record. Building and
dispatching the requests is not timed. For PostgreSQL the database server's
CPU for the same writes is printed too (read from ``/proc`` for the server
processes of the database), as it runs in other processes.

    .venv/bin/python bench/ledger_cost.py [--records 50000] [--batch 512] [--candidates 3] [--keys 1]
                                          [--backend sqlite|postgresql|both] [--level metadata|full]
                                          [--ordered-ids] [--rounds 3] [--profile]

Not a load test: it uses one core, briefly, and never starts the gateway. The
same file runs against an older checkout (for before/after figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from harness import cpu_seconds
from interlock.catalog import load_catalog
from interlock.config import VendorConfig
from interlock.core.context import RequestContext
from interlock.core.principal import Principal
from interlock.core.vendor import Timeouts, VendorRuntime, VendorSpec
from interlock.ledger.settings import LogSettings
from interlock.ledger.sink import RequestSink
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.writer import LedgerWriter, LogStore, SpillFile
from interlock.pipeline.dispatch import Dispatcher
from interlock.pipeline.settle import price_openai_usage
from interlock.routing.engine import RoutingEngine
from interlock.routing.planner import Planner
from interlock.simulator.settings import SimulatorSettings
from interlock.simulator.transport import SimulatorTransport
from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
from interlock.vendors.registry import runtime

MODEL = "openai/gpt-4.1-mini"
REQUEST = {"model": MODEL, "max_tokens": 128, "temperature": 0.2, "messages": [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "In two sentences, what does an LLM gateway do?"}]}
PRINCIPAL = Principal("project", "ik-Vh3kq9Zr", project="acme", key_id="key_3f9c2a71d0")


class _Answer:
    """A recorded vendor answer, replayed (the simulator's content generation is not what is measured)."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self._body = body

    async def read(self) -> bytes:
        return self._body

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        yield self._body

    def close(self) -> None:
        return None


class Replay:
    """The simulator's first answer to each vendor, replayed for every later request."""

    def __init__(self, inner: SimulatorTransport) -> None:
        self.inner = inner
        self.answers: dict[str, _Answer] = {}

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                      timeouts: Timeouts) -> _Answer:
        answer = self.answers.get(url)
        if answer is None:
            resp = await self.inner.request(method, url, headers, body, timeouts)
            answer = self.answers[url] = _Answer(resp.status, dict(resp.headers), await resp.read())
            resp.close()
        return answer

    async def close(self) -> None:
        await self.inner.close()


class Requests:
    """Settled-looking request contexts made by the real routing engine and dispatcher."""

    def __init__(self, candidates: int, keys: int = 1, ordered_ids: bool = False) -> None:
        self.ordered_ids = ordered_ids
        vendors = {f"sim{chr(97 + i)}": {"vendor_model_id": MODEL, "price": {"input": 0.4, "output": 1.6}}
                   for i in range(candidates)}
        catalog = load_catalog().with_overrides({"models": {MODEL: {"routes": vendors}}})
        transport = Replay(SimulatorTransport(SimulatorSettings.from_config({"time_scale": 0, "seed": 1}), catalog))
        live: dict[str, VendorRuntime] = {}
        configured: dict[str, VendorConfig] = {}
        for vid in vendors:
            spec = VendorSpec(vid, vid.upper(), "openai", "http://simulator.internal/v1", needs_key=False,
                              auth="none")
            config = configured[vid] = VendorConfig(
                spec=spec, base_url="http://simulator.internal/v1", api_key=None, key_source=None,
                headers=MappingProxyType({}), timeouts=Timeouts(), enabled=True, explicitly_configured=True)
            live[vid] = runtime(config, OpenAICompatAdapter(config, transport))
        self.engine = RoutingEngine(Planner(catalog, live, configured, {}, {}))
        self.dispatcher = Dispatcher(self.engine)
        # One key, or keys spread over projects (ten keys a project): what the log's key and project
        # indexes see.
        self.principals = [PRINCIPAL] if keys <= 1 else [
            Principal("project", f"ik-{i:08d}", project=f"project{i // 10}", key_id=f"key_{i:06d}")
            for i in range(keys)]
        self.made = 0

    async def make(self, n: int) -> list[RequestContext]:
        out = []
        for _ in range(n):
            ctx = RequestContext("openai.chat")
            if self.ordered_ids:  # same length as the gateway's ids, but increasing: the id index appends
                ctx.id = f"req_{time.time_ns() // 1000:013x}{os.urandom(6).hex()[:11]}"
            ctx.principal = self.principals[self.made % len(self.principals)]
            self.made += 1
            ctx.requested_model = MODEL
            request = self.engine.route(ctx, dict(REQUEST))
            completion = await self.dispatcher.complete(ctx, request, {})
            ctx.first_byte = time.perf_counter()
            price_openai_usage(ctx, completion.data["usage"])
            if ctx.capture_content:
                ctx.response_content = completion.data
            self.engine.observe(ctx)
            out.append(ctx)
        return out


@dataclass
class Result:
    hot_us: float
    writer_us: float
    server_us: float | None = None
    #: Bytes this process read and wrote through read/write system calls while flushing, per record.
    io_bytes: float = 0.0

    @property
    def total(self) -> float:
        return self.hot_us + self.writer_us


def _io_bytes() -> int:
    """Bytes this process has read and written through system calls so far (``/proc/self/io``)."""
    fields = dict(line.split(":") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"]) + int(fields["wchar"])


class Discard:
    """A writer that drops what it is given (``--instructions``: the hot path alone)."""

    def submit(self, record: Any) -> None:
        return None


async def measure(store: LogStore, spill: Path, requests: Requests, records: int, batch: int, level: str,
                  profile: cProfile.Profile | None, server_pids: Callable[[], Any] | None,
                  stage: str = "log", warm: int = 0) -> Result:
    """Log ``records`` requests and time it, after ``warm`` more logged first (not timed).

    ``stage`` (for ``--instructions``): "log" (settle and flush), "hot" (settle only), "none" (only build the
    requests).
    """
    settings = LogSettings(level=level)  # type: ignore[arg-type]
    sink = RequestSink(settings, None, None, None)
    # Versions before the row format had a per-record ``prepare`` step in the writer (for before/after runs).
    extra = {"prepare": sink.prepare} if hasattr(sink, "prepare") else {}
    writer = LedgerWriter(store, SpillFile(spill), interval=3600.0, batch=batch, **extra)
    discard = Discard()
    writer.start()
    hot = flush = 0.0
    server = 0.0
    io = 0
    pids: list[int] = (await server_pids()) if server_pids is not None else []
    done = -warm
    while done < records:
        n = min(batch, records - done) if done >= 0 else min(batch, -done)
        now = stage if done >= 0 else "log"
        sink.writer = writer if now == "log" else discard  # type: ignore[assignment]
        contexts = await requests.make(n)
        for ctx in contexts:
            ctx.capture_content = level == "full"
            if ctx.capture_content:
                ctx.request_content = dict(REQUEST)
        if profile is not None:
            profile.enable()
        t0 = time.process_time()
        if now != "none":
            for ctx in contexts:
                sink.settle(ctx)
        t1 = time.process_time()
        s0 = cpu_seconds(pids)
        io0 = _io_bytes()
        await writer.flush()
        t2 = time.process_time()
        io += _io_bytes() - io0
        if pids:
            # The server may still be finishing its side of the commit.
            await asyncio.sleep(0.002)
            server += cpu_seconds(pids) - s0
        if profile is not None:
            profile.disable()
        if writer.spilled:
            raise SystemExit(f"{store.kind}: the store refused writes; records were spilled")
        if done >= 0:
            hot += t1 - t0
            flush += t2 - t1
        else:
            io = 0
            server = 0.0
        done += n
    await writer.drain()
    return Result(hot * 1e6 / records, flush * 1e6 / records, server * 1e6 / records if pids else None,
                  io / records)


@contextlib.asynccontextmanager
async def open_store(kind: str, args: argparse.Namespace) -> AsyncIterator[tuple[LogStore, Path, Any]]:
    """A fresh store of ``kind`` (a temporary SQLite file, or a database created and dropped here), a spill
    directory, and for PostgreSQL a function listing the database's server processes."""
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            sqlite = SQLiteStore(Path(tmp) / "interlock.db")
            try:
                yield SQLiteLog(sqlite), Path(tmp) / "spill", None
            finally:
                sqlite.close()
            return
        from interlock.ledger.pgstore import PostgresLog

        name = "interlock_ledger_cost_" + os.urandom(4).hex()
        _psql(args.pg_admin, f"CREATE DATABASE {name}")
        pg = PostgresLog(args.pg_admin.rsplit("/", 1)[0] + f"/{name}")

        async def backends() -> list[int]:
            import asyncpg

            conn = await asyncpg.connect(args.pg_admin)
            try:
                rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
            finally:
                await conn.close()
            return [int(row["pid"]) for row in rows]

        try:
            await pg.ping()  # migrations, outside the measurement
            yield pg, Path(tmp) / "spill", backends
        finally:
            await pg.close()
            _psql(args.pg_admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _psql(admin: str, sql: str) -> None:
    subprocess.run(["psql", admin, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)


async def run_backend(kind: str, args: argparse.Namespace, requests: Requests) -> list[Result]:
    results = []
    for r in range(args.rounds + 1):  # round 0 warms up (imports, caches, the store's first pages)
        records = max(2 * args.batch, args.records // 10) if r == 0 else args.records
        profile = cProfile.Profile() if args.profile and r == args.rounds else None
        async with open_store(kind, args) as (store, spill, servers):
            result = await measure(store, spill, requests, records, args.batch, args.level, profile, servers)
        if r:
            results.append(result)
            server = f"   (server {result.server_us:.1f} µs)" if result.server_us is not None else ""
            print(f"{kind:<10} round {r}: hot path {result.hot_us:5.2f} µs  writer {result.writer_us:5.2f} µs  "
                  f"total {result.total:5.2f} µs per record{server}", file=sys.stderr, flush=True)
        if profile is not None:
            print(f"--- {kind}: profile of the last round (hot path + writer) ---")
            pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile_lines)
    return results


def _gateway_gc() -> None:
    # As a gateway worker does after start-up (app.py): what exists now lives for the process.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def child(args: argparse.Namespace) -> None:
    """One run under callgrind: two batches logged (warm-up), then --records requests at stage --child."""
    requests = Requests(args.candidates, args.keys, args.ordered_ids)
    _gateway_gc()
    async with open_store(args.backend, args) as (store, spill, _):
        await measure(store, spill, requests, args.records, args.batch, args.level, None, None,
                      stage=args.child, warm=2 * args.batch)


def instructions(args: argparse.Namespace, kind: str) -> tuple[float, float]:
    """Instructions per record (this process, user space) of the hot path and of everything: callgrind
    totals of runs that log, only settle, or only build the same requests, subtracted."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    counts = {}
    for stage in ("none", "hot", "log"):
        cmd = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
               "--child", stage, "--backend", kind, "--records", str(args.records), "--batch", str(args.batch),
               "--candidates", str(args.candidates), "--keys", str(args.keys), "--level", args.level,
               "--pg-admin", args.pg_admin, *(["--ordered-ids"] if args.ordered_ids else [])]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run failed:\n{done.stdout}\n{done.stderr[-2000:]}")
        counts[stage] = int(found.group(1))
    return ((counts["hot"] - counts["none"]) / args.records, (counts["log"] - counts["none"]) / args.records)


async def main_async(args: argparse.Namespace) -> int:
    requests = Requests(args.candidates, args.keys, args.ordered_ids)
    _gateway_gc()
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    table: dict[str, list[Result]] = {}
    for kind in kinds:
        table[kind] = await run_backend(kind, args, requests)
    print(f"request log CPU per record ({args.records:,} records per round, median of {args.rounds} rounds; "
          f"batches of {args.batch}, {args.candidates} candidates, {args.keys} keys, level {args.level})")
    print(f"{'store':<12} {'hot path':>9} {'writer':>9} {'total':>9} {'min total':>9}   {'db server':>9} "
          f"{'file I/O':>11}")
    for kind, results in table.items():
        hot = statistics.median(r.hot_us for r in results)
        writer = statistics.median(r.writer_us for r in results)
        total = statistics.median(r.total for r in results)
        servers = [r.server_us for r in results if r.server_us is not None]
        server = f"{statistics.median(servers):6.2f} µs" if servers else f"{'-':>9}"
        least = min(r.total for r in results)
        io = statistics.median(r.io_bytes for r in results) / 1024
        print(f"{kind:<12} {hot:6.2f} µs {writer:6.2f} µs {total:6.2f} µs {least:6.2f} µs   {server} "
              f"{io:5.1f} KiB/rec")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=512, help="records per flush (the writer's batch_size)")
    ap.add_argument("--candidates", type=int, default=3, help="vendors serving the model (routing candidates)")
    ap.add_argument("--keys", type=int, default=1, help="API keys the requests come from (ten per project)")
    ap.add_argument("--ordered-ids", action="store_true",
                    help="time-ordered request ids (what-if: the gateway's ids are random)")
    ap.add_argument("--level", choices=("metadata", "full"), default="metadata")
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--profile", action="store_true", help="cProfile the last round (slower; for finding costs)")
    ap.add_argument("--profile-lines", type=int, default=30)
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions per record under callgrind instead (slow: --records 2048 is plenty)")
    ap.add_argument("--child", choices=("none", "hot", "log"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.candidates < 1:
        ap.error("--candidates must be at least 1")
    if args.child:
        asyncio.run(child(args))
        return 0
    if args.instructions:
        print(f"request log instructions per record (this process, user space; {args.records:,} records, "
              f"batches of {args.batch}, {args.candidates} candidates, {args.keys} keys, level {args.level})")
        for kind in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
            hot, total = instructions(args, kind)
            print(f"{kind:<12} hot path {hot:9,.0f}   writer {total - hot:9,.0f}   total {total:9,.0f}")
        return 0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
