"""What the response cache costs and saves (issue 19's figures).

Four measurements, each side by side in one run so that the machine's drift hits every column alike:

* ``latency``: concurrency 1, one keep-alive connection per target, interleaved rounds. Targets: the mock
  vendor directly; a gateway with the cache off; gateways with the cache on (memory, Redis) sent the same
  request every time (every request after the first is a hit) and a new request every time (every request
  is a miss, then a store). The cache's added latency on a miss is the miss column minus the cache-off
  gateway sent the same new requests; a hit is compared with the cache-off gateway and with the mock.
* ``throughput``: wrk, c=32, the same request: the mock directly, the gateway with the cache off, and the
  gateway answering from its memory and Redis caches (interleaved rounds, median req/s).
* ``memory``: 10,000 cached answers of 2 KiB each (an OpenAI chat completion whose text is 2 KiB of words)
  in the memory backend (Python heap by tracemalloc, and what the backend counts against ``max_bytes``), and
  1,000 in Redis (``used_memory`` before and after, and the compressed value size).
* ``trace``: a 10,000-request trace with 30% repeats (of earlier requests, popular ones more often) replayed
  through a gateway on the built-in simulator at catalog prices for openai/gpt-4.1-mini, with the request
  log on: the cost, the cost saved (from ``/admin/v1/spend``) and what the same trace costs with the cache
  off, measured by a second gateway.

The gateways run on core 0; the mock, wrk and this client on core 1. Run::

    .venv/bin/python bench/cache.py                 # all four, ~2 minutes
    .venv/bin/python bench/cache.py --only latency  # or throughput, memory, trace
    .venv/bin/python bench/cache.py --quick         # shorter measurements (~1 minute)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    GATEWAY_CORE,
    LOAD_CORE,
    MASTER_KEY,
    UPSTREAM_KEY,
    BenchError,
    HttpConn,
    Managed,
    ensure_wrk,
    port_in_use,
    run_wrk,
    start_mock,
    wait_healthy,
)
from harness_latency import _pct

REPO = Path(__file__).resolve().parent.parent
MOCK_PORT = 9131
PORTS = {"off": 8431, "memory": 8432, "redis": 8433}
MODEL = "mock/bench-model"
REDIS_URL = "redis://127.0.0.1:6379/0"
TRACE_MODEL = "openai/gpt-4.1-mini"


@functools.cache
def prose() -> str:
    return " ".join(" ".join((REPO / "docs" / name).read_text().split())
                    for name in ("architecture.md", "guides/guardrails.md"))


def log(msg: str) -> None:
    print(f"[cache bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Processes

def gateway_config(kind: str, prefix: str) -> str:
    text = (f"vendors:\n  mock: {{type: openai, base_url: 'http://127.0.0.1:{MOCK_PORT}/v1', "
            f"api_key: {UPSTREAM_KEY}}}\nlogging: {{level: 'off'}}\n")
    if kind == "memory":
        text += "cache: {enabled: true, allow_temperature: true}\n"
    elif kind == "redis":
        text += (f"redis: {{url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n"
                 "cache: {enabled: true, backend: redis, allow_temperature: true}\n")
    return text


def start_gateway(name: str, port: int, config: str, tmp: Path) -> Managed:
    home = tmp / name
    home.mkdir()
    (home / "interlock.yaml").write_text(config)
    # No vendor key reaches the gateway: the trace must be served by the simulator, never a live vendor.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home / "state"))
    gw = Managed(f"gateway-{name}", ["taskset", "-c", str(GATEWAY_CORE), str(REPO / ".venv" / "bin" / "interlock"),
                                     "serve", "--port", str(port), "--config", str(home / "interlock.yaml")],
                 env=env, logdir=home)
    try:
        wait_healthy(gw, port, "/healthz", 60)
    except BaseException:
        gw.stop()
        raise
    return gw


@contextmanager
def processes(tmp: Path, prefix: str, kinds: tuple[str, ...]) -> Iterator[dict[str, Managed]]:
    """The mock and one gateway per ``kinds``, stopped on every exit path."""
    for port in (MOCK_PORT, *(PORTS[k] for k in kinds)):
        if port_in_use(port):
            raise BenchError(f"port {port} is in use: stop whatever listens there first")
    tmp.mkdir(parents=True, exist_ok=True)
    procs: dict[str, Managed] = {}
    try:
        procs["mock"] = start_mock(MOCK_PORT, tmp)
        for kind in kinds:
            procs[kind] = start_gateway(kind, PORTS[kind], gateway_config(kind, prefix), tmp)
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def chat_bytes(port: int, text: str, *, vendor_direct: bool = False) -> bytes:
    body = {"model": "bench-model" if vendor_direct else MODEL, "max_tokens": 128, "temperature": 0.2,
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": text}]}
    path = "/v1/chat/completions"
    auth = UPSTREAM_KEY if vendor_direct else MASTER_KEY
    return HttpConn.build("POST", path, port, json.dumps(body, separators=(",", ":")).encode(),
                          {"Authorization": f"Bearer {auth}"})


def cache_header(head: bytes) -> str | None:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-interlock-cache":
            return value.strip().decode()
    return None


# ---------------------------------------------------------------------------
# Latency (c=1)

def latency(tmp: Path, prefix: str, seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    fixed = "In two sentences, what does an LLM gateway do?"
    counter = iter(range(10**9))

    def fresh(port: int) -> Callable[[], bytes]:
        return lambda: chat_bytes(port, f"{fixed} (request {next(counter)})")

    def same(port: int, direct: bool = False) -> Callable[[], bytes]:
        request = chat_bytes(port, fixed, vendor_direct=direct)
        return lambda: request

    with processes(tmp, prefix, ("off", "memory", "redis")):
        targets: dict[str, tuple[int, Callable[[], bytes], str | None]] = {
            "direct to mock": (MOCK_PORT, same(MOCK_PORT, True), None),
            "cache off, same request": (PORTS["off"], same(PORTS["off"]), None),
            "memory, hit": (PORTS["memory"], same(PORTS["memory"]), "hit"),
            "redis, hit": (PORTS["redis"], same(PORTS["redis"]), "hit"),
            "cache off, new requests": (PORTS["off"], fresh(PORTS["off"]), None),
            "memory, miss + store": (PORTS["memory"], fresh(PORTS["memory"]), "miss"),
            "redis, miss + store": (PORTS["redis"], fresh(PORTS["redis"]), "miss"),
        }
        samples = interleaved(targets, seconds, rounds)
    return {name: {"p50_ms": _pct(s, 0.5), "p99_ms": _pct(s, 0.99), "n": len(s)} for name, s in samples.items()}


def interleaved(targets: dict[str, tuple[int, Callable[[], bytes], str | None]], seconds: float,
                rounds: int) -> dict[str, list[int]]:
    """Per-request nanoseconds for each target, measured in rotating rounds; the cache header is checked
    on the warm-up (a hit target must hit, a miss target must miss)."""
    conns = {name: HttpConn(port) for name, (port, _, _) in targets.items()}
    out: dict[str, list[int]] = {name: [] for name in targets}
    try:
        for name, (_, make, want) in targets.items():
            for _ in range(200):
                status, head, body = conns[name].exchange(make())
                if status != 200:
                    raise BenchError(f"{name}: warm-up answered {status}: {body[:300]!r}")
            got = cache_header(head)
            if want is not None and got != want:
                raise BenchError(f"{name}: x-interlock-cache is {got!r}, expected {want!r}")
        order = list(targets)
        slice_ns = int(seconds / rounds * 1e9)
        clock = time.perf_counter_ns
        for r in range(rounds):
            for name in order[r % len(order):] + order[:r % len(order)]:
                _, make, _ = targets[name]
                conn = conns[name]
                stop_at = clock() + slice_ns
                while clock() < stop_at:
                    request = make()
                    t0 = clock()
                    status, _, body = conn.exchange(request)
                    out[name].append(clock() - t0)
                    if status != 200:
                        raise BenchError(f"{name}: answered {status}: {body[:300]!r}")
    finally:
        for conn in conns.values():
            conn.close()
    for s in out.values():
        s.sort()
    return out


# ---------------------------------------------------------------------------
# Throughput on hits (wrk, c=32)

def throughput(tmp: Path, prefix: str, seconds: int, rounds: int) -> dict[str, float]:
    wrk = ensure_wrk()
    rps: dict[str, list[float]] = {"direct to mock": [], "cache off": [], "memory, hits": [], "redis, hits": []}
    urls = {"direct to mock": (MOCK_PORT, "bench-model", UPSTREAM_KEY), "cache off": (PORTS["off"], MODEL, MASTER_KEY),
            "memory, hits": (PORTS["memory"], MODEL, MASTER_KEY), "redis, hits": (PORTS["redis"], MODEL, MASTER_KEY)}
    with processes(tmp, prefix, ("off", "memory", "redis")):
        for r in range(rounds):
            names = list(urls)
            for name in names[r % len(names):] + names[:r % len(names)]:
                port, model, key = urls[name]
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                if r == 0:
                    run_wrk(wrk, url, "chat.lua", connections=32, seconds=1, model=model, key=key)
                result = run_wrk(wrk, url, "chat.lua", connections=32, seconds=seconds, model=model, key=key)
                if result.errors:
                    raise BenchError(f"{name}: {result.errors} errors\n{result.raw}")
                rps[name].append(result.rps)
    return {name: statistics.median(v) for name, v in rps.items()}


# ---------------------------------------------------------------------------
# Memory per cached answer

def answer_body(rng: random.Random, size: int = 2048) -> bytes:
    """An OpenAI chat completion whose message text is ``size`` bytes of English prose (a slice of this
    repository's docs, so that it compresses as answers do, not as a repeated word would)."""
    start = rng.randrange(len(prose()) - size)
    text = prose()[start:start + size]
    doc = {"id": f"chatcmpl-{rng.getrandbits(96):024x}", "object": "chat.completion", "created": 1764900000,
           "model": "gpt-4.1-mini-2025-04-14", "choices": [{"index": 0, "message": {
               "role": "assistant", "content": text, "refusal": None, "annotations": []},
               "logprobs": None, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 812, "completion_tokens": 470, "total_tokens": 1282}}
    return json.dumps(doc, separators=(",", ":")).encode()


def memory(prefix: str) -> dict[str, float]:
    import asyncio

    import redis

    from interlock.cache.store import Entry, MemoryBackend

    rng = random.Random(19)
    n = 10_000
    bodies = [answer_body(rng) for _ in range(n)]
    digests = [(rng.getrandbits(96), rng.getrandbits(128)) for _ in range(n)]
    backend = MemoryBackend(1 << 40, time.monotonic)

    async def fill(entries: list[Entry], keys: list[str]) -> None:
        for key, entry in zip(keys, entries, strict=True):
            await backend.put(key, entry, 3600)

    # The cache keeps each answer alive, with its key and the backend's own structures: all of it is made
    # while tracemalloc counts (the bodies are copied so that the cache's copies are the ones counted).
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keys = [f"{a:024x}{b:032x}" for a, b in digests]
    entries = [Entry("completion", bytes(bytearray(b)), (), time.time(), "openai/gpt-4.1-mini", 123_456_789)
               for b in bodies]
    asyncio.run(fill(entries, keys))
    heap = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    body = sum(len(e.body) for e in entries) / n

    client = redis.Redis.from_url(REDIS_URL)
    m = 1000
    blobs = [e.encode() for e in entries[:m]]
    pattern = f"{prefix}cache:*"
    try:
        used0 = int(client.info("memory")["used_memory"])
        pipe = client.pipeline()
        for key, blob in zip(keys[:m], blobs, strict=True):
            pipe.set(f"{prefix}cache:{key}", blob, ex=3600)
        pipe.execute()
        used1 = int(client.info("memory")["used_memory"])
    finally:
        for key in client.scan_iter(match=pattern, count=1000):
            client.unlink(key)
    return {"answer_bytes": body, "memory_heap_per_1000_mib": heap / n * 1000 / 2**20,
            "memory_counted_per_1000_mib": backend.bytes / n * 1000 / 2**20,
            "redis_used_per_1000_mib": (used1 - used0) / 2**20, "redis_value_bytes": sum(map(len, blobs)) / m}


# ---------------------------------------------------------------------------
# Cost saved on a trace with repeats

def trace_requests(n: int, repeat_share: float, seed: int = 19) -> list[dict[str, Any]]:
    """``n`` requests: new ones (a shared system prompt, a question of 20-600 words, max_tokens 64-512) and,
    with probability ``repeat_share``, an earlier request again, chosen with weight 1/rank (a few popular
    questions come back often, most rarely)."""
    rng = random.Random(seed)
    system = {"role": "system", "content": "You answer questions about Example Corp's products. " * 20}
    made: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i in range(n):
        if made and rng.random() < repeat_share:
            ranks = len(made)
            pick = min(int(ranks * rng.random() ** 3), ranks - 1)  # skewed towards the first questions made
            out.append(made[pick])
            continue
        vocabulary = prose().split()
        start = rng.randrange(len(vocabulary) - 600)
        words = " ".join(vocabulary[start:start + rng.randint(20, 600)])
        req = {"model": TRACE_MODEL, "temperature": 0, "max_tokens": rng.choice((64, 128, 256, 512)),
               "messages": [system, {"role": "user", "content": f"Question {i}: {words}?"}]}
        made.append(req)
        out.append(req)
    return out


def admin(port: int, path: str) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"authorization": f"Bearer {MASTER_KEY}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def trace(tmp: Path, n: int) -> dict[str, float]:
    requests = trace_requests(n, 0.30)
    results: dict[str, float] = {}
    for kind, cache in (("off", ""), ("memory", "cache: {enabled: true}\n")):
        config = f"simulator: {{enabled: true, time_scale: 0}}\nlogging: {{level: metadata, flush_interval: 0.1}}\n{cache}"
        gw = start_gateway(f"trace-{kind}", PORTS[kind], config, tmp)
        try:
            conn = HttpConn(PORTS[kind])
            hits = 0
            for req in requests:
                status, head, body = conn.exchange(HttpConn.build(
                    "POST", "/v1/chat/completions", PORTS[kind], json.dumps(req).encode(),
                    {"Authorization": f"Bearer {MASTER_KEY}"}))
                if status != 200:
                    raise BenchError(f"trace ({kind}): {status} {body[:300]!r}")
                hits += cache_header(head) == "hit"
            conn.close()
            spend = wait_logged(PORTS[kind], n)
            results[f"{kind}_cost_usd"] = spend["total_cost_usd"]
            results[f"{kind}_saved_usd"] = spend["total_saved_usd"] or 0.0
            results[f"{kind}_hits"] = hits
            results[f"{kind}_prompt_cache_read_tokens"] = sum(r["cache_read_tokens"] for r in spend["data"])
            results[f"{kind}_input_tokens"] = sum(r["input_tokens"] for r in spend["data"])
        finally:
            gw.stop()
    results["repeats"] = n - len({json.dumps(r, sort_keys=True) for r in requests})
    return results


def wait_logged(port: int, n: int) -> dict[str, Any]:
    """The spend report once all ``n`` requests are in it (the log writes in batches)."""
    deadline = time.monotonic() + 60
    while True:
        spend = admin(port, "/admin/v1/spend?group_by=model")
        if sum(r["requests"] for r in spend["data"]) >= n or time.monotonic() > deadline:
            return dict(spend)
        time.sleep(0.2)


# ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("latency", "throughput", "memory", "trace"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trace-requests", type=int, default=10_000)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {LOAD_CORE})
    prefix = f"ilbench-{os.urandom(3).hex()}:"
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="interlock-cache-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.only in (None, "latency"):
            log("latency (c=1) ...")
            report["latency"] = latency(tmp / "lat", prefix, 6 if args.quick else 21, 3 if args.quick else 7)
        if args.only in (None, "throughput"):
            log("throughput (wrk c=32) ...")
            report["throughput"] = throughput(tmp / "thr", prefix + "t", 3 if args.quick else 5,
                                              2 if args.quick else 3)
        if args.only in (None, "memory"):
            log("memory ...")
            report["memory"] = memory(prefix + "m")
        if args.only in (None, "trace"):
            log(f"trace of {args.trace_requests} requests ...")
            report["trace"] = trace(tmp, args.trace_requests)
    print(render(report))
    print(json.dumps(report, indent=1, default=float), file=sys.stderr)
    return 0


def render(report: dict[str, Any]) -> str:
    lines: list[str] = []
    lat = report.get("latency")
    if lat:
        off_new, off_same, direct = lat["cache off, new requests"], lat["cache off, same request"], lat["direct to mock"]
        lines += ["| c=1 | p50 ms | p99 ms | vs cache off p50 | vs cache off p99 |", "|---|---:|---:|---:|---:|"]
        for name, row in lat.items():
            base = off_new if "miss" in name or "new" in name else off_same
            lines.append(f"| {name} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | "
                         f"{(row['p50_ms'] - base['p50_ms']) * 1000:+.0f} µs | "
                         f"{(row['p99_ms'] - base['p99_ms']) * 1000:+.0f} µs |")
        lines.append(f"\nA memory hit takes {lat['memory, hit']['p50_ms'] / direct['p50_ms']:.2f}x the direct "
                     f"call's p50; a Redis hit {lat['redis, hit']['p50_ms'] / direct['p50_ms']:.2f}x.\n")
    thr = report.get("throughput")
    if thr:
        lines += ["| wrk c=32 | req/s | vs direct |", "|---|---:|---:|"]
        for name, v in thr.items():
            lines.append(f"| {name} | {v:,.0f} | {v / thr['direct to mock']:.1%} |")
        lines.append("")
    mem = report.get("memory")
    if mem:
        lines += [f"Memory per 1,000 cached answers of {mem['answer_bytes']:,.0f} bytes: "
                  f"{mem['memory_heap_per_1000_mib']:.2f} MiB of Python heap in the memory backend "
                  f"({mem['memory_counted_per_1000_mib']:.2f} MiB counted against max_bytes); "
                  f"{mem['redis_used_per_1000_mib']:.2f} MiB in Redis (values of {mem['redis_value_bytes']:,.0f} "
                  "bytes, zlib-compressed).", ""]
    tr = report.get("trace")
    if tr:
        full = tr["off_cost_usd"]
        lines += [f"Trace: {tr['memory_hits']:,.0f} hits for {tr['repeats']:,.0f} repeated requests; cost "
                  f"${tr['memory_cost_usd']:.4f} with the cache against ${full:.4f} without "
                  f"({1 - tr['memory_cost_usd'] / full:.1%} less); the log reports ${tr['memory_saved_usd']:.4f} "
                  f"saved (cost + saved = ${tr['memory_cost_usd'] + tr['memory_saved_usd']:.4f}). The vendor's "
                  f"prompt cache read {tr['off_prompt_cache_read_tokens']:,} input tokens without the response "
                  f"cache and {tr['memory_prompt_cache_read_tokens']:,} with it."]
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
