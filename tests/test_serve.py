"""`interlock serve` as a user runs it: the embedded default, the admin key, workers, config errors."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest

from tests.conftest import GatewayProcess, clean_env, start_gateway

pytestmark = pytest.mark.slow


def test_embedded_default_generates_an_admin_key_once(tmp_path: Path) -> None:
    env = clean_env(INTERLOCK_HOME=str(tmp_path / "home"))
    gw = start_gateway(tmp_path, None, env=env)
    try:
        banner = gw.output()
        match = re.search(r"^\s+(ik-admin-\S+)$", banner, re.M)
        assert match, banner
        key = match.group(1)
        assert "simulator" in banner and str(tmp_path / "home") in banner
        client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        stream = client.chat.completions.create(model="openai/gpt-4.1-mini", stream=True,
                                                messages=[{"role": "user", "content": "hello"}])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    finally:
        gw.stop()
    # The key is stored as a digest only, and not printed again on the next start.
    assert key not in (tmp_path / "home" / "interlock.db").read_bytes().decode("latin-1")
    log2 = tmp_path / "again"
    gw = start_gateway(log2, None, env=env)
    try:
        assert key not in gw.output()
        assert key[:12] in gw.output()
        client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        assert client.chat.completions.create(model="openai/gpt-4.1-mini",
                                              messages=[{"role": "user", "content": "x"}]).choices
    finally:
        gw.stop()


def _ready_workers(gw: GatewayProcess) -> list[str]:
    return re.findall(r"worker (\d+) ready on", gw.output())


def test_several_workers_serve_requests_and_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, "simulator: {enabled: true, time_scale: 0}\n", workers=2)
    try:
        client = openai.OpenAI(base_url=gw.base_url, api_key="ik-test-master-key-0123456789", max_retries=0)

        def ask() -> None:
            assert client.chat.completions.create(model="openai/gpt-4.1-mini",
                                                  messages=[{"role": "user", "content": "x"}]).choices

        deadline = time.monotonic() + 20
        while len(_ready_workers(gw)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _ready_workers(gw)
        assert len(set(workers)) == 2
        for _ in range(20):
            ask()
        os.kill(int(workers[0]), signal.SIGKILL)
        while len(_ready_workers(gw)) < 3 and time.monotonic() < deadline + 20:
            time.sleep(0.1)
        assert len(set(_ready_workers(gw))) == 3, gw.output()
        for _ in range(20):
            ask()
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(15) == 0
    finally:
        gw.stop()


def test_a_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "interlock", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path,
                              env=clean_env(INTERLOCK_HOME=str(tmp_path / "state")))
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, "simulator: {enabled: true, time_scale: 1}\n")
    try:
        client = openai.OpenAI(base_url=gw.base_url, api_key="ik-test-master-key-0123456789", max_retries=0)
        answers: list[str] = []

        def ask() -> None:
            stream = client.chat.completions.create(model="openai/gpt-4.1-mini", stream=True,
                                                    messages=[{"role": "user", "content": "x"}])
            answers.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))

        thread = threading.Thread(target=ask)
        thread.start()
        time.sleep(0.5)  # the answer streams for a few seconds at time_scale 1
        gw.proc.send_signal(signal.SIGTERM)
        thread.join(30)
        assert answers and len(answers[0]) > 20
        assert gw.proc.wait(15) == 0
    finally:
        gw.stop()


def test_config_error_stops_the_start_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text("server:\n  port: 8400\nvendors:\n  openai:\n    timeouts: {idle: soon}\n")
    proc = subprocess.run([sys.executable, "-m", "interlock", "serve", "--config", str(path)],
                          capture_output=True, text=True, env=clean_env(), timeout=30)
    assert proc.returncode == 2
    assert f"{path}:5: vendors.openai.timeouts.idle: expected a number, got 'soon'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("text", "fragment"), [
    ("simulator:\n  enabled: true\n  time_scale: fast\n", "simulator.time_scale"),
    ("server:\n  engine: nginx\n", "server.engine"),
    ("catalog:\n  models:\n    openai/gpt-4.1-mini:\n      routes:\n        openai: {price: {inptu: 1}}\n", "inptu"),
])
def test_subsystem_config_errors_fail_the_start(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "interlock", "serve", "--config", str(path)],
                          capture_output=True, text=True, env=clean_env(), timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "configuration error" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_granian_remains_a_working_engine(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, "server: {engine: granian}\nsimulator: {enabled: true, time_scale: 0}\n")
    try:
        client = openai.OpenAI(base_url=gw.base_url, api_key="ik-test-master-key-0123456789", max_retries=0)
        stream = client.chat.completions.create(model="openai/gpt-4.1-mini", stream=True,
                                                messages=[{"role": "user", "content": "x"}])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert _ready_workers(gw) == []  # Granian served it, not interlock's own workers
    finally:
        gw.stop()


def test_a_stalled_request_body_is_a_408_in_the_callers_format(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, "server: {body_timeout: 0.5}\nsimulator: {enabled: true, time_scale: 0}\n")
    try:
        for path, shape in (("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")):
            with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ik-test-master-key-0123456789"
                             "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":".encode())
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), answer[:200]
            error = json.loads(body)
            if shape == "openai":
                assert error["error"]["code"] == "request_timeout"
            else:
                assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert "Traceback" not in gw.output() and "internal error" not in gw.output()
    finally:
        gw.stop()
