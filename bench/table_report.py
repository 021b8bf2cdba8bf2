"""``bench/table.py``'s report: the ratios of a run, its markdown tables and its warnings."""

from __future__ import annotations

from typing import Any

from peers import heading
from peers import warnings_of as row_warnings

LATENCY = "latency"  # the phase key of "req/s at 20 ms vendor latency, c=256"
STREAM_RATIO_TARGET = 1.3  # CPU per 20-chunk stream / CPU per whole answer (issue 26)
WORKERS_TARGET = 1.8  # two workers' req/s / one worker's (issue 26)
DASH = "-"


def _get(row: dict[str, Any] | None, *path: str) -> Any:
    cur: Any = row
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def _share(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def _num(v: float | None, digits: int = 0) -> str:
    return DASH if v is None else f"{v:,.{digits}f}"


def _pct(v: float | None) -> str:
    return DASH if v is None else f"{100 * v:.1f}%"


def _times(v: float | None) -> str:
    return DASH if v is None else f"{v:.2f}x"


def _change(v: float | None) -> str:
    return DASH if v is None else f"{100 * (v - 1):+.1f}%"


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The ratios: per row, req/s as a share of direct (c=32, 20 ms) and the stream CPU ratio; log on vs off;
    two workers vs one; instructions of the log and of a stream against a whole answer with the log off."""
    rows = result["gateways"]
    direct = rows.get("direct")
    out: dict[str, Any] = {"rows": {}}
    for name, row in rows.items():
        if row.get("status") != "measured":
            continue
        per_request = _get(row, "c32", "cpu_us_per_request")
        per_stream = _get(row, "stream", "cpu_us_per_request")
        out["rows"][name] = {
            "c32_of_direct": _share(_get(row, "c32", "rps"), _get(direct, "c32", "rps")),
            "latency_of_direct": _share(_get(row, LATENCY, "rps"), _get(direct, LATENCY, "rps")),
            "cpu_us_per_request": per_request,
            "cpu_us_per_stream": per_stream,
            "stream_cpu_ratio": _share(per_stream, per_request),
        }
    on, off = out["rows"].get("interlock"), out["rows"].get("interlock-log-off")
    if on and off:
        out["log_on_vs_off"] = {
            "rps": _share(_get(rows, "interlock", "c32", "rps"), _get(rows, "interlock-log-off", "c32", "rps")),
            "cpu_us_per_request": _share(on["cpu_us_per_request"], off["cpu_us_per_request"]),
        }
    workers = result.get("workers")
    if workers and _get(workers, "one", "status") == _get(workers, "two", "status") == "measured":
        one, two = workers["one"]["c32"], workers["two"]["c32"]
        per_core = {k: _share(w["rps"], w["cpu_cores"].get("gateway")) for k, w in (("one", one), ("two", two))}
        efficiency = _share(per_core["two"], per_core["one"])
        out["workers"] = {
            "raw": _share(two["rps"], one["rps"]),
            "rps_per_gateway_core": per_core,
            "per_core_efficiency": efficiency,
            # Two workers with a core each, at the per-core rate they kept here, over one worker with a core.
            "projected": 2 * efficiency if efficiency is not None else None,
            "load_cores": {k: w["cpu_cores"].get("mock", 0.0) + w["cpu_cores"].get("harness_and_wrk", 0.0)
                           for k, w in (("one", one), ("two", two))},
        }
    instr = result.get("instructions") or {}
    for prefix in ("", "whole_", "whole_compiled_"):
        base = _get(instr, f"{prefix}log_off", "instructions")
        if base:
            out[f"{prefix}instructions"] = {
                "log_on_vs_off": _share(_get(instr, f"{prefix}log_on", "instructions"), base),
                "stream_vs_request": _share(_get(instr, f"{prefix}stream", "instructions"), base)}
    # The compiled build against the interpreted one, request for request (the "half" is 0.5).
    compiled = {kind: _share(_get(instr, f"whole_compiled_{kind}", "instructions"),
                             _get(instr, f"whole_{kind}", "instructions")) for kind in ("log_off", "log_on", "stream")}
    if any(v is not None for v in compiled.values()):
        out["compiled_vs_interpreted"] = compiled
    return out


def _label(name: str, row: dict[str, Any]) -> str:
    return "direct to the mock" if name == "direct" else str(row["label"])


def _main_table(result: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    cfg = result["config"]
    c, lc, ms = cfg["concurrency"], cfg["latency_concurrency"], cfg["vendor_latency_ms"]
    lines = [f"| | req/s c={c} | CPU µs/request c={c} | added p50 c=1 | streams/s c={c} | "
             f"req/s at {ms:g} ms vendor latency, c={lc} | peak RSS |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in result["gateways"].items():
        label = _label(name, row)
        if row.get("status") != "measured":
            status = "not measured (not installed)" if row.get("status") == "not measured" else "FAILED"
            lines.append(f"| {label} | {status} |" + f" {DASH} |" * 5)
            continue
        ratios = summary["rows"][name]
        if name == "direct":
            cpu = added = rss = DASH
        else:
            cpu = _num(ratios["cpu_us_per_request"])
            added = f"{row['c1_added_p50_ms']:+.2f} ms"
            rss = f"{_num(row.get('peak_rss_mib'))} MiB"
        lines.append(f"| {label} | {_num(_get(row, 'c32', 'rps'))} | {cpu} | {added} | "
                     f"{_num(_get(row, 'stream', 'rps'))} | {_num(_get(row, LATENCY, 'rps'))} | {rss} |")
    return lines


def _ratio_table(result: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    cfg = result["config"]
    lines = [f"| | req/s c={cfg['concurrency']}, % of direct | req/s at {cfg['vendor_latency_ms']:g} ms, % of direct "
             f"| CPU µs/stream | stream CPU ratio (target ≤ {STREAM_RATIO_TARGET}x) | SSE chunks/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, ratios in summary["rows"].items():
        row = result["gateways"][name]
        label = _label(name, row)
        ratio = ratios["stream_cpu_ratio"]
        verdict = "" if ratio is None else (" ✓" if ratio <= STREAM_RATIO_TARGET else " ✗")
        lines.append(f"| {label} | {_pct(ratios['c32_of_direct'])} | {_pct(ratios['latency_of_direct'])} | "
                     f"{_num(ratios['cpu_us_per_stream'])} | {_times(ratio)}{verdict} | "
                     f"{_num(_get(row, 'stream', 'chunks_per_s'))} |")
    return lines


def _workers_lines(result: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    workers = result.get("workers")
    if not workers:
        return []
    log = "log on (SQLite)" if workers["request_log"] == "sqlite" else "log off"
    c = result["config"]["concurrency"]
    lines = ["", f"One worker vs two (interlock, native server, {log}, c={c}, non-streamed; mock and wrk on core "
             f"{result['config']['load_core']}):", "",
             "| | gateway on | req/s | gateway CPU (cores) | req/s per gateway core | mock CPU (cores) | "
             "wrk + harness CPU (cores) |", "|---|---|---:|---:|---:|---:|---:|"]
    for key in ("one", "two"):
        entry = workers.get(key) or {}
        label = "1 worker" if key == "one" else "2 workers"
        if entry.get("status") != "measured":
            lines.append(f"| {label} | FAILED: {entry.get('reason', '?')} | | | | | |")
            continue
        cpu = entry["c32"]["cpu_cores"]
        where = f"core {result['config']['gateway_core']}" if entry["pinned"] else f"all {result['machine']['nproc']} cores (unpinned)"
        lines.append(f"| {label} | {where} | {_num(entry['c32']['rps'])} | {cpu.get('gateway', 0):.2f} | "
                     f"{_num(_share(entry['c32']['rps'], cpu.get('gateway')))} | {cpu.get('mock', 0):.2f} | "
                     f"{cpu.get('harness_and_wrk', 0):.2f} |")
    found = summary.get("workers")
    if found:
        projected = found["projected"]
        verdict = "" if projected is None else ("met" if projected >= WORKERS_TARGET else "missed")
        load = found["load_cores"]["two"]
        lines += ["", f"Two workers ÷ one: {_times(found['raw'])} req/s as measured; req/s per gateway "
                  f"core-second {_times(found['per_core_efficiency'])} of one worker's, so {_times(projected)} "
                  f"projected for two workers with a core each against one worker with one (target ≥ "
                  f"{WORKERS_TARGET}x: {verdict}). On this {result['machine']['nproc']}-core machine the load "
                  f"generator is not free: the mock and wrk used {load:.2f} cores during the two-worker run, leaving "
                  f"the gateway at most {2 - load:.2f}, so the measured ratio cannot reach 2x (nor the target when "
                  f"the load needs more than {2 - WORKERS_TARGET:.1f} cores). The projection assumes each worker "
                  "keeps the per-core rate it had here, where one shared a core with the load; it is the figure to "
                  "hold against the target, the measured one what this machine gives."]
    return lines


def _instruction_lines(result: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    instr = result.get("instructions")
    if not instr:
        return []
    if instr.get("status") == "failed":
        return ["", f"Instructions per request: FAILED: {instr['reason']}"]
    chunks = result["config"]["mock_chunks"]
    lines = ["", "Instructions per request under callgrind (the same count on a busy or a quiet machine): the "
             "whole `interlock serve` process (server, pipeline, vendor client, log; issue 26's measure) and the "
             "pipeline alone in process (no server, no sockets):", "",
             "| request | instructions | command |", "|---|---:|---|"]
    compiled = summary.get("compiled_vs_interpreted", {})
    for prefix, where in (("whole_", "whole process"), ("whole_compiled_", "whole process, compiled build"),
                          ("", "pipeline alone")):
        ratios = summary.get(f"{prefix}instructions", {})
        rows = ((f"{prefix}log_off", "whole answer, log off", ""),
                (f"{prefix}log_on", "whole answer, log on (SQLite, level metadata)",
                 f" ({_change(ratios.get('log_on_vs_off'))} vs log off)"),
                (f"{prefix}stream", f"{chunks}-chunk stream, log off" + (
                    ", one network read per event" if not prefix else ", as the mock flushes it"),
                 f" ({_times(ratios.get('stream_vs_request'))} a whole answer; target ≤ {STREAM_RATIO_TARGET}x)"))
        for key, label, note in rows:
            if key in instr:
                kind = key.removeprefix(prefix)
                if prefix == "whole_compiled_" and compiled.get(kind) is not None:
                    note += f" ({_change(compiled[kind])} vs interpreted)"
                lines.append(f"| {where}: {label} | {_num(instr[key]['instructions'])}{note} | "
                             f"`{instr[key]['command']}` |")
    return lines


def render(result: dict[str, Any]) -> str:
    """The report of a run (``result`` as written to table.json): heading, tables, notes, warnings."""
    summary = result.get("summary") or summarise(result)
    m, cfg = result["machine"], result["config"]
    lines = [
        *heading(result, "interlock benchmark table (issue 26)", "the two mocks, wrk and the c=1 client",
                 f"; streams of {cfg['mock_chunks']} chunk events (+ usage); Python {m['python']}, commit "
                 f"{(m.get('git_commit') or '?')[:7]}"),
        "",
        *_main_table(result, summary),
        "",
        *_ratio_table(result, summary),
    ]
    log_ratio = summary.get("log_on_vs_off")
    if log_ratio:
        lines += ["", f"Request log on vs off (the two rows, measured one after the other): req/s "
                  f"{_change(log_ratio['rps'])}, CPU µs/request {_change(log_ratio['cpu_us_per_request'])}. "
                  "bench/run.py's concurrent measurement (both gateways sharing the core at once) is the steadier "
                  "figure."]
    lines += _workers_lines(result, summary)
    lines += _instruction_lines(result, summary)
    lines += ["", f"CPU µs/request: the gateway's process-tree CPU seconds (utime + stime, /proc) during wrk's "
              f"measured window ÷ requests answered in it; per stream the same over streams. Stream CPU ratio = "
              f"CPU µs per stream ÷ CPU µs per whole request. added p50 c=1: the gateway's p50 - direct's, "
              f"interleaved in {cfg['rounds']} rounds. The {cfg['vendor_latency_ms']:g} ms column: a second mock "
              f"that answers after {cfg['vendor_latency_ms']:g} ms, wrk -c{cfg['latency_concurrency']}, the gateway "
              "restarted in front of it. Peak RSS: VmHWM of the gateway's process tree over both runs, MiB. "
              "% of direct: the row's req/s over direct's in the same column."]
    for row in result["gateways"].values():
        if row.get("status") in ("not measured", "failed"):
            lines.append(f"- {row['label']}: {row['status']}: {row.get('reason', '')}")
    lines += [f"WARNING: {w}" for w in result.get("warnings", [])]
    return "\n".join(lines)


def warnings_of(result: dict[str, Any]) -> list[str]:
    """Failed requests or other load, in the table's rows (every phase) and in the workers comparison."""
    workers = {k: v for k, v in (result.get("workers") or {}).items() if k in ("one", "two")}
    phases = ("c1", "c32", "stream", LATENCY)
    return row_warnings(result, phases) + row_warnings({"gateways": workers}, phases)
