"""Where a request's CPU goes, by layer of the gateway: a profile of the real ``interlock serve`` process.

Runs the gateway (native server, one worker, in this process's interpreter under ``cProfile``) against the
mock vendor, sends the same fixed workload as ``bench/gateway_instructions.py`` (warm-up, then ``-n``
requests over ``--concurrency`` keep-alive connections), stops it, and adds up each function's own time by
the layer its module belongs to (``interlock/server``, ``wire``, ``routing``, ``governance``, ``ledger``,
``vendors``, ``pipeline``, ``core``...; the event loop and the standard library apart). A C function's time
(``orjson.loads``, a socket write, ``dict.get``) goes to the layer of the Python function that called it,
so "server" includes the socket writes it makes. Start-up and the warm-up are left out: the profile is
reset between warm-up and the measured requests by a signal (SIGUSR1).

The profiler slows Python calls more than C work, so the shares lean towards call-heavy code; they say
where to look, and ``bench/gateway_instructions.py`` (callgrind) says whether a change paid.

    .venv/bin/python bench/stage_profile.py [-n 5000] [--log sqlite|off] [--stream] [--top 25]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from gateway_instructions import beside_mock, serve_fixed_load
from harness import (
    GATEWAY_CORE,
    REPO,
    BenchError,
    bench_main,
)
from peers_gateways import interlock_config

SRC = str(REPO / "src" / "interlock") + os.sep

#: Run in the gateway's process: cProfile around ``interlock serve``, reset on SIGUSR1, dumped at exit.
_CHILD = """
import cProfile, signal, sys
from interlock.cli import main
profile = cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: (profile.disable(), profile.clear(), profile.enable()))
profile.enable()
try:
    code = main(sys.argv[2:])
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
sys.exit(code)
"""


def layer(filename: str) -> str | None:
    """The layer of a profiled function's file; None for a C function (attributed to its callers)."""
    if filename == "~":
        return None
    if filename.startswith(SRC):
        part = filename[len(SRC):].split(os.sep)
        return part[0] if len(part) > 1 else part[0].removesuffix(".py")
    if "asyncio" in filename or "uvloop" in filename:
        return "(event loop)"
    return "(other Python: stdlib, libraries)"


def by_layer(path: Path) -> tuple[dict[str, float], list[tuple[float, str]]]:
    """Own time per layer (C functions' time given to their callers' layers) and the top functions."""
    stats: dict[Any, Any] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = defaultdict(float)
    functions: list[tuple[float, str]] = []
    for (filename, line, name), (_, _, own, _, callers) in stats.items():
        where = layer(filename)
        if where is not None:
            totals[where] += own
            functions.append((own, f"{where}: {name} ({Path(filename).name}:{line})"))
            continue
        # A C function: its time per calling edge goes to each caller's layer.
        for (cfile, _, _), edge in callers.items():
            totals[layer(cfile) or "(C, called from C)"] += edge[2]
        functions.append((own, f"C: {name}"))
    functions.sort(reverse=True)
    return dict(totals), functions


def profile(args: argparse.Namespace, tmp: Path) -> Path:
    out = tmp / "gateway.prof"
    (tmp / "interlock.yaml").write_text(interlock_config(args.mock_port, args.log))

    def reset(proc: subprocess.Popen[bytes]) -> None:  # the profile keeps the measured requests only
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.2)

    output = serve_fixed_load(
        ["taskset", "-c", str(GATEWAY_CORE), sys.executable, "-c", _CHILD, str(out)], port=args.gateway_port,
        config=tmp / "interlock.yaml", home=tmp / "home", log_path=tmp / "gateway.log", measured=args.n,
        concurrency=args.concurrency, stream=args.stream, start_timeout=60.0, after_warm_up=reset,
        stop=signal.SIGINT)
    if not out.exists():
        raise BenchError(f"the gateway wrote no profile:\n{output}")
    return out


def render(totals: dict[str, float], functions: list[tuple[float, str]], requests: int, top: int) -> str:
    whole = sum(totals.values()) or 1.0
    lines = ["| layer | share of the gateway's profiled time | µs per request (under the profiler) |",
             "|---|--:|--:|"]
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {100 * seconds / whole:.1f}% | {seconds / requests * 1e6:.1f} |")
    lines += ["", f"Top {top} functions by own time:", ""]
    lines += [f"  {100 * own / whole:5.1f}%  {what}" for own, what in functions[:top]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=5000, help="profiled requests (default 5000)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--log", choices=("sqlite", "off"), default="sqlite")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--chunks", type=int, default=20, help="content chunks per mock stream (default 20)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--mock-port", type=int, default=9171)
    p.add_argument("--gateway-port", type=int, default=8471)
    p.add_argument("--json", help="also write the layers' shares here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        with beside_mock(args, "interlock-stages-") as tmp:
            totals, functions = by_layer(profile(args, tmp))
        print(render(totals, functions, args.n, args.top))
        if args.json:
            Path(args.json).write_text(json.dumps({"requests": args.n, "seconds_by_layer": totals}, indent=2) + "\n")
        return 0

    return bench_main("stage-profile", body)


if __name__ == "__main__":
    sys.exit(main())
