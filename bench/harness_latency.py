"""The c=1 latency client, the answer checks and the wrk phases shared by ``bench/run.py`` and ``bench/peers.py``."""

from __future__ import annotations

import argparse
import gc
import json
import time
from dataclasses import dataclass
from typing import Any

from harness import CHAT_BODY, CHAT_PATH, HOST, BenchError, HttpConn, Managed, cpu_meter, log, run_wrk

# ---------------------------------------------------------------------------
# The chat request and the c=1 latency client


def chat_request(
    port: int, model: str, key: str, *, stream: bool = False, headers: dict[str, str] | None = None
) -> bytes:
    body: dict[str, Any] = {"model": model, **CHAT_BODY}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return HttpConn.build(
        "POST",
        CHAT_PATH,
        port,
        json.dumps(body, separators=(",", ":")).encode(),
        {"Authorization": f"Bearer {key}", **(headers or {})},
    )


@dataclass
class LatencyResult:
    samples: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    min_ms: float
    errors: int


def _pct(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, round(q * (len(sorted_ns) - 1)))] / 1e6


def _summarise(samples: list[int], seconds: float, errors: int) -> LatencyResult:
    samples.sort()
    n = len(samples)
    return LatencyResult(
        samples=n,
        seconds=seconds,
        rps=n / seconds if seconds else 0.0,
        p50_ms=_pct(samples, 0.50),
        p90_ms=_pct(samples, 0.90),
        p99_ms=_pct(samples, 0.99),
        p999_ms=_pct(samples, 0.999),
        mean_ms=sum(samples) / n / 1e6 if n else float("nan"),
        min_ms=samples[0] / 1e6 if n else float("nan"),
        errors=errors,
    )


def sequential_latency(
    targets: dict[str, tuple[int, bytes]], *, warmup: float, seconds: float, rounds: int
) -> dict[str, LatencyResult]:
    """Concurrency 1, for several endpoints at once: one keep-alive connection each, one request at a time.

    Each request is timed with perf_counter_ns. The endpoints are measured in
    interleaved rounds (seconds / rounds each, in rotating order) so that a
    drift of the machine's speed during the run affects them all alike.
    """
    clock = time.perf_counter_ns
    conns = {name: HttpConn(port) for name, (port, _) in targets.items()}
    samples: dict[str, list[int]] = {name: [] for name in targets}
    elapsed = dict.fromkeys(targets, 0.0)
    errors = dict.fromkeys(targets, 0)
    gc_was_enabled = gc.isenabled()
    try:
        for name, (_, request) in targets.items():
            deadline = time.monotonic() + warmup
            while time.monotonic() < deadline:
                status, _, body = conns[name].exchange(request)
                if status != 200:
                    raise BenchError(f"{name}: warm-up request answered {status}: {body[:500]!r}")
        gc.collect()
        gc.disable()
        order = list(targets)
        slice_ns = int(seconds / rounds * 1e9)
        for r in range(rounds):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                request = targets[name][1]
                sock = conns[name].sock
                read = conns[name].read_response
                out = samples[name]
                start = t = clock()
                stop_at = start + slice_ns
                while t < stop_at:
                    t0 = clock()
                    sock.sendall(request)
                    status, _, _ = read()
                    t = clock()
                    out.append(t - t0)
                    if status != 200:
                        errors[name] += 1
                elapsed[name] += (t - start) / 1e9
    finally:
        if gc_was_enabled:
            gc.enable()
        for conn in conns.values():
            conn.close()
    return {name: _summarise(samples[name], elapsed[name], errors[name]) for name in targets}


# ---------------------------------------------------------------------------
# Probes: does the endpoint answer correctly before we measure it?


