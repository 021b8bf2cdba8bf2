"""``bench/run.py``'s report: the targets, the side-by-side table and the interference check."""

from __future__ import annotations

from typing import Any

from harness import GATEWAY_CORE, LOAD_CORE, OTHER_LOAD_LIMIT

TARGETS = {
    "c32_rps": 10_000.0,  # >= req/s through the gateway at concurrency 32
    "c1_added_p50_ms": 0.15,  # <= added p50 latency at concurrency 1
    "stream_chunks_per_core": 80_000.0,  # >= SSE chunks/s per gateway core
    "log_cost": 0.10,  # <= share of req/s the request log costs (SQLite, PostgreSQL)
}


def fmt_ms(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    return f"{v * 1000:.1f} µs" if v < 1 else f"{v:.2f} ms"


def fmt_num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "FAIL")


def render(result: dict[str, Any]) -> str:
    d = result.get("direct")
    r = result.get("relay")
    t = result.get("through")
    cfg = result["config"]
    s = result.get("summary", {})
    Row = tuple[str, str, str, str, str, str]
    rows: list[Row] = []

    def get(side: dict[str, Any] | None, *path: str) -> Any:
        cur: Any = side
        for p in path:
            if cur is None:
                return None
            cur = cur.get(p)
        return cur

    def diff_ms(a: float | None, b: float | None) -> str:
        if a is None or b is None:
            return ""
        return ("+" if b >= a else "-") + fmt_ms(abs(b - a))

    def ratio(path: tuple[str, ...]) -> str:
        a, b = get(d, *path), get(t, *path)
        if not a or b is None:
            return ""
        return f"{b / a * 100:.1f}% of direct"

    def lat_row(label: str, path: tuple[str, ...], target: str = "") -> Row:
        return (
            label,
            fmt_ms(get(d, *path)),
            fmt_ms(get(r, *path)) if r else "",
            fmt_ms(get(t, *path)),
            diff_ms(get(d, *path), get(t, *path)),
            target,
        )

    rows.append(("concurrency 1 (sequential client)", "", "", "", "", ""))
    rows.append(
        lat_row(
            "  p50 latency",
            ("c1", "p50_ms"),
            f"added <= {fmt_ms(TARGETS['c1_added_p50_ms'])} {verdict(s.get('c1_added_p50_ok'))}"
            if t and d
            else "",
        )
    )
    rows.append(lat_row("  p99 latency", ("c1", "p99_ms")))
    if r and t:
        rows.append(
            (
                "  p50 added beyond a null relay",
                "",
                "",
                "",
                diff_ms(get(r, "c1", "p50_ms"), get(t, "c1", "p50_ms")),
                "",
            )
        )
    rows.append(
        (
            "  req/s",
            fmt_num(get(d, "c1", "rps")),
            fmt_num(get(r, "c1", "rps")) if r else "",
            fmt_num(get(t, "c1", "rps")),
            "",
            "",
        )
    )
    rows.append((f"concurrency {cfg['concurrency']} (wrk)", "", "", "", "", ""))
    rows.append(
        (
            "  req/s",
            fmt_num(get(d, "c32", "rps")),
            fmt_num(get(r, "c32", "rps")) if r else "",
            fmt_num(get(t, "c32", "rps")),
            ratio(("c32", "rps")),
            f">= {fmt_num(TARGETS['c32_rps'])} {verdict(s.get('c32_rps_ok'))}" if t else "",
        )
    )
    rows.append(lat_row("  p50 latency", ("c32", "p50_ms")))
    rows.append(lat_row("  p99 latency", ("c32", "p99_ms")))
    gw_c32 = get(t, "c32", "cpu_cores", "gateway")
    if gw_c32 is not None:
        relay_cpu = get(r, "c32", "cpu_cores", "relay")
        rows.append(
            (
                "  CPU of the proxy process",
                "",
                f"{relay_cpu:.2f} cores" if relay_cpu is not None else "",
                f"{gw_c32:.2f} cores",
                f"{gw_c32 / get(t, 'c32', 'rps') * 1e6:.1f} µs CPU/request" if get(t, "c32", "rps") else "",
                "",
            )
        )
    if (d and "stream" in d) or t:
        rows.append((f"streaming, concurrency {cfg['stream_concurrency']} (wrk)", "", "", "", "", ""))
        rows.append(
            (
                "  streams/s",
                fmt_num(get(d, "stream", "rps")),
                "",
                fmt_num(get(t, "stream", "rps")),
                ratio(("stream", "rps")),
                "",
            )
        )
        rows.append(
            (
                "  SSE chunks/s",
                fmt_num(get(d, "stream", "chunks_per_s")),
                "",
                fmt_num(get(t, "stream", "chunks_per_s")),
                "",
                "",
            )
        )
    gw_stream = get(t, "stream", "cpu_cores", "gateway")
    if gw_stream is not None:
        rows.append(("  gateway CPU", "", "", f"{gw_stream:.2f} cores", "", ""))
        rows.append(
            (
                "  SSE chunks/s per gateway core",
                "",
                "",
                fmt_num(get(t, "stream", "chunks_per_s_per_gateway_core")),
                "",
                f">= {fmt_num(TARGETS['stream_chunks_per_core'])} {verdict(s.get('stream_chunks_per_core_ok'))}",
            )
        )
    rss = result.get("gateway_peak_rss")
    if rss:
        per = " + ".join(f"{v / 1024:.1f}" for v in rss["per_process_kib"].values())
        rows.append(
            (
                "gateway peak RSS (VmHWM)",
                "",
                "",
                f"{rss['total_kib'] / 1024:.1f} MiB",
                f"{len(rss['per_process_kib'])} process(es): {per} MiB",
                "",
            )
        )

    overhead = result.get("log_overhead")
    if overhead:
        rows.append((f"request log on vs off ({overhead['rounds']} concurrent rounds)", "", "", "", "", ""))
        for kind in ("sqlite", "postgresql"):
            if kind in overhead:
                per_round = overhead[kind]["per_round"]
                rows.append((
                    f"  {'SQLite' if kind == 'sqlite' else 'PostgreSQL'} log, req/s vs off", "", "",
                    f"{100 * overhead[kind]['median']:+.1f}%",
                    f"rounds {100 * min(per_round):+.1f}% .. {100 * max(per_round):+.1f}%",
                    f"cost <= {100 * TARGETS['log_cost']:.0f}% {verdict(s.get(f'log_{kind}_cost_ok'))}",
                ))

    header = ("", "direct to mock", "null relay" if r else "", "through interlock", "difference", "target")
    widths = [max(len(row[i]) for row in [*rows, header]) for i in range(6)]
    lines = []
    env = result["environment"]
    lines.append(
        f"interlock benchmark, {result['started_at']} - {env['cpu']} x{env['cpus']}, Linux {env['kernel']}, "
        f"Python {env['python']}, interlock {env.get('interlock_version') or '?'}"
    )
    lines.append(
        f"gateway: 1 worker ({cfg.get('engine', 'native')} HTTP server) on core {GATEWAY_CORE}; mock, wrk and the latency client on core {LOAD_CORE}; "
        f"{cfg['warmup']:g}s warm-up + {cfg['duration']:g}s per measurement; "
        f"mock latency {cfg['mock_latency_ms']:g} ms, {cfg['chunks']} content chunks per stream"
        + (f" paced {cfg['chunk_delay_ms']:g} ms apart" if cfg["chunk_delay_ms"] else " (unpaced)")
    )
    lines.append("")
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths) if w)
    keep = [i for i, w in enumerate(widths) if w]
    lines.append(fmt.format(*(header[i] for i in keep)).rstrip())
    lines.append("  ".join("-" * widths[i] for i in keep))
    for row in rows:
        lines.append(fmt.format(*(row[i] for i in keep)).rstrip())
    lines.append("")
    lines.append(
        "c=1: one keep-alive connection, one request at a time, raw-socket client timed with perf_counter_ns "
        "(sub-microsecond resolution; wrk's c=1 figures are whole microseconds); difference = through - direct."
    )
    if r:
        lines.append(
            "null relay: a zero-work TCP relay (bench/mock_upstream.py --relay-to) on the gateway's core: what "
            "merely adding a hop (and crossing CPU cores) costs here; the rest is the gateway's own work."
        )
    lines.append(
        f"c={cfg['concurrency']}: wrk -t1 -c{cfg['concurrency']} --latency. SSE chunks/s = streams/s x "
        "chat.completion.chunk events per stream (counted in a probe stream: usage chunk included, [DONE] "
        "excluded); per gateway core = chunks/s / gateway CPU cores used (utime+stime from /proc)."
    )
    if result.get("log_overhead"):
        lines.append(
            "request log: gateways with the log off, on SQLite and on PostgreSQL (level metadata) run at once on "
            "the gateway's core with equal shares, each under its own wrk; per round, req/s relative to the "
            "log-off gateway; the median of the rounds (bench/logging_overhead.py, bench/README.md)."
        )
    for side_name, side in (("direct", d), ("relay", r), ("through", t)):
        for name in ("c32", "stream"):
            if get(side, name, "errors"):
                lines.append(
                    f"WARNING: {side_name} {name}: {get(side, name, 'non_2xx')} non-2xx responses, "
                    f"socket errors {get(side, name, 'socket_errors')}"
                )
        if get(side, "c1", "errors"):
            lines.append(f"WARNING: {side_name} c=1: {get(side, 'c1', 'errors')} non-200 responses")
    for label, (side_name, name) in interference(result).items():
        cpu = get(result.get(side_name), name, "cpu_cores") or {}
        lines.append(
            f"WARNING: during {label}, processes outside the benchmark used {cpu.get('other', 0):.2f} cores "
            f"(hypervisor steal {cpu.get('steal', 0):.2f}): these figures are not reliable, rerun on a quiet machine"
        )
    return "\n".join(lines)


def interference(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Measurements during which something outside the benchmark used the CPU."""
    out: dict[str, tuple[str, str]] = {}
    for side_name in ("direct", "relay", "through"):
        for name in ("c1", "c32", "stream"):
            cpu = (result.get(side_name) or {}).get(name, {}).get("cpu_cores") or {}
            if cpu.get("other", 0) > OTHER_LOAD_LIMIT or cpu.get("steal", 0) > OTHER_LOAD_LIMIT:
                label = "the c=1 measurement" if name == "c1" else f"{side_name} {name}"
                out[label] = (side_name, name)
    return out
