"""Issue 26's table: direct, interlock (log on, log off, Granian) and the installed peers, in one run.

The second step of ``make bench`` (after ``bench/run.py``). Two mock vendors run on core 1
(``bench/mock_upstream.py``): one answering at once with **20-chunk** streams, one answering after 20 ms.
The mock is measured directly first (the baseline row), then one gateway at a time, pinned to core 0 with
one worker, forwarding ``bench-model`` to the fast mock (``bench/peers.py``'s ``measure_gateway``): a
checked answer, c=1 p50 interleaved with direct (added latency), c=32 req/s and streams/s with wrk and the
gateway's CPU during each window (CPU µs per request, per stream), then restarted in front of the 20 ms mock
for req/s at c=256; peak RSS over both. Rows: interlock with its default SQLite request log, with the log
off, on the Granian engine (log on), then LiteLLM and Portkey when ``make bench-peers`` has installed them
(else "not measured"). Then one worker against two (``--workers 2``, unpinned) and, under callgrind
(``bench/pipeline.py --instructions``: the pipeline in process; ``bench/gateway_instructions.py``: the whole
``interlock serve`` process, server, vendor client and log included), instructions per request with the log
off, on, and per stream.

Prints markdown tables (for docs/performance.md) with the command, writes ``bench/results/table.json``
and ``table.md``. See ``bench/README.md``.

    .venv/bin/python bench/table.py [--quick] [--no-instructions] [--no-workers] [--rows interlock,litellm]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    GATEWAY_CORE,
    LOAD_CORE,
    UPSTREAM_KEY,
    VENDOR_MODEL,
    BenchError,
    Managed,
    bench_main,
    compiled_env,
    ensure_wrk,
    environment,
    log,
    start_mock,
)
from harness_latency import measure_side, probe
from peers import (
    DEFAULT_CACHE,
    DEFAULT_INTERLOCK,
    check_machine,
    measure_direct,
    measure_gateway,
    prepare,
    run_measured,
    write_result,
)
from peers_gateways import LABELS, LITELLM_VERSION, PORTKEY_VERSION, Launch, NotMeasured
from table_report import LATENCY, render, summarise, warnings_of

#: The table's rows after direct, in the issue's order: (gateway, request log, engine, compiled build, label).
ROWS: dict[str, tuple[str, str, str, bool, str]] = {
    "interlock": ("interlock", "sqlite", "native", False, "interlock (native server, log on)"),
    "interlock-log-off": ("interlock", "off", "native", False, "interlock, log off"),
    "interlock-compiled": ("interlock", "sqlite", "native", True, "interlock compiled (make fast), log on"),
    "interlock-compiled-log-off": ("interlock", "off", "native", True, "interlock compiled, log off"),
    "interlock-granian": ("interlock", "sqlite", "granian", False, "interlock, Granian engine"),
    "portkey": ("portkey", "", "", False, f"{LABELS['portkey']} {PORTKEY_VERSION} (Node)"),
    "litellm": ("litellm", "", "", False, f"{LABELS['litellm']} {LITELLM_VERSION}"),
}
STREAM_CHUNKS = 20  # chunk events per mock stream, role to finish (+ the usage chunk)
VENDOR_LATENCY_MS = 20.0


# ---------------------------------------------------------------------------
# The gateways


def prepare_row(row: str, args: argparse.Namespace, mock_port: int, tmp: Path) -> Launch | NotMeasured:
    """``bench/peers.py``'s ``prepare`` for one row, in front of the mock on ``mock_port``.

    Peers come from ``make bench-peers``'s cache: one not there is "not measured", not a failure, unless
    ``--install-peers`` was asked for.
    """
    gateway, request_log, engine, compiled, _ = ROWS[row]
    where = tmp / row / str(mock_port)
    where.mkdir(parents=True, exist_ok=True)  # a fresh INTERLOCK_HOME per row and mock
    launch = prepare(gateway, argparse.Namespace(**{**vars(args), "mock_port": mock_port,
                                                     "interlock_log": request_log or "sqlite"}),
                     where, **({"engine": engine, "compiled": compiled} if gateway == "interlock" else {}))
    if isinstance(launch, NotMeasured):
        if gateway != "interlock" and not args.install:
            reason = launch.reason.removeprefix("install failed: ")
            return dataclasses.replace(launch, reason=f"{reason}; make bench-peers installs it", failed=False)
        return launch
    return dataclasses.replace(launch, name=row)


def measure_plain(launch: Launch, mock: Managed, wrk: str, args: argparse.Namespace, tmp: Path,
                  out: dict[str, Any], phase: str) -> dict[str, Any]:
    """Start ``launch``, check its answers, measure non-streamed req/s with ``args.concurrency`` into ``out[phase]``."""
    def body(gw: Managed) -> None:
        result: dict[str, Any] = {launch.name: {"probe": probe(args.gateway_port, launch.model, launch.key,
                                                               launch.headers)}}
        measure_side(launch.name, args.gateway_port, launch.model, launch.key, wrk=wrk, args=args,
                     procs={"mock": mock, "gateway": gw}, gateway=gw, result=result, streaming=False,
                     headers=launch.headers, phase=phase)
        out[phase] = result[launch.name][phase]

    return run_measured(launch, args.gateway_port, args.start_timeout, tmp, out, body)


def at_latency(args: argparse.Namespace) -> argparse.Namespace:
    """The wrk settings of the 20 ms column: ``--latency-concurrency`` connections."""
    return argparse.Namespace(**{**vars(args), "concurrency": args.latency_concurrency})


def measure_row(row: str, mocks: dict[str, Managed], wrk: str, args: argparse.Namespace,
                tmp: Path) -> dict[str, Any]:
    label = ROWS[row][4]
    launch = prepare_row(row, args, args.mock_port, tmp)
    if isinstance(launch, NotMeasured):
        status = "failed" if launch.failed else "not measured"
        log(f"{row}: {status}: {launch.reason}")
        return {"status": status, "label": label, "version": launch.version, "reason": launch.reason}
    log(f"--- {label} ---")
    out = measure_gateway(launch, mocks["fast"], wrk, args, tmp, label=label)
    if out["status"] != "measured":
        return out
    slow = prepare_row(row, args, args.latency_mock_port, tmp)
    if isinstance(slow, NotMeasured):  # it was prepared a moment ago: only a vanished install gets here
        return {**out, "status": "failed", "reason": slow.reason}
    log(f"{row}: restarted in front of the {VENDOR_LATENCY_MS:g} ms mock")
    return measure_plain(slow, mocks["slow"], wrk, at_latency(args), tmp, out, LATENCY)


def measure_direct_row(mocks: dict[str, Managed], wrk: str, args: argparse.Namespace) -> dict[str, Any]:
    out = measure_direct(mocks["fast"], wrk, args)
    result: dict[str, Any] = {"direct": {"probe": probe(args.latency_mock_port, VENDOR_MODEL, UPSTREAM_KEY)}}
    measure_side("direct", args.latency_mock_port, VENDOR_MODEL, UPSTREAM_KEY, wrk=wrk, args=at_latency(args),
                 procs={"mock": mocks["slow"]}, gateway=None, result=result, streaming=False, phase=LATENCY)
    out[LATENCY] = result["direct"][LATENCY]
    return out


def measure_workers(mocks: dict[str, Managed], wrk: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """interlock with one worker on core 0, then two workers unpinned, back to back, c=32 non-streamed."""
    out: dict[str, Any] = {"request_log": args.workers_log}
    for key, workers, pinned in (("one", 1, True), ("two", 2, False)):
        where = tmp / f"workers-{workers}"
        where.mkdir()
        launch = prepare("interlock", argparse.Namespace(**{**vars(args), "interlock_log": args.workers_log}),
                         where, workers=workers, pinned=pinned)
        label = f"interlock, {workers} worker{'s' if workers > 1 else ''}"
        if isinstance(launch, NotMeasured):
            out[key] = {"status": "failed", "label": label, "reason": launch.reason}
            continue
        launch = dataclasses.replace(launch, name=f"interlock-{workers}w")
        out[key] = measure_plain(launch, mocks["fast"], wrk, args, where,
                                 {"status": "measured", "label": label, "workers": workers, "pinned": pinned,
                                  "command": launch.cmd}, "c32")
    return out


# ---------------------------------------------------------------------------
# Instructions per request (callgrind, deterministic)

#: Ports of the whole-process runs (``bench/gateway_instructions.py``): each its own mock and gateway.
WHOLE_PORTS = {"whole_log_off": (9181, 8481), "whole_log_on": (9182, 8482), "whole_stream": (9183, 8483),
               "whole_compiled_log_off": (9184, 8484), "whole_compiled_log_on": (9185, 8485),
               "whole_compiled_stream": (9186, 8486)}


def instruction_runs(args: argparse.Namespace) -> dict[str, tuple[str, list[str]]]:
    """Each callgrind run: its script and arguments. ``bench/pipeline.py`` counts the pipeline in process
    (no server, no sockets); ``bench/gateway_instructions.py`` the whole ``interlock serve`` process."""
    n, n_stream = args.instructions_n, max(32, args.instructions_n // 2 // 32 * 32)
    runs = {
        "log_off": ("pipeline.py", ["--instructions", "-n", str(n)]),
        "log_on": ("pipeline.py", ["--instructions", "-n", str(n), "--log", "sqlite"]),
        "stream": ("pipeline.py", ["--instructions", "-n", str(n_stream), "--stream",
                                   "--stream-chunks", str(STREAM_CHUNKS)]),
    }
    if args.whole_process:
        for build, flags in (("", []), ("compiled_", ["--compiled"])):
            for kind, extra in (("log_off", ["--log", "off"]), ("log_on", ["--log", "sqlite"]),
                                ("stream", ["--log", "off", "--stream", "--chunks", str(STREAM_CHUNKS)])):
                name = f"whole_{build}{kind}"
                mock_port, gateway_port = WHOLE_PORTS[name]
                runs[name] = ("gateway_instructions.py", ["-n", str(args.whole_n), *extra, *flags, "--mock-port",
                                                          str(mock_port), "--gateway-port", str(gateway_port)])
    return runs


def measure_instructions(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Every callgrind run at once (callgrind counts do not depend on load)."""
    runs = instruction_runs(args)
    procs: dict[str, Managed] = {}
    out: dict[str, Any] = {}
    log(f"instructions under callgrind: {', '.join(runs)} at once (several minutes)")
    try:
        for name, (script, extra) in runs.items():
            cmd = [sys.executable, str(BENCH_DIR / script), *extra]
            procs[name] = Managed(f"instructions-{name}", cmd, env=dict(os.environ), logdir=tmp)
        for name, proc in procs.items():
            script, extra = runs[name]
            code = proc.proc.wait()
            found = re.search(r"instructions per (?:request|stream) \(.*\): ([\d,]+)", proc.output())
            if code != 0 or found is None:
                raise BenchError(f"bench/{script} {' '.join(extra)} failed ({code}):\n{proc.output(3000)}")
            out[name] = {"instructions": int(found.group(1).replace(",", "")),
                         "command": shlex.join([".venv/bin/python", f"bench/{script}", *extra])}
    finally:
        for proc in procs.values():
            proc.stop()
    return out


