"""The interlock benchmark harness (``make bench``).

Starts the mock vendor (``bench/mock_upstream.py``, pinned to core 1) and the
gateway (``interlock serve``, one worker, pinned to core 0), then measures,
side by side, direct-to-mock and through-interlock:

* concurrency 1: p50/p99 latency with a sequential raw-socket keep-alive
  client (nanosecond timer; added latency = through - direct);
* concurrency 32: req/s and p50/p99 latency with ``wrk`` (pinned to core 1);
* streaming: SSE chunks/s relayed by the gateway at concurrency 32 (wrk
  streams/s x chunks per stream), also normalised per gateway CPU core;
* the gateway's peak RSS (VmHWM of the gateway process and its children).

Prints a table and writes ``bench/results/latest.json``. Exits non-zero when
a process fails to start or answers wrongly. See ``bench/README.md``.

    .venv/bin/python bench/run.py [--quick] [--only direct]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    GATEWAY_CORE,
    GATEWAY_MODEL,
    HOST,
    LOAD_CORE,
    MASTER_KEY,
    OTHER_LOAD_LIMIT,
    REPO,
    UPSTREAM_KEY,
    VENDOR_MODEL,
    BenchError,
    Managed,
    _system_cpu,
    bench_main,
    cpu_meter,
    ensure_wrk,
    environment,
    http_get_status,
    log,
    port_in_use,
    start_mock,
    wait_healthy,
)
from harness_latency import chat_request, measure_side, probe, sequential_latency
from run_report import TARGETS, interference, render


def gateway_config(args: argparse.Namespace, tmp: Path) -> Path:
    config = Path(args.config)
    if args.mock_port == 9101:
        return config
    text = config.read_text().replace("127.0.0.1:9101", f"127.0.0.1:{args.mock_port}")
    out = tmp / "interlock.bench.yaml"
    out.write_text(text)
    return out


def measure_log_overhead(args: argparse.Namespace, wrk: str, tmp: Path) -> dict[str, Any]:
    """Req/s with the request log on (SQLite; PostgreSQL when a server answers) relative to off.

    ``bench/logging_overhead.py``'s concurrent method: one gateway per configuration, all at once on the
    gateway's core with equal shares, each loaded by its own wrk, the ratio taken per round.
    """
    import logging_overhead

    rounds, seconds = (3, 4) if args.quick else (5, 8)
    base_port = args.gateway_port + 10
    for port in range(base_port, base_port + 3):
        if port_in_use(port):
            raise BenchError(f"port {port} (for the request log measurement) is already in use")
    db = logging_overhead.create_pg_database()
    kinds = ["off", "sqlite"] + (["postgresql"] if db else [])
    if db is None:
        log("no PostgreSQL server answers on 127.0.0.1:5432: the request log is measured on SQLite only")
    log(f"request log on vs off: {len(kinds)} gateways sharing core {GATEWAY_CORE} (c={args.concurrency} each), "
        f"{rounds} rounds of {seconds}s")
    try:
        found = logging_overhead.concurrent(
            kinds, logging_overhead.pg_url_of(db) if db else None, wrk, rounds=rounds, seconds=seconds, tmp=tmp,
            mock_port=args.mock_port, base_port=base_port, quiet=True)
    except SystemExit as exc:
        raise BenchError(f"the request log measurement failed: {exc}") from None
    finally:
        if db:
            logging_overhead.drop_pg_database(db)
    out: dict[str, Any] = {"method": "concurrent", "rounds": rounds, "seconds": seconds}
    for kind, found_kind in found.items():
        if kind != "off":
            out[kind] = {"median": found_kind.median, "per_round": found_kind.ratios}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark interlock against a mock vendor, side by side with direct."
    )
    p.add_argument("--quick", action="store_true", help="short run: 1s warm-up + 3s per measurement")
    p.add_argument(
        "--only", choices=["direct", "through"], help="measure only one side (direct needs no gateway)"
    )
    p.add_argument("--duration", type=int, default=None, help="seconds per measurement (default 10, quick 3)")
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="warm-up seconds before each measurement (default 2, quick 1)",
    )
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of the c=1 measurement (default 5)"
    )
    p.add_argument("--chunks", type=int, default=100, help="content chunks per mock stream (default 100)")
    p.add_argument(
        "--stream-concurrency", type=int, default=None, help="streaming connections (default: --concurrency)"
    )
    p.add_argument("--mock-latency-ms", type=float, default=0.0, help="mock time to first byte (default 0)")
    p.add_argument(
        "--chunk-delay-ms", type=float, default=0.0, help="pace the mock's stream events (default 0: unpaced)"
    )
    p.add_argument("--mock-port", type=int, default=9101)
    p.add_argument("--gateway-port", type=int, default=8401)
    p.add_argument("--relay-port", type=int, default=8402)
    p.add_argument(
        "--no-relay",
        dest="relay",
        action="store_false",
        help="skip the null-relay reference (a zero-work TCP proxy on the gateway's core)",
    )
    p.add_argument("--config", default=str(BENCH_DIR / "interlock.bench.yaml"))
    p.add_argument("--engine", choices=("native", "granian"), default="native",
                   help="the gateway's HTTP server (interlock serve --engine; default native)")
    p.add_argument(
        "--interlock", default=str(REPO / ".venv" / "bin" / "interlock"), help="the interlock executable"
    )
    p.add_argument("--start-timeout", type=float, default=30.0)
    p.add_argument("--out", default=str(BENCH_DIR / "results" / "latest.json"))
    p.add_argument("--check", action="store_true", help="exit 4 when a target is missed")
    p.add_argument("--no-log-overhead", dest="log_overhead", action="store_false",
                   help="skip the request log's cost (gateways with the log off, on SQLite and on PostgreSQL "
                        "sharing the gateway's core: bench/logging_overhead.py)")
    args = p.parse_args(argv)
    if args.stream_concurrency is None:
        args.stream_concurrency = args.concurrency
    if args.duration is None:
        args.duration = 3 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.duration < 1 or args.warmup < 1:
        p.error("--duration and --warmup must be at least 1 second (wrk's granularity)")
    return args


def run(args: argparse.Namespace) -> int:
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        raise BenchError("the benchmark needs 2 CPU cores (gateway on core 0, load on core 1)")
    if not shutil.which("taskset"):
        raise BenchError("taskset is missing (Debian package util-linux)")
    wrk = ensure_wrk()
    # The orchestrator (and so the c=1 latency client) stays off the gateway's core.
    os.sched_setaffinity(0, {LOAD_CORE})

    want_direct = args.only in (None, "direct")
    want_through = args.only in (None, "through")
    for port, what in ((args.mock_port, "mock"), (args.gateway_port, "gateway"), (args.relay_port, "relay")):
        if (what == "mock" or want_through) and port_in_use(port):
            raise BenchError(
                f"port {port} (for the {what}) is already in use: stop whatever listens there first"
            )

    busy_before, _ = _system_cpu()
    time.sleep(1.0)
    idle_load = _system_cpu()[0] - busy_before
    if idle_load > OTHER_LOAD_LIMIT:
        log(
            f"WARNING: other processes are using {idle_load:.2f} cores before the run starts: "
            "the figures will be disturbed (each measurement is checked and flagged)"
        )

    started = _dt.datetime.now(_dt.UTC)
    result: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "config": {
            "duration": args.duration,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "chunks": args.chunks,
            "mock_latency_ms": args.mock_latency_ms,
            "chunk_delay_ms": args.chunk_delay_ms,
            "engine": args.engine,
            "stream_concurrency": args.stream_concurrency,
            "gateway_core": GATEWAY_CORE,
            "load_core": LOAD_CORE,
            "only": args.only,
            "other_load_before_run_cores": round(idle_load, 3),
            "null_relay": bool(args.relay and args.only != "direct"),
        },
        "targets": TARGETS,
        "environment": environment(),
    }
    procs: dict[str, Managed] = {}
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            procs["mock"] = start_mock(
                args.mock_port, tmp, chunks=args.chunks, latency_ms=args.mock_latency_ms,
                chunk_delay_ms=args.chunk_delay_ms, timeout=args.start_timeout,
            )

            gateway: Managed | None = None
            if want_through:
                interlock = Path(args.interlock)
                if not interlock.exists():
                    raise BenchError(
                        f"{interlock} does not exist: install the gateway first (pip install -e .)"
                    )
                home = tmp / "home"
                home.mkdir()
                gw_cmd = [
                    "taskset", "-c", str(GATEWAY_CORE), str(interlock), "serve",
                    "--host", HOST, "--port", str(args.gateway_port), "--workers", "1",
                    "--config", str(gateway_config(args, tmp)), "--engine", args.engine,
                ]  # fmt: skip
                env = dict(os.environ, INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home))
                log("starting the gateway: " + " ".join(gw_cmd))
                gateway = procs["gateway"] = Managed("gateway", gw_cmd, env=env, logdir=tmp)
                wait_healthy(gateway, args.gateway_port, "/healthz", args.start_timeout)
                gateway.sample_rss()
                result["gateway_command"] = gw_cmd

            if want_through and args.relay:
                relay_cmd = [
                    "taskset", "-c", str(GATEWAY_CORE), sys.executable, str(BENCH_DIR / "mock_upstream.py"),
                    "--host", HOST, "--port", str(args.relay_port),
                    "--relay-to", f"{HOST}:{args.mock_port}",
                ]  # fmt: skip
                log("starting the null relay: " + " ".join(relay_cmd))
                procs["relay"] = Managed("relay", relay_cmd, env=dict(os.environ), logdir=tmp)
                deadline = time.monotonic() + args.start_timeout
                while http_get_status(args.relay_port, "/healthz") != 200:
                    if not procs["relay"].alive() or time.monotonic() > deadline:
                        raise BenchError(f"the null relay did not start:\n{procs['relay'].output()}")
                    time.sleep(0.05)

            # Which endpoints, in order: (side, port, model, key).
            sides: list[tuple[str, int, str, str]] = []
            if want_direct:
                sides.append(("direct", args.mock_port, VENDOR_MODEL, UPSTREAM_KEY))
            if "relay" in procs:
                sides.append(("relay", args.relay_port, VENDOR_MODEL, UPSTREAM_KEY))
            if gateway is not None:
                sides.append(("through", args.gateway_port, GATEWAY_MODEL, MASTER_KEY))

            def gateway_failed(exc: BenchError) -> BenchError:
                if gateway is None:
                    return exc
                return BenchError(f"{exc}\n--- gateway output ---\n{gateway.output()}", exc.code)

            for side, port, model, key in sides:
                try:
                    result[side] = {"probe": probe(port, model, key)}
                except BenchError as exc:
                    raise gateway_failed(exc) if side == "through" else exc from None

            log(
                f"c=1 latency of {', '.join(s[0] for s in sides)}: {args.warmup:g}s warm-up each, then "
                f"{args.duration:g}s each in {args.rounds} interleaved rounds (sequential keep-alive client)"
            )
            try:
                with cpu_meter(procs) as c1_cpu:
                    c1 = sequential_latency(
                        {side: (port, chat_request(port, model, key)) for side, port, model, key in sides},
                        warmup=args.warmup,
                        seconds=args.duration,
                        rounds=args.rounds,
                    )
            except BenchError as exc:
                raise gateway_failed(exc) from None
            for side, lat in c1.items():
                result[side]["c1"] = {**lat.__dict__, "cpu_cores": dict(c1_cpu)}
            if gateway is not None:
                gateway.sample_rss()

            for side, port, model, key in sides:
                try:
                    measure_side(
                        side, port, model, key,
                        wrk=wrk, args=args, procs=procs, result=result,
                        gateway=gateway if side == "through" else None,
                        streaming=side != "relay",
                    )  # fmt: skip
                except BenchError as exc:
                    raise gateway_failed(exc) if side == "through" else exc from None
            if gateway is not None:
                if not gateway.alive():
                    raise BenchError(f"the gateway died during the run:\n{gateway.output()}")
                gateway.sample_rss()
                result["gateway_peak_rss"] = {
                    "total_kib": sum(gateway.peak_rss_kib.values()),
                    "per_process_kib": {str(k): v for k, v in gateway.peak_rss_kib.items()},
                }
                if args.log_overhead:
                    for name in ("gateway", "relay"):  # the log measurement's gateways get the core to themselves
                        if name in procs:
                            procs[name].stop()
                    result["log_overhead"] = measure_log_overhead(args, wrk, tmp)
        finally:
            for p in reversed(list(procs.values())):
                p.stop()

    t = result.get("through")
    d = result.get("direct")
    summary: dict[str, Any] = {}
    if t:
        summary["c32_rps"] = t["c32"]["rps"]
        summary["c32_rps_ok"] = t["c32"]["rps"] >= TARGETS["c32_rps"]
        per_core = t["stream"]["chunks_per_s_per_gateway_core"]
        summary["stream_chunks_per_s"] = t["stream"]["chunks_per_s"]
        summary["stream_chunks_per_gateway_core"] = per_core
        summary["stream_chunks_per_core_ok"] = (
            per_core is not None and per_core >= TARGETS["stream_chunks_per_core"]
        )
        summary["gateway_peak_rss_mib"] = result["gateway_peak_rss"]["total_kib"] / 1024
    if t and d:
        added = t["c1"]["p50_ms"] - d["c1"]["p50_ms"]
        summary["c1_added_p50_ms"] = added
        summary["c1_added_p99_ms"] = t["c1"]["p99_ms"] - d["c1"]["p99_ms"]
        summary["c1_added_p50_ok"] = added <= TARGETS["c1_added_p50_ms"]
    overhead = result.get("log_overhead")
    if overhead:
        for kind in ("sqlite", "postgresql"):
            if kind in overhead:
                cost = -overhead[kind]["median"]
                summary[f"log_{kind}_cost"] = cost
                summary[f"log_{kind}_cost_ok"] = cost <= TARGETS["log_cost"]
    summary["interference"] = sorted(interference(result))
    result["summary"] = summary

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(render(result))
    print(f"\nresults written to {os.path.relpath(out, Path.cwd())}")

    invalid = [
        f"{side} {name}"
        for side in ("direct", "through")
        for name in ("c1", "c32", "stream")
        if result.get(side)
        and result[side][name]["errors"]
        > 0.01 * max(result[side][name].get("requests") or result[side][name].get("samples") or 1, 1)
    ]
    if invalid:
        log("measurements with more than 1% failed requests: " + ", ".join(invalid))
        return 3
    if args.check and any(v is False for k, v in summary.items() if k.endswith("_ok")):
        log("a target was missed (--check)")
        return 4
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return bench_main("bench", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
