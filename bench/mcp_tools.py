"""What the MCP gateway adds to a tool call (issue 20's figures).

A real upstream MCP server (``tests/mcp_servers/upstream.py``, the official SDK over streamable HTTP, on
core 1) is called with the official ``mcp`` client (core 1) directly and through a gateway (core 0) whose
pack exposes it, side by side in one run so the machine's drift hits both alike:

* ``latency``: one session each, interleaved calls of ``echo`` (concurrency 1): p50/p99 per call, and the
  added latency (through the gateway minus direct).
* ``throughput``: 8 sessions calling ``echo`` as fast as they can for a few seconds, through the gateway;
  calls/s, and the gateway's own CPU time per call (its process's utime + stime), which gives the calls/s
  one gateway core sustains (``1 / cpu per call``) whatever the upstream and the client cost.

(The file is not ``bench/mcp.py``: run as a script, its folder comes first on ``sys.path`` and a module named
``mcp`` there would shadow the SDK.)

Run::

    .venv/bin/python bench/mcp_tools.py            # ~1 minute
    .venv/bin/python bench/mcp_tools.py --quick    # fewer calls
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import GATEWAY_CORE, LOAD_CORE, MASTER_KEY, Managed, cpu_seconds, port_in_use, wait_healthy

REPO = Path(__file__).resolve().parent.parent
UPSTREAM_PORT = 9141
GATEWAY_PORT = 8441


def log(msg: str) -> None:
    print(f"[mcp bench] {msg}", file=sys.stderr, flush=True)


def start(tmp: Path) -> tuple[Managed, Managed]:
    for port in (UPSTREAM_PORT, GATEWAY_PORT):
        if port_in_use(port):
            raise SystemExit(f"port {port} is in use: stop whatever listens there first")
    env = dict(os.environ, UPSTREAM_NAME="docs")
    upstream = Managed("upstream", ["taskset", "-c", str(LOAD_CORE), sys.executable,
                                    str(REPO / "tests" / "mcp_servers" / "upstream.py"), "http",
                                    str(UPSTREAM_PORT)], env=env, logdir=tmp)
    deadline = time.monotonic() + 30
    while not port_in_use(UPSTREAM_PORT):
        if time.monotonic() > deadline or not upstream.alive():
            raise SystemExit(f"the upstream did not start:\n{upstream.output()}")
        time.sleep(0.1)
    home = tmp / "gateway"
    home.mkdir()
    config = home / "interlock.yaml"
    config.write_text(f"logging: {{level: metadata}}\nmcp:\n  servers:\n    docs: {{url: "
                      f"'http://127.0.0.1:{UPSTREAM_PORT}/mcp'}}\n  tool_packs:\n"
                      "    bench: {project: bench, tools: ['docs/*']}\n")
    genv = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    genv.update(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home / "state"))
    gateway = Managed("gateway", ["taskset", "-c", str(GATEWAY_CORE), str(REPO / ".venv" / "bin" / "interlock"),
                                  "serve", "--port", str(GATEWAY_PORT), "--config", str(config)], env=genv, logdir=home)
    wait_healthy(gateway, GATEWAY_PORT, "/healthz", 60)
    for path, body in (("/admin/v1/projects", {"id": "bench"}),
                       ("/admin/v1/mcp/registered-users", {"id": "u1", "project": "bench"})):
        req = urllib.request.Request(f"http://127.0.0.1:{GATEWAY_PORT}{path}", data=json.dumps(body).encode(),
                                     method="POST", headers={"authorization": f"Bearer {MASTER_KEY}",
                                                             "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201, resp.read()
    return upstream, gateway


DIRECT = f"http://127.0.0.1:{UPSTREAM_PORT}/mcp"
VIA = f"http://127.0.0.1:{GATEWAY_PORT}/api/v1/tool-packs/bench/registered-users/u1/mcp"


@asynccontextmanager
async def session(url: str) -> AsyncIterator[ClientSession]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30) as http, \
            streamable_http_client(url, http_client=http) as streams, ClientSession(streams[0], streams[1]) as s:
        await s.initialize()
        yield s


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(calls: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"direct": [], "gateway": []}
    async with session(DIRECT) as direct, session(VIA) as via:
        for s in (direct, via):  # warm: sessions, the gateway's upstream session and listing
            for _ in range(20):
                await s.call_tool("echo", {"text": "warm"})
        for i in range(calls):
            for name, s in (("direct", direct), ("gateway", via)) if i % 2 == 0 else (("gateway", via),
                                                                                       ("direct", direct)):
                t0 = time.perf_counter_ns()
                result = await s.call_tool("echo", {"text": f"call {i}"})
                samples[name].append((time.perf_counter_ns() - t0) / 1e6)
                assert not result.is_error, result
    out: dict[str, Any] = {}
    for name, values in samples.items():
        out[name] = {"p50_ms": round(statistics.median(values), 3), "p99_ms": round(pct(values, 0.99), 3),
                     "calls": len(values)}
    out["added_p50_ms"] = round(out["gateway"]["p50_ms"] - out["direct"]["p50_ms"], 3)
    out["added_p99_ms"] = round(out["gateway"]["p99_ms"] - out["direct"]["p99_ms"], 3)
    return out


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def throughput(url: str, seconds: float, sessions: int, gateway: Managed | None,
                     upstream: Managed) -> dict[str, Any]:
    done = 0

    async def worker() -> None:
        nonlocal done
        async with session(url) as s:
            await s.call_tool("echo", {"text": "warm"})
            await ready.wait()
            while time.monotonic() < stop:
                await s.call_tool("echo", {"text": "x"})
                done += 1

    ready = asyncio.Event()
    stop = float("inf")
    tasks = [asyncio.create_task(worker()) for _ in range(sessions)]
    await asyncio.sleep(2.0)  # sessions opened and warmed
    cpu0 = cpu_seconds(gateway.tree()) if gateway is not None else 0.0
    up0, client0 = cpu_seconds(upstream.tree()), own_cpu()
    t0 = time.monotonic()
    stop = t0 + seconds
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    out: dict[str, Any] = {"calls": done, "calls_per_s": round(done / elapsed, 1),
                           "client_cpu_ms_per_call": round((own_cpu() - client0) * 1000 / max(done, 1), 3),
                           "upstream_cpu_ms_per_call": round((cpu_seconds(upstream.tree()) - up0) * 1000
                                                             / max(done, 1), 3)}
    if gateway is not None:
        cpu = cpu_seconds(gateway.tree()) - cpu0
        out["gateway_cpu_ms_per_call"] = round(cpu * 1000 / max(done, 1), 3)
        out["calls_per_gateway_core_s"] = round(done / cpu, 1) if cpu > 0 else None
    return out


async def measure(args: argparse.Namespace, upstream: Managed, gateway: Managed) -> dict[str, Any]:
    result: dict[str, Any] = {"latency": await latency(args.calls)}
    result["throughput"] = {
        "direct": await throughput(DIRECT, args.seconds, args.sessions, None, upstream),
        "gateway": await throughput(VIA, args.seconds, args.sessions, gateway, upstream),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter throughput runs")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args()
    args.calls = 200 if args.quick else 1000
    args.seconds = 4.0 if args.quick else 10.0
    with tempfile.TemporaryDirectory(prefix="interlock-mcp-bench-") as tmp:
        upstream, gateway = start(Path(tmp))
        try:
            result = asyncio.run(measure(args, upstream, gateway))
        finally:
            gateway.stop()
            upstream.stop()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    lat, thr = result["latency"], result["throughput"]
    print("| | p50 ms | p99 ms |\n|---|---|---|")
    for name in ("direct", "gateway"):
        print(f"| {name} | {lat[name]['p50_ms']} | {lat[name]['p99_ms']} |")
    print(f"| added by the gateway | {lat['added_p50_ms']} | {lat['added_p99_ms']} |\n")
    print(f"| {args.sessions} sessions | calls/s | CPU ms per call: client (SDK) | upstream (SDK) | gateway | "
          "calls/s per gateway core |\n|---|---|---|---|---|---|")
    d, g = thr["direct"], thr["gateway"]
    print(f"| direct | {d['calls_per_s']} | {d['client_cpu_ms_per_call']} | {d['upstream_cpu_ms_per_call']} | — | — |")
    print(f"| through the gateway | {g['calls_per_s']} | {g['client_cpu_ms_per_call']} | "
          f"{g['upstream_cpu_ms_per_call']} | {g['gateway_cpu_ms_per_call']} | {g['calls_per_gateway_core_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
