"""What the request log costs in throughput: req/s with logging off vs on (SQLite, PostgreSQL).

Reuses ``bench/harness.py`` (the mock vendor, process management, wrk):
the mock and the load on core 1, gateway workers on core 0. Target: logging
costs at most 10% of throughput.

Two methods:

* ``concurrent`` (default): one gateway per configuration, all running at once
  on core 0, each loaded by its own wrk (c=32) for the same seconds. Each
  gateway is started in its own session, so with the kernel's autogroup
  scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) every gateway gets
  an equal share of the core, whatever threads it runs (the SQLite writer's
  included). The req/s ratio of two gateways in the same round is then the
  inverse ratio of their CPU per request, and a change in the machine's speed
  during the run hits both at the same instant: the per-round ratios of an
  off-vs-off pair (``--calibrate``) stay within ~1% where sequential rounds
  on the same machine drift by 10-20%. The figure is the median of the
  per-round ratios; wrk's start order rotates every round.
* ``sequential``: each configuration started fresh, alone on core 0, in
  interleaved rounds (off, sqlite, postgresql, off, ...); the figure is the
  median req/s per configuration. What a single worker really does, but only
  as steady as the machine is.

    .venv/bin/python bench/logging_overhead.py [--method concurrent|sequential] [--seconds 8] [--rounds 5]
                                               [--no-postgres] [--batch-size N] [--calibrate]
    .venv/bin/python bench/logging_overhead.py --guardrails [--calibrate]   # guardrails on vs off, log off
    .venv/bin/python bench/logging_overhead.py --difficulty   # a difficulty policy vs the same targets by priority
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    GATEWAY_CORE,
    GATEWAY_MODEL,
    MASTER_KEY,
    POLICY_MODEL,
    TWO_TARGET_POLICIES,
    UPSTREAM_KEY,
    Managed,
    WrkResult,
    ensure_wrk,
    require_autogroup,
    run_wrk,
    start_mock,
    wait_healthy,
)

REPO = Path(__file__).resolve().parent.parent
PY = str(REPO / ".venv" / "bin" / "python")
MOCK_PORT, GW_PORT = 9111, 8411


POLICIES = TWO_TARGET_POLICIES


def config(kind: str, pg_url: str | None, batch_size: int | None = None, mock_port: int = MOCK_PORT) -> str:
    base = f"vendors:\n  mock:\n    type: openai\n    base_url: http://127.0.0.1:{mock_port}/v1\n" \
           f"    api_key: {UPSTREAM_KEY}\n"
    if kind in POLICIES:
        return base + "logging:\n  level: 'off'\n" + POLICIES[kind]
    if kind.startswith("off"):
        return base + "logging:\n  level: 'off'\n"
    if kind == "guardrails":  # log off, every detector on (rules only): what the guardrails stage costs
        return base + ("logging:\n  level: 'off'\nguardrails:\n  pii: {action: monitor}\n"
                       "  secrets: {action: block}\n  prompt_injection: {action: block, classifier: 'off'}\n")
    text = base + "logging:\n  level: metadata\n"
    if batch_size is not None:
        text += f"  batch_size: {batch_size}\n"
    if kind == "postgresql":
        text += f"store: {pg_url}\n"
    return text


def start_gateway(kind: str, port: int, pg_url: str | None, tmp: Path, batch_size: int | None,
                  mock_port: int = MOCK_PORT) -> Managed:
    home = tmp / f"{kind}-{os.urandom(3).hex()}"
    home.mkdir()
    cfg = home / "interlock.yaml"
    cfg.write_text(config(kind, pg_url, batch_size, mock_port))
    env = dict(os.environ, INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home / "state"))
    gw = Managed(f"gateway-{kind}", ["taskset", "-c", str(GATEWAY_CORE), str(REPO / ".venv" / "bin" / "interlock"),
                                     "serve", "--port", str(port), "--config", str(cfg)], env=env, logdir=home)
    try:
        wait_healthy(gw, port, "/healthz", 30)
    except BaseException:
        gw.stop()
        raise
    return gw


def load(wrk: str, port: int, seconds: int, kind: str = "") -> WrkResult:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    model = POLICY_MODEL if kind in POLICIES else GATEWAY_MODEL
    return run_wrk(wrk, url, "chat.lua", connections=32, seconds=seconds, model=model, key=MASTER_KEY)


def load_into(results: dict[str, WrkResult], failures: list[BaseException], kind: str, wrk: str, port: int,
              seconds: int) -> None:
    """``load`` in a thread: the result, or what went wrong (raised again by the caller)."""
    try:
        results[kind] = load(wrk, port, seconds, kind)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
        failures.append(exc)


def sequential(kinds: list[str], pg_url: str | None, wrk: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    rps: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds if r % 2 == 0 else list(reversed(kinds)):
            gw = start_gateway(kind, GW_PORT, pg_url, tmp, args.batch_size)
            try:
                load(wrk, GW_PORT, 2, kind)  # warm-up
                result = load(wrk, GW_PORT, args.seconds, kind)
                if result.errors:
                    raise SystemExit(f"{kind}: {result.errors} errors\n{gw.output()}")
            finally:
                gw.stop()
            rps[kind].append(result.rps)
            print(f"round {r + 1} {kind:<10} {result.rps:9,.0f} req/s", file=sys.stderr, flush=True)
    off = statistics.median(rps[kinds[0]])
    print(f"{'gateway':<12} {'median req/s':>13} {'vs ' + kinds[0]:>8}   (sequential, c=32, one worker alone on core 0, "
          f"{args.rounds} rounds)")
    for kind in kinds:
        med = statistics.median(rps[kind])
        print(f"{kind:<12} {med:13,.0f} {100 * (med / off - 1):+7.1f}%")
    return {k: statistics.median(rps[k]) / off - 1 for k in kinds}


@dataclass
class Overhead:
    """One logging configuration's req/s relative to log-off, per round (concurrent method)."""

    ratios: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)


