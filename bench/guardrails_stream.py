"""What scanning streamed answers costs in time to first token: the hold-back window, measured.

The gateway runs in process (``bench/pipeline.py``'s stand-in RSGI objects) in front of the built-in
simulator at real time, with a fixed first-token latency and output speed per request
(``x-interlock-simulator-latency: ttft=0.2;tps=N``). Each request streams an answer; the time to the
first relayed text and to the end of the stream are taken at the stand-in transport. Two child
processes, one with the answer scan on (``pii: monitor``, ``secrets: block``, ``output: true``, the
default) and one with every guardrail off, are run one after the other.

    .venv/bin/python bench/guardrails_stream.py [--requests 8] [--tps 30,60,120] [--max-tokens 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from pipeline import MASTER_KEY, _Proto, _Scope  # noqa: E402

MODEL = "openai/gpt-4.1-mini"


class _Timed(_Proto):
    """Notes when the first text and the last bytes reach the transport."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.first_text: float | None = None
        self.done = 0.0

    async def send_bytes(self, data: bytes) -> None:
        if self.first_text is None and b'"content":"' in data and b'"content":""' not in data:
            self.first_text = time.perf_counter()
        self.done = time.perf_counter()
        self.out = data


def child(scan: bool, tps: list[float], requests: int, max_tokens: int) -> dict[str, Any]:
    import uvloop

    with tempfile.TemporaryDirectory(prefix="interlock-gstream-") as tmpdir:
        tmp = Path(tmpdir)
        guardrails = "guardrails:\n  pii: {action: monitor}\n  secrets: {action: block}\n" if scan else ""
        (tmp / "interlock.yaml").write_text("simulator: {enabled: true, time_scale: 1, allow_fault_headers: true}\n"
                                            "logging:\n  enabled: false\n" + guardrails)
        os.environ.update(INTERLOCK_CONFIG=str(tmp / "interlock.yaml"), INTERLOCK_HOME=str(tmp / "home"),
                          INTERLOCK_MASTER_KEY=MASTER_KEY)
        from interlock.app import gateway_from_env

        app = gateway_from_env()
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        body = json.dumps({"model": MODEL, "stream": True, "max_tokens": max_tokens,
                           "messages": [{"role": "user", "content": "Write a short paragraph about rivers."}]}).encode()

        async def one(rate: float) -> tuple[float, float]:
            scope = _Scope(body)
            scope.headers["x-interlock-simulator-latency"] = f"ttft=0.2;tps={rate:g}"
            proto = _Timed(body)
            start = time.perf_counter()
            await app.__rsgi__(scope, proto)  # type: ignore[arg-type]
            if proto.status != 200 or proto.first_text is None:
                raise SystemExit(f"the gateway answered {proto.status}: {proto.out[:300]!r}")
            return (proto.first_text - start) * 1000, (proto.done - start) * 1000

        async def main() -> dict[str, Any]:
            app.__rsgi_init__(loop)
            await one(1000.0)  # warm-up
            out: dict[str, Any] = {}
            for rate in tps:
                samples = [await one(rate) for _ in range(requests)]
                out[str(rate)] = {"ttft_ms": statistics.median(s[0] for s in samples),
                                  "total_ms": statistics.median(s[1] for s in samples)}
            return out

        return loop.run_until_complete(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--tps", default="30,60,120", help="output tokens per second, comma-separated")
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    rates = [float(r) for r in args.tps.split(",")]
    if args.child:
        print(json.dumps(child(args.child == "on", rates, args.requests, args.max_tokens)))
        return 0
    results = {}
    for mode in ("off", "on"):
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--tps", args.tps, "--requests",
                               str(args.requests), "--max-tokens", str(args.max_tokens)],
                              capture_output=True, text=True, check=True)
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"streamed answers, {MODEL} on the simulator (ttft 200 ms), median of {args.requests} requests each\n")
    print("| output tokens/s | TTFT, scan off | TTFT, scan on | added | stream end, off | stream end, on |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rate in rates:
        off, on = results["off"][str(rate)], results["on"][str(rate)]
        print(f"| {rate:g} | {off['ttft_ms']:.0f} ms | {on['ttft_ms']:.0f} ms | +{on['ttft_ms'] - off['ttft_ms']:.0f} ms "
              f"| {off['total_ms']:.0f} ms | {on['total_ms']:.0f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
