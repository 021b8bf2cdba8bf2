"""Replicas on PostgreSQL + Redis behind a real HAProxy (Debian's ``haproxy``), for tests/test_lb.py and
bench/scaleout.py.

HAProxy's config is rendered from the shipped ``deploy/haproxy.cfg`` (its defaults, health checks, retries and
timeouts as they are) with this run's ports, and runs as a child process (``haproxy -f cfg -db``), not as the
system service. Replicas are real ``interlock serve`` processes, restartable on the same port.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conformance import capture
from tests.conftest import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_HAPROXY = ROOT / "deploy" / "haproxy.cfg"
MISSING = "haproxy is not installed: run scripts/debian_packages.sh (make packages) to install Debian's haproxy"


def haproxy_binary() -> str:
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if path is None:
        raise RuntimeError(MISSING)
    return path


def render_haproxy(lb_port: int, replica_ports: list[int], stats_socket: Path) -> str:
    """``deploy/haproxy.cfg`` with this run's listen port, replicas and stats socket; no syslog (no /dev/log)."""
    text = DEPLOY_HAPROXY.read_text()
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("log /dev/log"):  # no syslog here: HAProxy's log goes to its output
            line = "    log stdout format raw local0"
        elif stripped.startswith("stats socket "):
            line = f"    stats socket {stats_socket} mode 600 level admin"
        elif stripped.startswith("bind :"):
            line = f"    bind 127.0.0.1:{lb_port}"
        elif stripped.startswith("server "):
            continue
        out.append(line)
    if not any(s.strip().startswith("backend replicas") for s in out):
        raise AssertionError("deploy/haproxy.cfg has no `backend replicas` section")
    out += [f"    server r{i} 127.0.0.1:{port}" for i, port in enumerate(replica_ports)]
    return "\n".join(out) + "\n"


class HAProxy:
    def __init__(self, workdir: Path, replica_ports: list[int], port: int | None = None) -> None:
        self.binary = haproxy_binary()
        self.port = port or free_port()
        self.socket_path = workdir / "haproxy.sock"
        self.cfg = workdir / "haproxy.cfg"
        self.cfg.write_text(render_haproxy(self.port, replica_ports, self.socket_path))
        self.log = workdir / "haproxy.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([self.binary, "-f", str(self.cfg), "-db"], stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if self.socket_path.exists():
                try:
                    self.command("show info")
                    capture.register(self.port)  # answers through the LB are checked against the vendors' specs
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"haproxy did not start:\n{self.log.read_text()}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self, cmd: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.socket_path))
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode()

    def states(self) -> dict[str, str]:
        """Each replica's state as HAProxy's health checks see it: UP, DOWN, NOLB (draining)..."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "replicas" and r["svname"].startswith("r")}

    def wait_state(self, server: str, want: str, timeout: float = 20.0) -> float:
        """Seconds until ``server`` is ``want`` (UP or DOWN, transitions such as "UP 1/2" excluded)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.states().get(server) == want:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"haproxy: {server} not {want} after {timeout} s: {self.states()}")

    def stop(self) -> None:
        capture.unregister(self.port)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_replica(home: Path, port: int, config: Path, env: dict[str, str], *, workers: int = 1,
                  timeout: float = 40.0) -> GatewayProcess:
    """``interlock serve`` on ``port`` (a fixed one: a restarted replica comes back where HAProxy expects it)."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "gateway.log"
    environment = dict(env)
    environment["INTERLOCK_HOME"] = str(home / "state")
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "interlock", "serve", "--port", str(port), "--workers",
                                 str(workers), "--config", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                env=environment, cwd=home)
    gw = GatewayProcess(proc, port, home, log)
    capture.register(port)  # GatewayProcess.stop unregisters it
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica on {port} exited with {proc.returncode}:\n{gw.output()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{gw.url}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return gw
        except OSError:
            time.sleep(0.1)
    gw.stop()
    raise RuntimeError(f"replica on {port} did not become ready:\n{gw.output()[-4000:]}")


def psql(db_url: str, sql: str) -> list[list[str]]:
    """Rows of ``sql`` on ``db_url`` through psql (tab-separated, unaligned)."""
    out = subprocess.run(["psql", db_url, "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def logged_ids(db_url: str) -> set[str]:
    return {row[0] for row in psql(db_url, "SELECT id FROM requests")}


_SERVER = re.compile(r"^r\d+$")


def replica_name(headers: object) -> str | None:
    """The replica that answered, from the ``X-Interlock-Replica`` header deploy/haproxy.cfg sets."""
    value = headers.get("x-interlock-replica") if headers is not None else None  # type: ignore[attr-defined]
    return value if value and _SERVER.match(value) else None
