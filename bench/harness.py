"""Shared pieces of the benchmark harnesses (``bench/run.py``, ``bench/peers.py`` and the others).

Constants (ports, cores, keys, the chat request), ``wrk`` (install, run, parse), a minimal blocking
HTTP/1.1 client, child processes in their own session (``Managed``) with their CPU time and peak RSS
from ``/proc``, the mock vendor's start, and the machine's description (``environment()``).
The c=1 latency client and the answer checks are in ``bench/harness_latency.py``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
#: The compiled build (``make fast``: scripts/build_fast.py): interlock with the request path compiled by mypyc.
FAST_BUILD = REPO / "build" / "fast"

HOST = "127.0.0.1"
GATEWAY_CORE = 0
LOAD_CORE = 1  # mock, wrk and the latency client

MASTER_KEY = "bench-master-key"
UPSTREAM_KEY = "bench-upstream-key"
GATEWAY_MODEL = "mock/bench-model"
VENDOR_MODEL = "bench-model"
CHAT_PATH = "/v1/chat/completions"
#: The same two mock targets as a priority policy and as a difficulty policy, named as the model
#: (``bench/logging_overhead.py --difficulty``, ``bench/pipeline.py --policy``).
POLICY_MODEL = "bench-policy"
TWO_TARGET_POLICIES = {
    "priority": f"policies:\n  {POLICY_MODEL}: {{targets: [mock/bench-model, mock/bench-strong]}}\n",
    "difficulty": (f"policies:\n  {POLICY_MODEL}:\n    strategy: difficulty\n"
                   "    tiers: {weak: [mock/bench-model], strong: [mock/bench-strong]}\n"
                   "    difficulty: {strong_share: 0.3}\n"),
}


def compiled_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a gateway that runs the compiled build; builds it first when it is missing or stale."""
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_fast.py"), "--out", str(FAST_BUILD)], check=True,
                   stdout=subprocess.DEVNULL)
    return {**env, "PYTHONPATH": str(FAST_BUILD)}


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


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def bench_main(label: str, body: Callable[[], int]) -> int:
    """Run a benchmark's ``body``: SIGTERM and SIGINT stop it (every process it started is stopped on the way
    out), a :class:`BenchError` is one line and its exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    try:
        return body()
    except BenchError as exc:
        print(f"\n{label}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"\n{label}: interrupted; all processes stopped", file=sys.stderr)
        return 130


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
    wrk: str,
    url: str,
    script: str,
    *,
    connections: int,
    seconds: int,
    model: str,
    key: str,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """``wrk -t1`` on the load core with a script of ``bench/wrk``; ``headers`` are added to each request."""
    cmd = [
        "taskset", "-c", str(LOAD_CORE), wrk,
        "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
        "-s", str(BENCH_DIR / "wrk" / script), url,
    ]  # fmt: skip
    env = dict(os.environ, BENCH_MODEL=model, BENCH_KEY=key)
    if headers:
        env["BENCH_HEADERS"] = "\n".join(f"{k}: {v}" for k, v in headers.items())
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

    def __init__(
        self, name: str, cmd: list[str], *, env: dict[str, str], logdir: Path, cwd: Path = REPO
    ) -> None:
        self.name = name
        self.cmd = cmd
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
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
# The machine, the mock vendor

OTHER_LOAD_LIMIT = 0.10  # cores used by foreign processes (or stolen) before a measurement is flagged


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



def start_mock(
    port: int,
    logdir: Path,
    *,
    chunks: int = 100,
    latency_ms: float = 0.0,
    chunk_delay_ms: float = 0.0,
    timeout: float = 30.0,
) -> Managed:
    """The mock vendor (``bench/mock_upstream.py``) on the load core, answering ``/healthz`` when this returns."""
    cmd = [
        "taskset", "-c", str(LOAD_CORE), sys.executable, str(BENCH_DIR / "mock_upstream.py"),
        "--host", HOST, "--port", str(port), "--chunks", str(chunks),
        "--latency-ms", str(latency_ms), "--chunk-delay-ms", str(chunk_delay_ms),
        "--api-key", UPSTREAM_KEY,
    ]  # fmt: skip
    log("starting the mock vendor: " + " ".join(cmd))
    mock = Managed("mock", cmd, env=dict(os.environ), logdir=logdir)
    try:
        wait_healthy(mock, port, "/healthz", timeout)
    except BaseException:
        mock.stop()
        raise
    return mock