def probe(port: int, model: str, key: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One non-streaming and one streaming chat completion, checked: content, usage, every event JSON, [DONE]."""
    conn = HttpConn(port)
    try:
        status, head, body = conn.exchange(chat_request(port, model, key, headers=headers))
        if status != 200:
            raise BenchError(
                f"POST {CHAT_PATH} on port {port} answered {status}:\n{head.decode(errors='replace')}\n\n"
                f"{body[:2000].decode(errors='replace')}"
            )
        try:
            doc = json.loads(body)
            valid = (
                doc.get("object") == "chat.completion"
                and bool(doc["choices"][0]["message"]["content"])
                and doc["usage"]["total_tokens"] > 0
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            valid = False
        if not valid:
            raise BenchError(
                f"non-streaming answer on port {port} is not a chat.completion with content and usage:\n"
                f"{body[:2000]!r}"
            )
        response_bytes = len(body)
        status, head, body = conn.exchange(chat_request(port, model, key, stream=True, headers=headers))
        if status != 200:
            raise BenchError(
                f"streaming POST {CHAT_PATH} on port {port} answered {status}:\n{head.decode(errors='replace')}\n\n"
                f"{body[:2000].decode(errors='replace')}"
            )
        events = [e for e in body.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
        data = [e for e in events if e.startswith(b"data:")]
        done = bool(data) and data[-1].strip() == b"data: [DONE]"
        try:
            chunks = [json.loads(e[5:]) for e in data if e.strip() != b"data: [DONE]"]
            usage = [c for c in chunks if c.get("usage")]
        except (ValueError, AttributeError):
            raise BenchError(
                f"streaming answer on port {port} has an event that is not JSON:\n{body[:1500]!r}"
            ) from None
        if not done or not chunks or not usage:
            raise BenchError(
                f"streaming answer on port {port} is incomplete (events: {len(events)}, [DONE]: {done}, "
                f"usage chunk: {bool(usage)}):\n{body[:1500]!r}\n...{body[-500:]!r}"
            )
        return {
            "model": doc.get("model"),
            "response_bytes": response_bytes,
            "stream_events": len(data),
            "stream_chunks": len(chunks),  # chat.completion.chunk events, [DONE] excluded
            "stream_bytes": len(body),
            "content_type": _header(head, b"content-type"),
        }
    finally:
        conn.close()


def _header(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().decode(errors="replace")
    return None


# ---------------------------------------------------------------------------
# The wrk phases


def measure_side(
    side: str,
    port: int,
    model: str,
    key: str,
    *,
    wrk: str,
    args: argparse.Namespace,
    procs: dict[str, Managed],
    gateway: Managed | None,
    result: dict[str, Any],
    streaming: bool = True,
    headers: dict[str, str] | None = None,
    phase: str = "c32",
) -> None:
    """c=32 req/s (and SSE chunks/s when ``streaming``) into ``result[side]``; ``procs["gateway"]`` is the proxy.

    The non-streaming phase is stored as ``result[side][phase]`` (``"c32"`` unless named otherwise: the
    ``args.concurrency`` of the caller decides the connections). With a ``gateway``, each phase also records
    ``cpu_us_per_request``: the gateway's process-tree CPU seconds during the measured window over the requests
    (or streams) answered in it.
    """
    url = f"http://{HOST}:{port}{CHAT_PATH}"
    res = result.setdefault(side, {})
    chunks_per_stream = res["probe"]["stream_chunks"]

    phases = [(phase, "chat.lua", args.concurrency)]
    if streaming:
        phases.append(("stream", "stream.lua", args.stream_concurrency))
    for name, script, conns in phases:
        log(f"{side}: {name} (wrk -c{conns}, {args.warmup:g}s warm-up + {args.duration:g}s)")
        run_wrk(
            wrk, url, script, connections=conns, seconds=int(args.warmup), model=model, key=key, headers=headers
        )
        started = time.monotonic()
        with cpu_meter(procs) as cpu:
            w = run_wrk(
                wrk, url, script, connections=conns, seconds=int(args.duration), model=model, key=key,
                headers=headers,
            )
        window = time.monotonic() - started
        entry: dict[str, Any] = {k: v for k, v in w.__dict__.items() if k != "raw"}
        entry["errors"] = w.errors
        entry["cpu_cores"] = dict(cpu)
        if gateway and w.requests:
            entry["gateway_cpu_s"] = cpu.get("gateway", 0.0) * window
            entry["cpu_us_per_request"] = entry["gateway_cpu_s"] / w.requests * 1e6
        entry["wrk_output"] = w.raw
        if name == "stream":
            entry["chunks_per_stream"] = chunks_per_stream
            entry["chunks_per_s"] = w.rps * chunks_per_stream
            gw_cores = cpu.get("gateway", 0.0)
            entry["chunks_per_s_per_gateway_core"] = (
                entry["chunks_per_s"] / gw_cores if gateway and gw_cores > 0.05 else None
            )
        res[name] = entry
        if w.errors:
            log(f"{side}: {name}: {w.non_2xx} non-2xx responses, socket errors {w.socket_errors}")
        if gateway:
            gateway.sample_rss()