def concurrent(kinds: list[str], pg_url: str | None, wrk: str, *, rounds: int, seconds: int, tmp: Path,
               batch_size: int | None = None, mock_port: int = MOCK_PORT, base_port: int = GW_PORT,
               quiet: bool = False) -> dict[str, Overhead]:
    """Every configuration's gateway at once on core 0 (``kinds[0]`` the base): the ratios per round."""
    require_autogroup("concurrent method", "; use --method sequential")
    gateways: dict[str, tuple[int, Managed]] = {}
    ratios: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for i, kind in enumerate(kinds):
            port = base_port + i
            gateways[kind] = (port, start_gateway(kind, port, pg_url, tmp, batch_size, mock_port))
        for r in range(rounds + 1):  # round 0 warms every gateway up
            results: dict[str, WrkResult] = {}
            failures: list[BaseException] = []
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            threads = [threading.Thread(target=load_into,
                                        args=(results, failures, k, wrk, gateways[k][0], seconds if r else 2))
                       for k in order]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if failures:
                raise failures[0]
            for kind, result in results.items():
                if result.errors:
                    raise SystemExit(f"{kind}: {result.errors} errors\n{gateways[kind][1].output()}")
            if r == 0:
                continue
            off = results[kinds[0]].rps
            for kind in kinds:
                ratios[kind].append(results[kind].rps / off - 1)
            if not quiet:
                print(f"round {r}: " + "  ".join(f"{k} {results[k].rps:7,.0f} req/s ({100 * ratios[k][-1]:+.1f}%)"
                                                 for k in kinds), file=sys.stderr, flush=True)
    finally:
        for _, gw in gateways.values():
            gw.stop()
    return {k: Overhead(v) for k, v in ratios.items()}


def create_pg_database() -> str | None:
    """A fresh database for the PostgreSQL log (None when no server answers on 127.0.0.1:5432)."""
    name = "interlock_bench_" + os.urandom(4).hex()
    try:
        done = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", f"CREATE DATABASE {name}"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return name if done.returncode == 0 else None


def drop_pg_database(name: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c",
                    f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True, timeout=60, check=False)


def pg_url_of(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=("concurrent", "sequential"), default="concurrent")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--batch-size", type=int, default=None, help="logging.batch_size (default: the gateway's)")
    ap.add_argument("--calibrate", action="store_true",
                    help="also run a second gateway with logging off (off-2): the method's own noise")
    ap.add_argument("--guardrails", action="store_true",
                    help="instead of the log: a gateway with every guardrail detector on (log off) vs off")
    ap.add_argument("--difficulty", action="store_true",
                    help="instead of the log: a difficulty policy vs a priority policy of the same targets (log off)")
    args = ap.parse_args()
    wrk = ensure_wrk()
    if args.difficulty:
        kinds = ["priority", "difficulty"]
    else:
        kinds = ["off"] + (["off-2"] if args.calibrate else [])
        kinds += ["guardrails"] if args.guardrails else ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    pg_db = None
    if not args.no_postgres and not args.guardrails and not args.difficulty:
        pg_db = create_pg_database()
        if pg_db is None:
            raise SystemExit("no PostgreSQL server answers on 127.0.0.1:5432 (psql as postgres): use --no-postgres")
    pg_url = pg_url_of(pg_db) if pg_db else None
    mock = start_mock(MOCK_PORT, Path(tempfile.mkdtemp()))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.method == "sequential":
                sequential(kinds, pg_url, wrk, args, Path(tmp))
                return 0
            found = concurrent(kinds, pg_url, wrk, rounds=args.rounds, seconds=args.seconds, tmp=Path(tmp),
                               batch_size=args.batch_size)
    finally:
        mock.stop()
        if pg_db:
            drop_pg_database(pg_db)
    print(f"{'gateway':<12} {'vs ' + kinds[0]:>8} {'range':>17}   (concurrent: {len(kinds)} gateways sharing core 0, "
          f"c=32 each, {args.rounds} rounds of {args.seconds} s)")
    for kind in kinds[1:]:
        rs = found[kind].ratios
        print(f"{kind:<12} {100 * found[kind].median:+7.1f}%   {100 * min(rs):+6.1f}% .. {100 * max(rs):+5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
