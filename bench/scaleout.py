"""Scale-out behind HAProxy: req/s with 1, 2 and 3 replicas, the LB's added latency, pub/sub propagation.

    .venv/bin/python bench/scaleout.py [--seconds 5] [--connections 32] [--samples 40]

Self-contained: it creates a PostgreSQL database on 127.0.0.1:5432 (dropped afterwards), uses the local
Redis with a prefix of its own, starts three ``interlock serve`` replicas (one worker each, the simulator
answering at once, the request log in PostgreSQL) and a child HAProxy rendered from ``deploy/haproxy.cfg``
(scripts/debian_packages.sh installs Debian's haproxy). Load is ``wrk`` (Debian's package) with
bench/wrk/chat.lua, a non-streaming chat completion with the admin key. Prints a markdown table.

What the machine bounds: every process (wrk, HAProxy, the replicas, PostgreSQL, Redis) shares this
machine's cores. Once the replicas outnumber the cores, a replica added is a process competing for the same
CPU, not capacity: the figures show the LB and replica plumbing works, not how far a real fleet scales.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import pg_util  # noqa: E402
from tests.conftest import MASTER_KEY, clean_env, free_port  # noqa: E402
from tests.lb_cluster import HAProxy, start_replica  # noqa: E402
from tests.test_governance_util import REDIS_URL  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from harness import parse_wrk  # noqa: E402

MODEL = "openai/gpt-4.1-mini"
BODY = (b'{"model":"' + MODEL.encode() + b'","max_tokens":16,'
        b'"messages":[{"role":"user","content":"In two sentences, what does an LLM gateway do?"}]}')


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float, int]:
    """(req/s, p50 ms, p99 ms, errors) of ``wrk`` against ``url``."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    env = dict(os.environ, BENCH_MODEL=MODEL, BENCH_KEY=MASTER_KEY)
    proc = subprocess.run([binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
                           "-s", str(ROOT / "bench" / "wrk" / "chat.lua"), url],
                          env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed:\n{proc.stdout}{proc.stderr}")
    r = parse_wrk(proc.stdout)
    return r.rps, r.p50_ms, r.p99_ms, r.errors


class Conn:
    """One keep-alive HTTP/1.1 connection sending the chat request, one at a time, timing each."""

    def __init__(self, port: int) -> None:
        self.head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
                     f"authorization: Bearer {MASTER_KEY}\r\ncontent-type: application/json\r\n"
                     f"content-length: {len(BODY)}\r\n\r\n").encode() + BODY
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def one(self) -> float:
        start = time.perf_counter()
        self.sock.sendall(self.head)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        header, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if not header.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"unexpected answer: {header[:200]!r}")
        length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(self.buf) < length:
            self.buf += self.sock.recv(65536)
        self.buf = self.buf[length:]
        return (time.perf_counter() - start) * 1000

    def close(self) -> None:
        self.sock.close()


