"""The interlock benchmark harness (``make bench``).

Starts the mock vendor (``bench/mock_upstream.py``, pinned to core 1) and the
gateway (``interlock serve``, one worker, pinned to core 0), then measures,
side by side, direct-to-mock and through-interlock:

* concurrency 1: p50/p99 latency with a sequential raw-socket keep-alive
  client (nanosecond timer; added latency = through - direct);
* concurrency 32: req/s and p50/p99 latency with ``wrk`` (pinned to core 1);
* streaming: SSE chunks/s relayed by the gateway at concurrency 32 (wrk
  streams/s x chunks per stream), also normalised per gateway CPU core;
* the gateway's peak RSS (VmHWM of the gateway process and its children).

Prints a table and writes ``bench/results/latest.json``. Exits non-zero when
a process fails to start or answers wrongly. See ``bench/README.md``.

    .venv/bin/python bench/run.py [--quick] [--only direct]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
HOST = "127.0.0.1"
GATEWAY_CORE = 0
LOAD_CORE = 1  # mock, wrk and the latency client

MASTER_KEY = "bench-master-key"
UPSTREAM_KEY = "bench-upstream-key"
GATEWAY_MODEL = "mock/bench-model"
VENDOR_MODEL = "bench-model"
CHAT_PATH = "/v1/chat/completions"

TARGETS = {
    "c32_rps": 10_000.0,  # >= req/s through the gateway at concurrency 32
    "c1_added_p50_ms": 0.15,  # <= added p50 latency at concurrency 1
    "stream_chunks_per_core": 80_000.0,  # >= SSE chunks/s per gateway core
    "log_cost": 0.10,  # <= share of req/s the request log costs (SQLite, PostgreSQL)
}

CHAT_BODY = {
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "In two sentences, what does an LLM gateway do?"},
    ],
    "max_tokens": 128,
    "temperature": 0.2,
}


class BenchError(Exception):
    """A failure that ends the run with a clear message (and a non-zero exit)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# wrk


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    apt = shutil.which("apt-get")
    if apt is None:
        raise BenchError(
            "wrk is not installed and apt-get is not available: install wrk (https://github.com/wg/wrk)"
        )
    log("wrk not found: installing it with apt-get install -y wrk")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    output = ""

    def attempt(*cmd: str) -> bool:
        nonlocal output
        proc = subprocess.run([apt, *cmd], env=env, capture_output=True, text=True, check=False)
        output += f"$ apt-get {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        return proc.returncode == 0

    if not attempt("install", "-y", "wrk"):
        log("apt-get install failed: running apt-get update and retrying")
        if attempt("update"):
            attempt("install", "-y", "wrk")
    path = shutil.which("wrk")
    if not path:
        raise BenchError(f"wrk is missing and could not be installed with apt-get:\n{output.rstrip()}")
    log(f"installed {path}")
    return path


@dataclass
class WrkResult:
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    bytes_read: float = 0.0
    p50_ms: float = 0.0
    p75_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    raw: str = ""

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"unparsable wrk time {text!r}")
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def parse_wrk(out: str) -> WrkResult:
    r = WrkResult(raw=out)
    m = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w+) read", out)
    if not m:
        raise BenchError(f"could not parse wrk output:\n{out}")
    r.requests = int(m.group(1))
    r.seconds = _ms(m.group(2)) / 1e3
    r.bytes_read = float(m.group(3)) * _SIZE_UNITS.get(m.group(4), 1)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r.rps = float(m.group(1)) if m else (r.requests / r.seconds if r.seconds else 0.0)
    for pct, attr in (("50", "p50_ms"), ("75", "p75_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            setattr(r, attr, _ms(m.group(1)))
    m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    if m:
        r.max_ms = _ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r.non_2xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r.socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True)
        )
    return r


def run_wrk(
    wrk: str, url: str, script: str, *, connections: int, seconds: int, model: str, key: str
) -> WrkResult:
    cmd = [
        "taskset", "-c", str(LOAD_CORE), wrk,
        "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
        "-s", str(BENCH_DIR / "wrk" / script), url,
    ]  # fmt: skip
    env = dict(os.environ, BENCH_MODEL=model, BENCH_KEY=key)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return parse_wrk(proc.stdout)


# ---------------------------------------------------------------------------
# A minimal blocking HTTP/1.1 client (keep-alive) for probes and c=1 latency


