"""interlock against other LLM gateways, side by side, in one run (``make bench-peers``).

Installs the peers from their registries into ``~/.cache/interlock-bench/peers`` (``bench/peers_gateways.py``:
pinned versions, configurations), starts the mock vendor (``bench/mock_upstream.py``, core 1), measures it
directly (the baseline), then one gateway at a time, pinned to core 0, forwarding ``bench-model`` to the mock:
a checked non-streaming and streaming answer, c=1 p50/p99 (interleaved with direct: added latency), c=32
req/s and p50/p99 with wrk, SSE chunks/s at c=32 streaming, and peak RSS. Prints a markdown table and writes
``bench/results/peers.json``. Peers that cannot be installed from a registry are listed as not measured,
with the reason. See ``bench/README.md``.

    .venv/bin/python bench/peers.py [--quick] [--only interlock,litellm] [--seconds N]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    GATEWAY_CORE,
    LOAD_CORE,
    OTHER_LOAD_LIMIT,
    REPO,
    UPSTREAM_KEY,
    VENDOR_MODEL,
    BenchError,
    Managed,
    bench_main,
    cpu_meter,
    ensure_wrk,
    environment,
    log,
    port_in_use,
    start_mock,
    wait_healthy,
)
from harness_latency import chat_request, measure_side, probe, sequential_latency
from peers_gateways import (
    ALL,
    LABELS,
    InstallError,
    Launch,
    NotMeasured,
    check_bifrost,
    check_helicone,
    prepare_interlock,
    prepare_litellm,
    prepare_portkey,
)

DEFAULT_CACHE = Path.home() / ".cache" / "interlock-bench" / "peers"
DEFAULT_INTERLOCK = str(REPO / ".venv" / "bin" / "interlock")


def prepare(name: str, args: argparse.Namespace, tmp: Path, **interlock: Any) -> Launch | NotMeasured:
    """Install (when needed) and configure one gateway; a failure becomes a NotMeasured that fails the run.

    ``interlock`` are ``prepare_interlock``'s options (engine, workers, pinned) for the interlock gateway.
    """
    cache, install = Path(args.cache), args.install
    try:
        if name == "interlock":
            return prepare_interlock(Path(args.interlock), args.gateway_port, args.mock_port, args.interlock_log, tmp,
                                     **interlock)
        if name == "litellm":
            return prepare_litellm(cache, install, args.gateway_port, args.mock_port, tmp)
        if name == "portkey":
            return prepare_portkey(cache, install, args.gateway_port, args.mock_port)
        if name == "bifrost":
            return check_bifrost(cache, install)
        return check_helicone()
    except InstallError as exc:
        return NotMeasured(name, f"install failed: {exc}", failed=True)


def run_measured(launch: Launch, port: int, timeout: float, tmp: Path, out: dict[str, Any],
                 body: Callable[[Managed], None]) -> dict[str, Any]:
    """Start ``launch`` on ``port``, wait for its health endpoint, run ``body`` on it, stop it.

    ``body`` fills ``out``; a failure to start, a wrong answer or a death during the run marks ``out`` failed
    with the gateway's output instead of raising. The peak RSS of its process tree lands in ``out``.
    """
    log(f"{launch.name}: starting: {shlex.join(launch.cmd)}")
    gw = Managed(launch.name, launch.cmd, env=launch.env, logdir=tmp, cwd=launch.cwd)
    try:
        try:
            wait_healthy(gw, port, launch.health_path, timeout)
            gw.sample_rss()
            out.setdefault("rss_after_start_mib", sum(gw.peak_rss_kib.values()) / 1024)
            body(gw)
            if not gw.alive():
                raise BenchError(f"{launch.name} died during the run")
            gw.sample_rss()
            out["peak_rss_mib"] = max(out.get("peak_rss_mib", 0.0), sum(gw.peak_rss_kib.values()) / 1024)
            out["processes"] = len(gw.peak_rss_kib)
        except (BenchError, OSError) as exc:
            log(f"{launch.name}: FAILED: {exc}\n--- {launch.name} output ---\n{gw.output()}")
            out.update(status="failed", reason=f"{str(exc).splitlines()[0][:300]}", output=gw.output())
    finally:
        gw.stop()
    return out


def measure_gateway(
    launch: Launch, mock: Managed, wrk: str, args: argparse.Namespace, tmp: Path, label: str | None = None
) -> dict[str, Any]:
    """Start one gateway on the gateway core, check its answers, measure it, stop it."""
    out: dict[str, Any] = {"status": "measured", "label": label or LABELS[launch.name], "version": launch.version,
                           "command": launch.cmd, "settings": launch.settings}

    def body(gw: Managed) -> None:
        out["probe"] = probe(args.gateway_port, launch.model, launch.key, launch.headers)
        log(f"{launch.name}: answers checked ({out['probe']['stream_chunks']} chunks per stream); "
            f"c=1 interleaved with direct, {args.warmup:g}s warm-up + {args.duration:g}s each")
        procs = {"mock": mock, "gateway": gw}
        with cpu_meter(procs) as c1_cpu:
            c1 = sequential_latency(
                {
                    "direct": (args.mock_port, chat_request(args.mock_port, VENDOR_MODEL, UPSTREAM_KEY)),
                    launch.name: (args.gateway_port, chat_request(
                        args.gateway_port, launch.model, launch.key, headers=launch.headers)),
                },
                warmup=args.warmup, seconds=args.duration, rounds=args.rounds,
            )
        out["c1"] = {**c1[launch.name].__dict__, "cpu_cores": dict(c1_cpu)}
        out["c1_direct"] = c1["direct"].__dict__
        out["c1_added_p50_ms"] = c1[launch.name].p50_ms - c1["direct"].p50_ms
        out["c1_added_p99_ms"] = c1[launch.name].p99_ms - c1["direct"].p99_ms
        gw.sample_rss()
        result: dict[str, Any] = {launch.name: {"probe": out["probe"]}}
        measure_side(launch.name, args.gateway_port, launch.model, launch.key, wrk=wrk, args=args,
                     procs=procs, gateway=gw, result=result, headers=launch.headers)
        out["c32"], out["stream"] = result[launch.name]["c32"], result[launch.name]["stream"]

    return run_measured(launch, args.gateway_port, args.start_timeout, tmp, out, body)


def measure_direct(mock: Managed, wrk: str, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"direct": {"probe": probe(args.mock_port, VENDOR_MODEL, UPSTREAM_KEY)}}
    log(f"direct: c=1, {args.warmup:g}s warm-up + {args.duration:g}s")
    with cpu_meter({"mock": mock}) as cpu:
        c1 = sequential_latency({"direct": (args.mock_port, chat_request(args.mock_port, VENDOR_MODEL, UPSTREAM_KEY))},
                                warmup=args.warmup, seconds=args.duration, rounds=args.rounds)
    result["direct"]["c1"] = {**c1["direct"].__dict__, "cpu_cores": dict(cpu)}
    measure_side("direct", args.mock_port, VENDOR_MODEL, UPSTREAM_KEY, wrk=wrk, args=args, procs={"mock": mock},
                 gateway=None, result=result)
    return {"status": "measured", "label": LABELS["direct"], "version": "bench/mock_upstream.py",
            **result["direct"]}


# ---------------------------------------------------------------------------
# The report


def _num(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "-"
    r = ours / theirs
    return f"{r:.2f}" if r < 10 else f"{r:.1f}"


def heading(result: dict[str, Any], title: str, load: str = "mock, wrk and the latency client",
            extra: str = "") -> list[str]:
    """A report's first lines: the title and date, the command that reproduces it, the machine and the placement."""
    m, cfg = result["machine"], result["config"]
    return [
        f"{title}, {result['started_at']}",
        f"command: `{result['command']}`",
        f"machine: {m['nproc']} cores (nproc), {m['cpu']}, Linux {m['kernel']}; one gateway at a time, 1 worker, "
        f"pinned to core {GATEWAY_CORE}; {load} on core {LOAD_CORE}; "
        f"{cfg['warmup']:g}s warm-up + {cfg['duration']:g}s per measurement{extra}",
    ]


