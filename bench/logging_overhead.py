"""What the request log costs in throughput: req/s with logging off vs on (SQLite, PostgreSQL).

Reuses ``bench/run.py``'s pieces (the mock vendor, process management, wrk):
the same mock on core 1, one gateway worker pinned to core 0, wrk -c32 on core
1. Each configuration is started fresh and measured in interleaved rounds
(off, sqlite, postgresql, off, ...) so a drift in the machine's speed hits all
alike; the figure is the median req/s per configuration. Target: logging
costs at most 10% of throughput.

    .venv/bin/python bench/logging_overhead.py [--seconds 10] [--rounds 3] [--no-postgres] [--batch-size N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    GATEWAY_CORE,
    GATEWAY_MODEL,
    LOAD_CORE,
    MASTER_KEY,
    UPSTREAM_KEY,
    Managed,
    ensure_wrk,
    run_wrk,
    wait_healthy,
)

REPO = Path(__file__).resolve().parent.parent
PY = str(REPO / ".venv" / "bin" / "python")
MOCK_PORT, GW_PORT = 9111, 8411


def config(kind: str, pg_url: str | None, batch_size: int | None = None) -> str:
    base = f"vendors:\n  mock:\n    type: openai\n    base_url: http://127.0.0.1:{MOCK_PORT}/v1\n" \
           f"    api_key: {UPSTREAM_KEY}\n"
    if kind == "off":
        return base + "logging:\n  level: 'off'\n"
    text = base + "logging:\n  level: metadata\n"
    if batch_size is not None:
        text += f"  batch_size: {batch_size}\n"
    if kind == "postgresql":
        text += f"store: {pg_url}\n"
    return text


def measure(kind: str, pg_url: str | None, wrk: str, seconds: int, tmp: Path,
            batch_size: int | None = None) -> float:
    home = tmp / f"{kind}-{os.urandom(3).hex()}"
    home.mkdir()
    cfg = home / "interlock.yaml"
    cfg.write_text(config(kind, pg_url, batch_size))
    env = dict(os.environ, INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home / "state"))
    gw = Managed(f"gateway-{kind}", ["taskset", "-c", str(GATEWAY_CORE), str(REPO / ".venv" / "bin" / "interlock"),
                                     "serve", "--port", str(GW_PORT), "--config", str(cfg)], env=env, logdir=home)
    try:
        wait_healthy(gw, GW_PORT, "/healthz", 30)
        url = f"http://127.0.0.1:{GW_PORT}/v1/chat/completions"
        run_wrk(wrk, url, "chat.lua", connections=32, seconds=2, model=GATEWAY_MODEL, key=MASTER_KEY)  # warm-up
        result = run_wrk(wrk, url, "chat.lua", connections=32, seconds=seconds, model=GATEWAY_MODEL, key=MASTER_KEY)
        if result.errors:
            raise SystemExit(f"{kind}: {result.errors} errors\n{gw.output()}")
        return result.rps
    finally:
        gw.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--batch-size", type=int, default=None, help="logging.batch_size (default: the gateway's)")
    args = ap.parse_args()
    wrk = ensure_wrk()
    kinds = ["off", "sqlite"] + ([] if args.no_postgres else ["postgresql"])
    pg_db = None
    if not args.no_postgres:
        pg_db = "interlock_bench_" + os.urandom(4).hex()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", f"CREATE DATABASE {pg_db}"],
                       check=True)
    pg_url = f"postgresql://postgres@127.0.0.1:5432/{pg_db}" if pg_db else None
    mock = Managed("mock", ["taskset", "-c", str(LOAD_CORE), PY, str(REPO / "bench" / "mock_upstream.py"),
                            "--port", str(MOCK_PORT), "--api-key", UPSTREAM_KEY], env=dict(os.environ),
                   logdir=Path(tempfile.mkdtemp()))
    rps: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        wait_healthy(mock, MOCK_PORT, "/healthz", 30)
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for kind in kinds if r % 2 == 0 else list(reversed(kinds)):
                    rps[kind].append(measure(kind, pg_url, wrk, args.seconds, Path(tmp), args.batch_size))
                    print(f"round {r + 1} {kind:<10} {rps[kind][-1]:9,.0f} req/s", file=sys.stderr, flush=True)
    finally:
        mock.stop()
        if pg_db:
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c",
                            f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"], check=False)
    off = statistics.median(rps["off"])
    print(f"{'logging':<12} {'median req/s':>13} {'vs off':>8}   (c=32, non-streaming, 1 worker, {args.rounds} rounds)")
    for kind in kinds:
        med = statistics.median(rps[kind])
        print(f"{kind:<12} {med:13,.0f} {100 * (med / off - 1):+7.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