# ---------------------------------------------------------------------------
# The run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Issue 26's table: direct, interlock and the installed peers.")
    p.add_argument("--quick", action="store_true",
                   help="1s warm-up + 3s per measurement, instructions with -n 3200 (default 6400)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows (default all: {','.join(ROWS)}); "
                                                          "direct is always measured")
    p.add_argument("--seconds", type=int, default=None, help="seconds per measurement (default 10, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up seconds (default 2, quick 1)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the c=1 measurement (default 5)")
    p.add_argument("--concurrency", type=int, default=32, help="connections of req/s and streams/s (default 32)")
    p.add_argument("--latency-concurrency", type=int, default=256,
                   help=f"connections of the {VENDOR_LATENCY_MS:g} ms vendor column (default 256)")
    p.add_argument("--no-workers", dest="workers", action="store_false",
                   help="skip one worker vs two workers (--workers 2, unpinned)")
    p.add_argument("--workers-log", choices=("sqlite", "off"), default="sqlite",
                   help="the request log of the workers comparison (default sqlite, interlock's default)")
    p.add_argument("--no-instructions", dest="instructions", action="store_false",
                   help="skip the callgrind counts (bench/pipeline.py --instructions, a few minutes)")
    p.add_argument("--instructions-n", type=int, default=None,
                   help="requests per callgrind run of bench/pipeline.py (default 6400, quick 3200; streams: half)")
    p.add_argument("--no-whole-process", dest="whole_process", action="store_false",
                   help="skip the whole-process counts (bench/gateway_instructions.py: interlock serve under "
                        "callgrind, the slowest part of the run)")
    p.add_argument("--whole-n", type=int, default=None,
                   help="measured requests of a whole-process count (default 1500, quick 600)")
    p.add_argument("--install-peers", dest="install", action="store_true",
                   help="install missing peers as make bench-peers does (default: use its cache only)")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help=f"where peers are installed (default {DEFAULT_CACHE})")
    p.add_argument("--interlock", default=DEFAULT_INTERLOCK, help=f"the interlock executable ({DEFAULT_INTERLOCK})")
    p.add_argument("--mock-port", type=int, default=9151)
    p.add_argument("--latency-mock-port", type=int, default=9152)
    p.add_argument("--gateway-port", type=int, default=8451)
    p.add_argument("--start-timeout", type=float, default=120.0)
    p.add_argument("--out", default=str(BENCH_DIR / "results" / "table.json"),
                   help="the JSON (the markdown goes beside it as .md)")
    args = p.parse_args(argv)
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        p.error(f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(ROWS)}")
    args.rows = [r for r in ROWS if r in args.rows]
    args.duration = args.seconds if args.seconds is not None else (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if args.duration < 1 or args.warmup < 1:
        p.error("--seconds and --warmup must be at least 1 (wrk's granularity)")
    if args.instructions_n is None:
        args.instructions_n = 3200 if args.quick else 6400
    if args.whole_n is None:
        args.whole_n = 600 if args.quick else 1500
    if args.instructions_n < 64 or args.instructions_n % 32:
        p.error("--instructions-n must be a multiple of 32, at least 64")
    args.stream_concurrency = args.concurrency
    return args


def command_of(argv: list[str]) -> str:
    """How to reproduce the table: ``make bench`` when it ran this (``BENCH_MAKE_ARGS``), else this script."""
    own = ".venv/bin/python bench/table.py" + (f" {shlex.join(argv)}" if argv else "")
    made = os.environ.get("BENCH_MAKE_ARGS")
    if made is None:
        return own
    return "make bench" + (f' ARGS="{made.strip()}"' if made.strip() else "") + f" (its table step: {own})"


def run(args: argparse.Namespace, argv: list[str]) -> int:
    nproc = check_machine({args.mock_port: "mock", args.latency_mock_port: f"{VENDOR_LATENCY_MS:g} ms mock",
                           args.gateway_port: "gateway"})
    wrk = ensure_wrk()
    if any(ROWS[row][3] for row in args.rows) or (args.instructions and args.whole_process):
        log("the compiled build (scripts/build_fast.py), before anything is measured")
        compiled_env({})
    started = _dt.datetime.now(_dt.UTC)
    result: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_of(argv),
        "machine": {"nproc": nproc, **environment()},
        "config": {"duration": args.duration, "warmup": args.warmup, "rounds": args.rounds,
                   "concurrency": args.concurrency, "latency_concurrency": args.latency_concurrency,
                   "vendor_latency_ms": VENDOR_LATENCY_MS, "mock_chunks": STREAM_CHUNKS,
                   "gateway_core": GATEWAY_CORE, "load_core": LOAD_CORE},
        "gateways": {},
    }
    with tempfile.TemporaryDirectory(prefix="interlock-table-") as tmpdir:
        tmp = Path(tmpdir)
        cores = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {LOAD_CORE})  # the orchestrator and the c=1 client stay off the gateway's core
        mocks: dict[str, Managed] = {}
        try:
            for key, port, latency in (("fast", args.mock_port, 0.0),
                                       ("slow", args.latency_mock_port, VENDOR_LATENCY_MS)):
                (tmp / key).mkdir()  # each mock's log in its own directory
                mocks[key] = start_mock(port, tmp / key, chunks=STREAM_CHUNKS, latency_ms=latency)
            result["gateways"]["direct"] = measure_direct_row(mocks, wrk, args)
            for row in args.rows:
                result["gateways"][row] = measure_row(row, mocks, wrk, args, tmp)
            if args.workers:
                log("--- one worker vs two workers ---")
                result["workers"] = measure_workers(mocks, wrk, args, tmp)
        finally:
            for mock in mocks.values():
                mock.stop()
        os.sched_setaffinity(0, cores)  # the callgrind runs (children) may use every core
        if args.instructions:
            try:
                result["instructions"] = measure_instructions(args, tmp)
            except BenchError as exc:  # the load figures are kept; the run exits 1
                log(f"instructions: FAILED: {exc}")
                result["instructions"] = {"status": "failed", "reason": str(exc).splitlines()[0]}
    result["summary"] = summarise(result)
    result["warnings"] = warnings_of(result)
    result["table"] = render(result)
    workers = result.get("workers") or {}
    return write_result(result, Path(args.out), [*result["gateways"].values(), result.get("instructions", {}),
                                                  *(workers[k] for k in ("one", "two") if k in workers)])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return bench_main("bench table", lambda: run(parse_args(argv), argv))


if __name__ == "__main__":
    sys.exit(main())
