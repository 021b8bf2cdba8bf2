"""Instructions per request of the whole gateway process: server, pipeline, vendor client and request log.

``bench/pipeline.py --instructions`` counts the pipeline alone (stand-in server objects, a canned vendor
answer). This counts what issue 26 asks for: the real ``interlock serve`` process (native server or Granian,
one worker, the request log as configured) under callgrind, answering real HTTP requests from keep-alive
clients, forwarding each to the mock vendor (``bench/mock_upstream.py``) over its pooled connections.

Two runs that differ only in the number of measured requests (each after the same warm-up, with the same
hash seed); the difference of their totals divided by the difference of their request counts is the cost
of one request, with start-up, warm-up and shutdown cancelled out. The count does not move with the
machine's speed or load (valgrind counts instructions, not time), so it is the figure to compare commits by.

    .venv/bin/python bench/gateway_instructions.py [--log sqlite|off] [--stream] [--engine native|granian]
                                                   [-n 1500] [--concurrency 32] [--compiled]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness import (
    GATEWAY_CORE,
    HOST,
    LOAD_CORE,
    MASTER_KEY,
    POLICY_MODEL,
    REPO,
    TWO_TARGET_POLICIES,
    BenchError,
    HttpConn,
    bench_main,
    compiled_env,
    http_get_status,
    port_in_use,
    start_mock,
)
from harness_latency import chat_request
from peers_gateways import interlock_config

GATEWAY_MODEL = "mock/bench-model"
WARM_UP = 400


def drive(port: int, requests: int, concurrency: int, stream: bool, model: str = GATEWAY_MODEL) -> None:
    """``requests`` requests over ``concurrency`` keep-alive connections; raises on any non-200 answer."""
    payload = chat_request(port, model, MASTER_KEY, stream=stream)
    failures: list[str] = []
    share, extra = divmod(requests, concurrency)

    def client(count: int) -> None:
        conn = HttpConn(port, timeout=600.0)
        try:
            for _ in range(count):
                status, _, body = conn.exchange(payload)
                if status != 200 or (stream and not body.rstrip().endswith(b"data: [DONE]")):
                    failures.append(f"{status}: {body[:200]!r}")
                    return
        except OSError as exc:
            failures.append(str(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(share + (i < extra),)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise BenchError(f"the gateway answered wrongly: {failures[0]}")


def serve_fixed_load(prefix: list[str], *, port: int, config: Path, home: Path, log_path: Path, measured: int,
                     concurrency: int, stream: bool, start_timeout: float, extra: tuple[str, ...] = (),
                     after_warm_up: Callable[[subprocess.Popen[bytes]], None] | None = None,
                     stop: int = signal.SIGTERM, compiled: bool = False, model: str = GATEWAY_MODEL) -> str:
    """``prefix`` + ``interlock serve`` (one worker) with the warm-up, ``after_warm_up``, then ``measured``
    requests, then ``stop``: the fixed workload of this script and of ``bench/stage_profile.py``; ``compiled``:
    the compiled build (``make fast``); ``model``: what the requests name. Returns the end of the process's
    output."""
    cmd = [*prefix, "serve", "--host", HOST, "--port", str(port), "--workers", "1", "--config", str(config),
           *extra]
    env = dict(os.environ, INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home), PYTHONHASHSEED="0")
    if compiled:
        env = compiled_env(env)

    def tail() -> str:
        return log_path.read_text(errors="replace")[-3000:]

    with log_path.open("wb") as logfile:
        proc = subprocess.Popen(cmd, env=env, stdout=logfile, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + start_timeout
            while http_get_status(port, "/healthz", timeout=5.0) != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"the gateway did not start:\n{tail()}")
                time.sleep(0.5)
            drive(port, WARM_UP, concurrency, stream, model)
            if after_warm_up is not None:
                after_warm_up(proc)
            drive(port, measured, concurrency, stream, model)
            time.sleep(1.5)  # the request log's writer flushes on its own clock (every second at most)
            proc.send_signal(stop)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return tail()


def one_run(args: argparse.Namespace, measured: int, tmp: Path) -> int:
    """Total instructions of a gateway process that served the warm-up and then ``measured`` requests."""
    out = tmp / f"callgrind.{measured}"
    output = serve_fixed_load(
        ["taskset", "-c", str(GATEWAY_CORE), args.valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
         args.interlock], port=args.gateway_port, config=tmp / "interlock.yaml", home=tmp / f"home-{measured}",
        log_path=tmp / f"gateway-{measured}.log", measured=measured, concurrency=args.concurrency,
        stream=args.stream, start_timeout=args.start_timeout, extra=("--engine", args.engine), compiled=args.compiled,
        model=POLICY_MODEL if args.policy else GATEWAY_MODEL)
    found = re.search(r"Collected : (\d+)", output)
    if found is None:
        raise BenchError(f"callgrind printed no total:\n{output}")
    if args.keep is not None:  # for callgrind_annotate: where the instructions go, function by function
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, args.keep / out.name)
    return int(found.group(1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=1500, help="measured requests of the longer run (default 1500)")
    p.add_argument("--concurrency", type=int, default=32, help="keep-alive client connections (default 32)")
    p.add_argument("--log", choices=("sqlite", "off"), default="sqlite",
                   help="the request log: SQLite at level metadata (the default) or off")
    p.add_argument("--stream", action="store_true", help="streaming requests (the mock's --chunks events)")
    p.add_argument("--chunks", type=int, default=20, help="content chunks per mock stream (default 20)")
    p.add_argument("--engine", choices=("native", "granian"), default="native")
    p.add_argument("--interlock", default=str(REPO / ".venv" / "bin" / "interlock"))
    p.add_argument("--compiled", action="store_true",
                   help="the compiled build (make fast: scripts/build_fast.py), built first if missing or stale")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="copy the two callgrind profiles (callgrind.N) into DIR, for callgrind_annotate")
    p.add_argument("--policy", choices=tuple(TWO_TARGET_POLICIES),
                   help="the model is a policy of two targets: by priority, or by difficulty (issue 25's comparison)")
    p.add_argument("--mock-port", type=int, default=9161)
    p.add_argument("--gateway-port", type=int, default=8461)
    p.add_argument("--start-timeout", type=float, default=900.0)
    args = p.parse_args(argv)
    if args.n < 2 * args.concurrency:
        p.error("-n must be at least twice --concurrency")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        p.error("valgrind is missing (Debian package valgrind)")
    args.valgrind = valgrind
    return args


@contextlib.contextmanager
def beside_mock(args: argparse.Namespace, prefix: str) -> Iterator[Path]:
    """A temporary directory with the mock vendor running on the load core (this process moves there too)."""
    for port in (args.mock_port, args.gateway_port):
        if port_in_use(port):
            raise BenchError(f"port {port} is already in use")
    os.sched_setaffinity(0, {LOAD_CORE})
    with tempfile.TemporaryDirectory(prefix=prefix) as tmpdir:
        tmp = Path(tmpdir)
        mock = start_mock(args.mock_port, tmp, chunks=args.chunks)
        try:
            yield tmp
        finally:
            mock.stop()


def measure(args: argparse.Namespace) -> int:
    """Instructions per request (the two runs' difference over their difference in requests)."""
    with beside_mock(args, "interlock-gwinstr-") as tmp:
        (tmp / "interlock.yaml").write_text(interlock_config(args.mock_port, args.log)
                                            + TWO_TARGET_POLICIES.get(args.policy or "", ""))
        short = args.n // 3
        totals = {n: one_run(args, n, tmp) for n in (short, args.n)}
    return (totals[args.n] - totals[short]) // (args.n - short)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        per = measure(args)
        what = "stream" if args.stream else "request"
        build = ", compiled build" if args.compiled else ""
        model = f", model: a {args.policy} policy" if args.policy else ""
        print(f"instructions per {what} (whole gateway process{build}, {args.engine} server, request log {args.log}, "
              f"c={args.concurrency}{model}): {per:,}")
        return 0

    return bench_main("gateway-instructions", body)


if __name__ == "__main__":
    sys.exit(main())