def interleaved_latency(direct_port: int, lb_port: int, n: int) -> tuple[list[float], list[float]]:
    """Milliseconds of ``n`` requests one at a time direct to a replica and through the LB, alternating (so
    both see the same machine), after a warm-up of each."""
    direct, via = Conn(direct_port), Conn(lb_port)
    try:
        for _ in range(50):
            direct.one()
            via.one()
        pairs = [(direct.one(), via.one()) for _ in range(n)]
    finally:
        direct.close()
        via.close()
    return [d for d, _ in pairs], [v for _, v in pairs]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def propagation(a_url: str, c_url: str, samples: int) -> list[float]:
    """Milliseconds from a revoke answered by A until C refuses the key (polled every 1 ms)."""
    import json
    import urllib.error
    import urllib.request

    def req(url: str, path: str, body: object = None, key: str = MASTER_KEY) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        r = urllib.request.Request(url + path, data=data, method="GET" if body is None else "POST",
                                   headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
        try:
            with urllib.request.urlopen(r, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, None

    req(a_url, "/admin/v1/projects", {"id": "bench-propagation"})
    waits = []
    for _ in range(samples):
        status, made = req(a_url, "/admin/v1/keys", {"project": "bench-propagation"})
        assert status == 201 and isinstance(made, dict), status
        deadline = time.monotonic() + 5
        while req(c_url, "/v1/models?limit=1", key=made["key"])[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit("a key made on A never reached C")
            time.sleep(0.002)
        status, _ = req(a_url, f"/admin/v1/keys/{made['id']}/revoke", {})
        assert status == 200, status
        start = time.perf_counter()
        while req(c_url, "/v1/models?limit=1", key=made["key"])[0] == 200:
            if time.perf_counter() - start > 5:
                raise SystemExit("a revoked key was still accepted on C after 5 s")
            time.sleep(0.001)
        waits.append((time.perf_counter() - start) * 1000)
    return waits


async def cleanup_redis(prefix: str) -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per replica count")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--latency-requests", type=int, default=500)
    parser.add_argument("--samples", type=int, default=40, help="pub/sub propagation samples")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="interlock-scaleout-"))
    name = pg_util.create_database()
    db = pg_util.url(name)
    prefix = f"bench-scaleout-{random.randrange(1 << 30)}:"
    config = work / "interlock.yaml"
    config.write_text(f"store: {db}\nredis: {{url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n"
                      "simulator: {enabled: true, time_scale: 0}\nserver: {drain_s: 0}\n")
    env = clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_SECRET="bench-scaleout-secret")
    ports = [free_port() for _ in range(3)]
    replicas = []
    rows = []
    try:
        for i, port in enumerate(ports):
            replicas.append(start_replica(work / f"r{i}", port, config, env))
        for n in (1, 2, 3):
            lb_dir = work / f"lb{n}"
            lb_dir.mkdir()
            lb = HAProxy(lb_dir, ports[:n])
            try:
                for i in range(n):
                    lb.wait_state(f"r{i}", "UP")
                wrk(f"http://127.0.0.1:{lb.port}/v1/chat/completions", 1, args.connections)  # warm up
                rps, p50, p99, errors = wrk(f"http://127.0.0.1:{lb.port}/v1/chat/completions", args.seconds,
                                            args.connections)
                rows.append((n, rps, p50, p99, errors))
                if n == 1:
                    direct, via_lb = interleaved_latency(ports[0], lb.port, args.latency_requests)
            finally:
                lb.stop()
        waits = propagation(replicas[0].url, replicas[2].url, args.samples)
    finally:
        for gw in replicas:
            gw.stop()
        asyncio.run(cleanup_redis(prefix))
        pg_util.drop_database(name)
        shutil.rmtree(work, ignore_errors=True)

    cores = os.cpu_count()
    print(f"## Scale-out behind HAProxy ({time.strftime('%Y-%m-%d')}, {cores} cores, "
          f"`python bench/scaleout.py --seconds {args.seconds} --connections {args.connections}`)\n")
    print("Non-streaming chat completions (simulator, instant), wrk through HAProxy, one worker per replica, "
          "request log in PostgreSQL, counters in Redis.\n")
    print("| replicas | req/s | p50 ms | p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|")
    for n, rps, p50, p99, errors in rows:
        print(f"| {n} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | {errors} |")
    print(f"\nEverything (wrk, HAProxy, replicas, PostgreSQL, Redis) shares {cores} cores: past {cores} busy "
          "processes a replica added competes for the same CPU, so the curve shows the machine, not the fleet.\n")
    print("| measure | p50 ms | p99 ms |")
    print("|---|---:|---:|")
    print(f"| one request at a time, direct to a replica | {pct(direct, .5):.2f} | {pct(direct, .99):.2f} |")
    print(f"| one request at a time, through HAProxy | {pct(via_lb, .5):.2f} | {pct(via_lb, .99):.2f} |")
    print(f"| added by HAProxy (difference of the two rows) | {pct(via_lb, .5) - pct(direct, .5):.2f} | "
          f"{pct(via_lb, .99) - pct(direct, .99):.2f} |")
    print(f"| pub/sub: revoke answered on A until refused on C ({len(waits)} samples) | "
          f"{statistics.median(waits):.1f} | {pct(waits, .99):.1f} |")
    print(f"\nThe latency rows alternate one request direct and one through HAProxy on keep-alive connections "
          f"({args.latency_requests} each). The propagation time is polled with a request to C every 1 ms, so it "
          "includes up to one request's time (about half a millisecond) of resolution.")


if __name__ == "__main__":
    main()