def render_table(result: dict[str, Any]) -> str:
    """The markdown table of a run (``result`` as written to peers.json), with its heading and notes."""
    rows = result["gateways"]
    ours = (rows.get("interlock") or {}).get("c32", {}).get("rps")
    lines = [
        *heading(result, "interlock vs peers"),
        "",
        "| gateway | version | c=1 p50 added (ms) | c=32 req/s | interlock ÷ peer (c=32 req/s) | SSE chunks/s "
        "(c=32) | peak RSS (MiB) |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for name, row in rows.items():
        label, ver = row["label"], row.get("version") or "-"
        if row["status"] != "measured":
            lines.append(f"| {label} | {ver} | {row['status']} | - | - | - | - |")
            continue
        added = "0 (baseline)" if name == "direct" else f"{row['c1_added_p50_ms']:+.3f}"
        rss = _num(row.get("peak_rss_mib"), 1) if name != "direct" else "-"
        lines.append(
            f"| {label} | {ver} | {added} | {_num(row['c32']['rps'])} | "
            f"{'1.00' if name == 'interlock' else _ratio(ours, row['c32']['rps'])} | "
            f"{_num(row['stream']['chunks_per_s'])} | {rss} |"
        )
    lines += ["", "| gateway | c=1 p50 / p99 (ms) | c=32 p50 / p99 (ms) | gateway CPU at c=32 (cores) | "
                  "chunks per stream |", "|---|--:|--:|--:|--:|"]
    for row in rows.values():
        if row["status"] == "measured":
            c1, c32 = row["c1"], row["c32"]
            cpu = c32.get("cpu_cores", {}).get("gateway")
            lines.append(f"| {row['label']} | {c1['p50_ms']:.3f} / {c1['p99_ms']:.3f} | {c32['p50_ms']:.2f} / "
                         f"{c32['p99_ms']:.2f} | {_num(cpu, 2)} | {row['stream']['chunks_per_stream']} |")
    lines += ["", "c=1: one keep-alive connection, one request at a time (perf_counter_ns); each gateway interleaved "
              "with direct in rounds, added = its p50 - direct's p50 of the same rounds. c=32: wrk -t1 -c32. SSE "
              "chunks/s = streams/s x chunk events per stream (its own probe count). RSS: VmHWM of the gateway's "
              "process tree. interlock ÷ peer: interlock's c=32 req/s over the row's."]
    lines += ["", "Settings:"]
    for row in rows.values():
        settings = row.get("settings") or {}
        brief = "; ".join(f"{k}: {v}" for k, v in settings.items() if k not in ("config", "package.json"))
        if brief:
            lines.append(f"- {row['label']}: {brief}")
    for row in rows.values():
        if row["status"] != "measured":
            lines.append(f"- {row['label']}: {row['status']}: {row.get('reason', '')}")
    lines += [f"WARNING: {w}" for w in result.get("warnings", [])]
    return "\n".join(lines)


def warnings_of(result: dict[str, Any], phases: tuple[str, ...] = ("c1", "c32", "stream")) -> list[str]:
    """Measurements of ``result["gateways"]`` with more than 1% failed requests, or disturbed by other load."""
    out = []
    for row in result["gateways"].values():
        if row.get("status") != "measured":
            continue
        for phase in phases:
            entry = row.get(phase) or {}
            n = entry.get("requests") or entry.get("samples") or 1
            if entry.get("errors", 0) > 0.01 * n:
                out.append(f"{row['label']} {phase}: {entry['errors']} failed requests of {n}")
            cpu = entry.get("cpu_cores") or {}
            if cpu.get("other", 0) > OTHER_LOAD_LIMIT or cpu.get("steal", 0) > OTHER_LOAD_LIMIT:
                out.append(f"{row['label']} {phase}: processes outside the benchmark used {cpu.get('other', 0):.2f} "
                           f"cores (steal {cpu.get('steal', 0):.2f}): not reliable, rerun on a quiet machine")
    return out


# ---------------------------------------------------------------------------
# The run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="interlock against other LLM gateways, side by side, in one run.")
    p.add_argument("--quick", action="store_true", help="short windows: 1s warm-up + 3s per measurement")
    p.add_argument("--only", default=",".join(ALL),
                   help=f"comma-separated gateways (default all: {','.join(ALL)}); direct is always measured")
    p.add_argument("--seconds", type=int, default=None, help="seconds per measurement (default 10, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up seconds (default 2, quick 1)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the c=1 measurement (default 5)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--interlock-log", choices=("sqlite", "off"), default="sqlite",
                   help="interlock's request log: its default SQLite log (default) or off")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help=f"where peers are installed (default {DEFAULT_CACHE})")
    p.add_argument("--no-install", dest="install", action="store_false",
                   help="use the peers already in --cache; install nothing")
    p.add_argument("--interlock", default=DEFAULT_INTERLOCK)
    p.add_argument("--mock-port", type=int, default=9141)
    p.add_argument("--gateway-port", type=int, default=8441)
    p.add_argument("--start-timeout", type=float, default=120.0)
    p.add_argument("--out", default=str(BENCH_DIR / "results" / "peers.json"))
    args = p.parse_args(argv)
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(args.only) - set(ALL))
    if unknown:
        p.error(f"unknown gateway(s) {', '.join(unknown)}: choose from {', '.join(ALL)}")
    args.duration = args.seconds if args.seconds is not None else (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if args.duration < 1 or args.warmup < 1:
        p.error("--seconds and --warmup must be at least 1 (wrk's granularity)")
    args.stream_concurrency = args.concurrency
    return args


def command_of(argv: list[str]) -> str:
    return "make bench-peers" + (f' ARGS="{shlex.join(argv)}"' if argv else "")


def check_machine(ports: dict[int, str]) -> int:
    """The cores this process may use (at least 2), once taskset is there and none of ``ports`` is taken."""
    nproc = len(os.sched_getaffinity(0))
    if nproc < 2:
        raise BenchError("the benchmark needs 2 CPU cores (gateway on core 0, load on core 1)")
    if not shutil.which("taskset"):
        raise BenchError("taskset is missing (Debian package util-linux)")
    for port, what in ports.items():
        if port_in_use(port):
            raise BenchError(f"port {port} (for the {what}) is already in use: stop whatever listens there first "
                             "(or choose other ports: --help)")
    return nproc


def run(args: argparse.Namespace, argv: list[str]) -> int:
    nproc = check_machine({args.mock_port: "mock", args.gateway_port: "gateway"})
    wrk = ensure_wrk()
    started = _dt.datetime.now(_dt.UTC)
    env = environment()
    result: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_of(argv),
        "machine": {"nproc": nproc, **env},
        "config": {"duration": args.duration, "warmup": args.warmup, "rounds": args.rounds,
                   "concurrency": args.concurrency, "interlock_log": args.interlock_log,
                   "gateway_core": GATEWAY_CORE, "load_core": LOAD_CORE, "mock_chunks": 100},
        "gateways": {},
    }
    with tempfile.TemporaryDirectory(prefix="interlock-peers-") as tmpdir:
        tmp = Path(tmpdir)
        prepared = {name: prepare(name, args, tmp) for name in args.only}  # installs happen here, before any load
        os.sched_setaffinity(0, {LOAD_CORE})  # the orchestrator and the c=1 client stay off the gateway's core
        mock = start_mock(args.mock_port, tmp)
        try:
            result["gateways"]["direct"] = measure_direct(mock, wrk, args)
            for name, launch in prepared.items():
                if isinstance(launch, NotMeasured):
                    status = "failed" if launch.failed else "not measured"
                    log(f"{name}: {status}: {launch.reason}")
                    result["gateways"][name] = {"status": status, "label": LABELS[name], "version": launch.version,
                                                "reason": launch.reason}
                    continue
                result["gateways"][name] = measure_gateway(launch, mock, wrk, args, tmp)
        finally:
            mock.stop()
    result["warnings"] = warnings_of(result)
    result["table"] = render_table(result)
    return write_result(result, Path(args.out), result["gateways"].values())


def write_result(result: dict[str, Any], out: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``result`` to ``out`` (JSON) and its ``table`` beside it (.md), print the table; the exit code:
    1 when one of ``rows`` failed, 3 when a measurement had more than 1% failed requests, else 0."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(result["table"] + "\n")
    print(result["table"])
    print(f"\nresults written to {os.path.relpath(out, Path.cwd())} (the table also as .md)")
    if any(row.get("status") == "failed" for row in rows):
        return 1
    return 3 if any("failed requests" in w for w in result["warnings"]) else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return bench_main("bench-peers", lambda: run(args, argv))


if __name__ == "__main__":
    sys.exit(main())