class HttpConn:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    @staticmethod
    def build(
        method: str, path: str, port: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body or method == "POST":
            lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def _more(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.buf += data

    def exchange(self, request: bytes) -> tuple[int, bytes, bytes]:
        """Send one request, read one response: (status, head, body). Body de-chunked."""
        self.sock.sendall(request)
        return self.read_response()

    def read_response(self) -> tuple[int, bytes, bytes]:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._more()
        head = self.buf[:end]
        status = int(head[9:12])
        lower = head.lower()
        pos = end + 4
        i = lower.find(b"\r\ncontent-length:")
        if i >= 0:
            j = lower.find(b"\r\n", i + 2)
            total = pos + int(head[i + 17 : j if j >= 0 else len(head)])
            while len(self.buf) < total:
                self._more()
            body, self.buf = self.buf[pos:total], self.buf[total:]
            return status, head, body
        if re.search(rb"\r\ntransfer-encoding:[^\r]*chunked", lower):
            parts: list[bytes] = []
            while True:
                while (eol := self.buf.find(b"\r\n", pos)) < 0:
                    self._more()
                size = int(self.buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if size == 0:
                    while (eol := self.buf.find(b"\r\n", pos)) < 0:
                        self._more()
                    while eol != pos:  # trailers
                        pos = eol + 2
                        while (eol := self.buf.find(b"\r\n", pos)) < 0:
                            self._more()
                    self.buf = self.buf[eol + 2 :]
                    return status, head, b"".join(parts)
                while len(self.buf) < pos + size + 2:
                    self._more()
                parts.append(self.buf[pos : pos + size])
                pos += size + 2
        # No length: read until the server closes.
        with contextlib.suppress(ConnectionError):
            while True:
                self._more()
        body, self.buf = self.buf[pos:], b""
        return status, head, body


def http_get_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    try:
        conn = HttpConn(port, timeout=timeout)
    except OSError:
        return None
    try:
        status, _, _ = conn.exchange(HttpConn.build("GET", path, port, headers={"Connection": "close"}))
        return status
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def chat_request(port: int, model: str, key: str, *, stream: bool = False) -> bytes:
    body: dict[str, Any] = {"model": model, **CHAT_BODY}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return HttpConn.build(
        "POST",
        CHAT_PATH,
        port,
        json.dumps(body, separators=(",", ":")).encode(),
        {"Authorization": f"Bearer {key}"},
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
# Processes, CPU time and memory from /proc

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces: split after the closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
        todo.extend(children.get(pid, []))
    return out


AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def require_autogroup(method: str, alternative: str = "") -> None:
    """Stop unless the kernel gives each session an equal CPU share (gateways side by side on one core)."""
    if AUTOGROUP.exists() and AUTOGROUP.read_text().strip() != "1":
        raise SystemExit(f"the {method} needs autogroup scheduling (equal CPU shares per gateway, not per thread): "
                         f"{AUTOGROUP} is off{alternative}")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime + stime, all threads
    return total / CLK_TCK


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Managed:
    """A child process in its own session (so it and its children can be stopped together)."""

    def __init__(self, name: str, cmd: list[str], *, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.peak_rss_kib: dict[int, int] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tree(self) -> list[int]:
        return process_tree(self.pid) if self.alive() else []

    def sample_rss(self) -> None:
        for pid in self.tree():
            hwm = _status_kib(pid, "VmHWM")
            if hwm:
                self.peak_rss_kib[pid] = max(self.peak_rss_kib.get(pid, 0), hwm)

    def output(self, limit: int = 6000) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        else:
            # The leader is gone; make sure no orphaned children of its group survive.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def wait_healthy(p: Managed, port: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: int | None = None
    while time.monotonic() < deadline:
        if not p.alive():
            raise BenchError(
                f"{p.name} exited with code {p.proc.returncode} before becoming ready.\n"
                f"command: {' '.join(p.cmd)}\n--- {p.name} output ---\n{p.output()}"
            )
        last = http_get_status(port, path)
        if last == 200:
            return
        time.sleep(0.05)
    raise BenchError(
        f"{p.name} did not answer GET {path} with 200 within {timeout:g}s (last status: {last}).\n"
        f"command: {' '.join(p.cmd)}\n--- {p.name} output ---\n{p.output()}"
    )


def _system_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine: user + nice + system, and steal, from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in fields]
    return (ticks[0] + ticks[1] + ticks[2]) / CLK_TCK, (ticks[7] if len(ticks) > 7 else 0) / CLK_TCK


@contextlib.contextmanager
def cpu_meter(procs: dict[str, Managed]) -> Iterator[dict[str, float]]:
    """Yields a dict filled, on exit, with the CPU cores each process tree used during the block.

    Also ``other``: the CPU used meanwhile by processes that are not part of the
    benchmark (anything but our processes, wrk and the harness itself), and
    ``steal``: CPU taken by the hypervisor. Either one makes the figures unreliable.
    """
    trees = {name: p.tree() for name, p in procs.items()}
    before = {name: cpu_seconds(pids) for name, pids in trees.items()}
    sys_before, steal_before = _system_cpu()
    own_before = os.times()
    t0 = time.monotonic()
    out: dict[str, float] = {}
    yield out
    wall = time.monotonic() - t0
    if wall <= 0:
        return
    ours = 0.0
    for name, pids in trees.items():
        used = cpu_seconds(pids) - before[name]
        ours += used
        out[name] = used / wall
    own = os.times()
    # The harness itself, plus wrk (a child that has been waited for by now).
    harness = sum(own[:4]) - sum(own_before[:4])
    out["harness_and_wrk"] = harness / wall
    sys_after, steal_after = _system_cpu()
    # Ticks are 10 ms: a little slack before calling it interference.
    out["other"] = max(0.0, (sys_after - sys_before) - ours - harness) / wall
    out["steal"] = (steal_after - steal_before) / wall


# ---------------------------------------------------------------------------
# Probes: does the endpoint answer correctly before we measure it?


def probe(port: int, model: str, key: str) -> dict[str, Any]:
    conn = HttpConn(port)
    try:
        status, head, body = conn.exchange(chat_request(port, model, key))
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
        status, head, body = conn.exchange(chat_request(port, model, key, stream=True))
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
# The run


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
) -> None:
    url = f"http://{HOST}:{port}{CHAT_PATH}"
    res = result.setdefault(side, {})
    chunks_per_stream = res["probe"]["stream_chunks"]

    phases = [("c32", "chat.lua", args.concurrency)]
    if streaming:
        phases.append(("stream", "stream.lua", args.stream_concurrency))
    for name, script, conns in phases:
        log(f"{side}: {name} (wrk -c{conns}, {args.warmup:g}s warm-up + {args.duration:g}s)")
        run_wrk(wrk, url, script, connections=conns, seconds=int(args.warmup), model=model, key=key)
        with cpu_meter(procs) as cpu:
            w = run_wrk(wrk, url, script, connections=conns, seconds=int(args.duration), model=model, key=key)
        entry: dict[str, Any] = {k: v for k, v in w.__dict__.items() if k != "raw"}
        entry["errors"] = w.errors
        entry["cpu_cores"] = dict(cpu)
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


OTHER_LOAD_LIMIT = 0.10  # cores used by foreign processes (or stolen) before a measurement is flagged


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


def environment() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    for dist in ("interlock", "granian", "aiohttp", "uvloop", "orjson"):
        try:
            from importlib.metadata import version

            info[f"{dist}_version"] = version(dist)
        except Exception:  # noqa: BLE001 - informational only
            info[f"{dist}_version"] = None
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["git_commit"] = None
    info["wrk"] = subprocess.run(
        ["wrk", "-v"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    return info


def gateway_config(args: argparse.Namespace, tmp: Path) -> Path:
    config = Path(args.config)
    if args.mock_port == 9101:
        return config
    text = config.read_text().replace("127.0.0.1:9101", f"127.0.0.1:{args.mock_port}")
    out = tmp / "interlock.bench.yaml"
    out.write_text(text)
    return out


def measure_log_overhead(args: argparse.Namespace, wrk: str, tmp: Path) -> dict[str, Any]:
    """Req/s with the request log on (SQLite; PostgreSQL when a server answers) relative to off.

    ``bench/logging_overhead.py``'s concurrent method: one gateway per configuration, all at once on the
    gateway's core with equal shares, each loaded by its own wrk, the ratio taken per round.
    """
    import logging_overhead

    rounds, seconds = (3, 4) if args.quick else (5, 8)
    base_port = args.gateway_port + 10
    for port in range(base_port, base_port + 3):
        if port_in_use(port):
            raise BenchError(f"port {port} (for the request log measurement) is already in use")
    db = logging_overhead.create_pg_database()
    kinds = ["off", "sqlite"] + (["postgresql"] if db else [])
    if db is None:
        log("no PostgreSQL server answers on 127.0.0.1:5432: the request log is measured on SQLite only")
    log(f"request log on vs off: {len(kinds)} gateways sharing core {GATEWAY_CORE} (c={args.concurrency} each), "
        f"{rounds} rounds of {seconds}s")
    try:
        found = logging_overhead.concurrent(
            kinds, logging_overhead.pg_url_of(db) if db else None, wrk, rounds=rounds, seconds=seconds, tmp=tmp,
            mock_port=args.mock_port, base_port=base_port, quiet=True)
    except SystemExit as exc:
        raise BenchError(f"the request log measurement failed: {exc}") from None
    finally:
        if db:
            logging_overhead.drop_pg_database(db)
    out: dict[str, Any] = {"method": "concurrent", "rounds": rounds, "seconds": seconds}
    for kind, found_kind in found.items():
        if kind != "off":
            out[kind] = {"median": found_kind.median, "per_round": found_kind.ratios}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark interlock against a mock vendor, side by side with direct."
    )
    p.add_argument("--quick", action="store_true", help="short run: 1s warm-up + 3s per measurement")
    p.add_argument(
        "--only", choices=["direct", "through"], help="measure only one side (direct needs no gateway)"
    )
    p.add_argument("--duration", type=int, default=None, help="seconds per measurement (default 10, quick 3)")
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="warm-up seconds before each measurement (default 2, quick 1)",
    )
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of the c=1 measurement (default 5)"
    )
    p.add_argument("--chunks", type=int, default=100, help="content chunks per mock stream (default 100)")
    p.add_argument(
        "--stream-concurrency", type=int, default=None, help="streaming connections (default: --concurrency)"
    )
    p.add_argument("--mock-latency-ms", type=float, default=0.0, help="mock time to first byte (default 0)")
    p.add_argument(
        "--chunk-delay-ms", type=float, default=0.0, help="pace the mock's stream events (default 0: unpaced)"
    )
    p.add_argument("--mock-port", type=int, default=9101)
    p.add_argument("--gateway-port", type=int, default=8401)
    p.add_argument("--relay-port", type=int, default=8402)
    p.add_argument(
        "--no-relay",
        dest="relay",
        action="store_false",
        help="skip the null-relay reference (a zero-work TCP proxy on the gateway's core)",
    )
    p.add_argument("--config", default=str(BENCH_DIR / "interlock.bench.yaml"))
    p.add_argument("--engine", choices=("native", "granian"), default="native",
                   help="the gateway's HTTP server (interlock serve --engine; default native)")
    p.add_argument(
        "--interlock", default=str(REPO / ".venv" / "bin" / "interlock"), help="the interlock executable"
    )
    p.add_argument("--start-timeout", type=float, default=30.0)
    p.add_argument("--out", default=str(BENCH_DIR / "results" / "latest.json"))
    p.add_argument("--check", action="store_true", help="exit 4 when a target is missed")
    p.add_argument("--no-log-overhead", dest="log_overhead", action="store_false",
                   help="skip the request log's cost (gateways with the log off, on SQLite and on PostgreSQL "
                        "sharing the gateway's core: bench/logging_overhead.py)")
    args = p.parse_args(argv)
    if args.stream_concurrency is None:
        args.stream_concurrency = args.concurrency
    if args.duration is None:
        args.duration = 3 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.duration < 1 or args.warmup < 1:
        p.error("--duration and --warmup must be at least 1 second (wrk's granularity)")
    return args


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        raise BenchError("the benchmark needs 2 CPU cores (gateway on core 0, load on core 1)")
    if not shutil.which("taskset"):
        raise BenchError("taskset is missing (Debian package util-linux)")
    wrk = ensure_wrk()
    # The orchestrator (and so the c=1 latency client) stays off the gateway's core.
    os.sched_setaffinity(0, {LOAD_CORE})

    want_direct = args.only in (None, "direct")
    want_through = args.only in (None, "through")
    for port, what in ((args.mock_port, "mock"), (args.gateway_port, "gateway"), (args.relay_port, "relay")):
        if (what == "mock" or want_through) and port_in_use(port):
            raise BenchError(
                f"port {port} (for the {what}) is already in use: stop whatever listens there first"
            )

    busy_before, _ = _system_cpu()
    time.sleep(1.0)
    idle_load = _system_cpu()[0] - busy_before
    if idle_load > OTHER_LOAD_LIMIT:
        log(
            f"WARNING: other processes are using {idle_load:.2f} cores before the run starts: "
            "the figures will be disturbed (each measurement is checked and flagged)"
        )

    started = _dt.datetime.now(_dt.UTC)
    result: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "config": {
            "duration": args.duration,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "chunks": args.chunks,
            "mock_latency_ms": args.mock_latency_ms,
            "chunk_delay_ms": args.chunk_delay_ms,
            "engine": args.engine,
            "stream_concurrency": args.stream_concurrency,
            "gateway_core": GATEWAY_CORE,
            "load_core": LOAD_CORE,
            "only": args.only,
            "other_load_before_run_cores": round(idle_load, 3),
            "null_relay": bool(args.relay and args.only != "direct"),
        },
        "targets": TARGETS,
        "environment": environment(),
    }
    procs: dict[str, Managed] = {}
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            mock_cmd = [
                "taskset", "-c", str(LOAD_CORE), sys.executable, str(BENCH_DIR / "mock_upstream.py"),
                "--host", HOST, "--port", str(args.mock_port), "--chunks", str(args.chunks),
                "--latency-ms", str(args.mock_latency_ms), "--chunk-delay-ms", str(args.chunk_delay_ms),
                "--api-key", UPSTREAM_KEY,
            ]  # fmt: skip
            log("starting the mock vendor: " + " ".join(mock_cmd))
            procs["mock"] = Managed("mock", mock_cmd, env=dict(os.environ), logdir=tmp)
            wait_healthy(procs["mock"], args.mock_port, "/healthz", args.start_timeout)

            gateway: Managed | None = None
            if want_through:
                interlock = Path(args.interlock)
                if not interlock.exists():
                    raise BenchError(
                        f"{interlock} does not exist: install the gateway first (pip install -e .)"
                    )
                home = tmp / "home"
                home.mkdir()
                gw_cmd = [
                    "taskset", "-c", str(GATEWAY_CORE), str(interlock), "serve",
                    "--host", HOST, "--port", str(args.gateway_port), "--workers", "1",
                    "--config", str(gateway_config(args, tmp)), "--engine", args.engine,
                ]  # fmt: skip
                env = dict(os.environ, INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home))
                log("starting the gateway: " + " ".join(gw_cmd))
                gateway = procs["gateway"] = Managed("gateway", gw_cmd, env=env, logdir=tmp)
                wait_healthy(gateway, args.gateway_port, "/healthz", args.start_timeout)
                gateway.sample_rss()
                result["gateway_command"] = gw_cmd

            if want_through and args.relay:
                relay_cmd = [
                    "taskset", "-c", str(GATEWAY_CORE), sys.executable, str(BENCH_DIR / "mock_upstream.py"),
                    "--host", HOST, "--port", str(args.relay_port),
                    "--relay-to", f"{HOST}:{args.mock_port}",
                ]  # fmt: skip
                log("starting the null relay: " + " ".join(relay_cmd))
                procs["relay"] = Managed("relay", relay_cmd, env=dict(os.environ), logdir=tmp)
                deadline = time.monotonic() + args.start_timeout
                while http_get_status(args.relay_port, "/healthz") != 200:
                    if not procs["relay"].alive() or time.monotonic() > deadline:
                        raise BenchError(f"the null relay did not start:\n{procs['relay'].output()}")
                    time.sleep(0.05)

            # Which endpoints, in order: (side, port, model, key).
            sides: list[tuple[str, int, str, str]] = []
            if want_direct:
                sides.append(("direct", args.mock_port, VENDOR_MODEL, UPSTREAM_KEY))
            if "relay" in procs:
                sides.append(("relay", args.relay_port, VENDOR_MODEL, UPSTREAM_KEY))
            if gateway is not None:
                sides.append(("through", args.gateway_port, GATEWAY_MODEL, MASTER_KEY))

            def gateway_failed(exc: BenchError) -> BenchError:
                if gateway is None:
                    return exc
                return BenchError(f"{exc}\n--- gateway output ---\n{gateway.output()}", exc.code)

            for side, port, model, key in sides:
                try:
                    result[side] = {"probe": probe(port, model, key)}
                except BenchError as exc:
                    raise gateway_failed(exc) if side == "through" else exc from None

            log(
                f"c=1 latency of {', '.join(s[0] for s in sides)}: {args.warmup:g}s warm-up each, then "
                f"{args.duration:g}s each in {args.rounds} interleaved rounds (sequential keep-alive client)"
            )
            try:
                with cpu_meter(procs) as c1_cpu:
                    c1 = sequential_latency(
                        {side: (port, chat_request(port, model, key)) for side, port, model, key in sides},
                        warmup=args.warmup,
                        seconds=args.duration,
                        rounds=args.rounds,
                    )
            except BenchError as exc:
                raise gateway_failed(exc) from None
            for side, lat in c1.items():
                result[side]["c1"] = {**lat.__dict__, "cpu_cores": dict(c1_cpu)}
            if gateway is not None:
                gateway.sample_rss()

            for side, port, model, key in sides:
                try:
                    measure_side(
                        side, port, model, key,
                        wrk=wrk, args=args, procs=procs, result=result,
                        gateway=gateway if side == "through" else None,
                        streaming=side != "relay",
                    )  # fmt: skip
                except BenchError as exc:
                    raise gateway_failed(exc) if side == "through" else exc from None
            if gateway is not None:
                if not gateway.alive():
                    raise BenchError(f"the gateway died during the run:\n{gateway.output()}")
                gateway.sample_rss()
                result["gateway_peak_rss"] = {
                    "total_kib": sum(gateway.peak_rss_kib.values()),
                    "per_process_kib": {str(k): v for k, v in gateway.peak_rss_kib.items()},
                }
                if args.log_overhead:
                    for name in ("gateway", "relay"):  # the log measurement's gateways get the core to themselves
                        if name in procs:
                            procs[name].stop()
                    result["log_overhead"] = measure_log_overhead(args, wrk, tmp)
        finally:
            for p in reversed(list(procs.values())):
                p.stop()

    t = result.get("through")
    d = result.get("direct")
    summary: dict[str, Any] = {}
    if t:
        summary["c32_rps"] = t["c32"]["rps"]
        summary["c32_rps_ok"] = t["c32"]["rps"] >= TARGETS["c32_rps"]
        per_core = t["stream"]["chunks_per_s_per_gateway_core"]
        summary["stream_chunks_per_s"] = t["stream"]["chunks_per_s"]
        summary["stream_chunks_per_gateway_core"] = per_core
        summary["stream_chunks_per_core_ok"] = (
            per_core is not None and per_core >= TARGETS["stream_chunks_per_core"]
        )
        summary["gateway_peak_rss_mib"] = result["gateway_peak_rss"]["total_kib"] / 1024
    if t and d:
        added = t["c1"]["p50_ms"] - d["c1"]["p50_ms"]
        summary["c1_added_p50_ms"] = added
        summary["c1_added_p99_ms"] = t["c1"]["p99_ms"] - d["c1"]["p99_ms"]
        summary["c1_added_p50_ok"] = added <= TARGETS["c1_added_p50_ms"]
    overhead = result.get("log_overhead")
    if overhead:
        for kind in ("sqlite", "postgresql"):
            if kind in overhead:
                cost = -overhead[kind]["median"]
                summary[f"log_{kind}_cost"] = cost
                summary[f"log_{kind}_cost_ok"] = cost <= TARGETS["log_cost"]
    summary["interference"] = sorted(interference(result))
    result["summary"] = summary

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(render(result))
    print(f"\nresults written to {os.path.relpath(out, Path.cwd())}")

    invalid = [
        f"{side} {name}"
        for side in ("direct", "through")
        for name in ("c1", "c32", "stream")
        if result.get(side)
        and result[side][name]["errors"]
        > 0.01 * max(result[side][name].get("requests") or result[side][name].get("samples") or 1, 1)
    ]
    if invalid:
        log("measurements with more than 1% failed requests: " + ", ".join(invalid))
        return 3
    if args.check and any(v is False for k, v in summary.items() if k.endswith("_ok")):
        log("a target was missed (--check)")
        return 4
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    try:
        return run(args)
    except BenchError as exc:
        print(f"\nbench: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\nbench: interrupted; all processes stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
