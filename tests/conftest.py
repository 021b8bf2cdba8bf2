"""Shared fixtures: a mock vendor on a real socket and real gateway processes."""

from __future__ import annotations

import gc
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import redis.asyncio as redis_asyncio
import requests

from interlock.ledger.pgstore import PostgresLog
from interlock.ledger.rowcodec import READ_COLUMNS, decode_row
from interlock.ledger.store import SQLiteLog, SQLiteStore
from interlock.ledger.writer import LogStore
from interlock.vendors.transport import HttpTransport
from tests.conformance import capture
from tests.conformance.report import ConformanceReport
from tests.mock_openai import MockVendor
from tests.mock_vendors.server import ScriptedVendor
from tests.pg_util import create_database, drop_database, url

MASTER_KEY = "ik-test-master-key-0123456789"

#: Vendor credentials that must not leak into test gateways from a developer's shell.
_VENDOR_ENV = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "GROQ_API_KEY", "MISTRAL_API_KEY",
               "DEEPSEEK_API_KEY", "XAI_API_KEY", "TOGETHER_API_KEY", "FIREWORKS_API_KEY", "CEREBRAS_API_KEY",
               "OPENROUTER_API_KEY", "PERPLEXITY_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
               "COHERE_API_KEY", "VLLM_API_KEY", "INTERLOCK_CONFIG", "INTERLOCK_MASTER_KEY", "INTERLOCK_HOME",
               "INTERLOCK_ENCRYPTION_KEY", "INTERLOCK_ENCRYPTION_OLD_KEYS", "INTERLOCK_WORKERS",
               "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
               "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "GOOGLE_APPLICATION_CREDENTIALS")
#: A developer's ~/.aws files or gcloud login must not make Bedrock or Vertex live in test gateways either.
_CLOUD_FILES = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "CLOUDSDK_CONFIG": os.devnull}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _VENDOR_ENV}
    env.update(_CLOUD_FILES)
    env.update(extra)
    return env


LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), Path("libfaketime.so.1"))


def at_minute_start(env: dict[str, str]) -> dict[str, str]:
    """``env`` for gateway processes whose wall clock reads one second past a minute's start now.

    Rate limits count in minute windows; a test that fills one must not be cut by a boundary. Under
    libfaketime (Debian's ``faketime``, installed by ``make test``) every process given this env shares
    one offset, so several gateways agree on the minute, and the test does not wait for a boundary.
    Monotonic time stays real (the event loop and timeouts run on it).
    """
    if not LIBFAKETIME.exists():
        raise RuntimeError(f"{LIBFAKETIME} is missing: install Debian's faketime (make test does)")
    # In [0, 60): the clock goes back by it, so it reads 1 s past a minute (never a "--0.3" offset
    # when the real clock is within the first second of a minute).
    offset = (time.time() - 1.0) % 60
    return {**env, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": f"-{offset:.3f}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    port: int
    home: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def openai_client(self) -> openai.OpenAI:
        """The official OpenAI SDK against this gateway, as the admin, without retries."""
        return openai.OpenAI(base_url=self.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)

    def anthropic_client(self) -> anthropic.Anthropic:
        """The official Anthropic SDK against this gateway, as the admin, without retries."""
        return anthropic.Anthropic(base_url=self.url, api_key=MASTER_KEY, max_retries=0, timeout=20)

    def call(self, method: str, path: str, body: Any = None, key: str = MASTER_KEY) -> tuple[int, Any]:
        """One JSON request with ``key`` as the bearer: (status, decoded body), errors included."""
        req = urllib.request.Request(self.url + path, data=None if body is None else json.dumps(body).encode(),
                                     method=method, headers={"authorization": f"Bearer {key}",
                                                             "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def record(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The request-log record of ``request_id`` in this gateway's SQLite log, waiting for the writer."""
        db = self.home / "state" / "interlock.db"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with sqlite3.connect(db) as conn:
                row = conn.execute(f"SELECT {', '.join(READ_COLUMNS)} FROM requests WHERE id = ?",
                                   (request_id,)).fetchone()
            if row is not None:
                return decode_row(row)
            time.sleep(0.1)
        raise AssertionError(f"no request record for {request_id}")

    def stop(self) -> None:
        capture.unregister(self.port)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_simulator(fmt: str) -> tuple[subprocess.Popen[bytes], int]:
    """``interlock simulator --format FMT`` on a free port, answering instantly; returns (process, port)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "interlock", "simulator", "--port", str(port), "--format", fmt,
                             "--time-scale", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=clean_env())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"simulator --format {fmt} did not start")


def wait_until_known(gw: GatewayProcess, *keys: str, timeout: float = 15.0) -> None:
    """Wait until every worker of ``gw`` accepts ``keys`` (workers poll the definitions' version).

    Which worker accepts a new connection is up to the kernel and far from random (an idle worker tends
    to win again), so a streak of accepted probes alone does not prove that every worker reloaded. After
    the first streak, wait out a few poll intervals (0.5 s by default) and probe again.
    """
    deadline = time.monotonic() + timeout

    def streaks() -> None:
        for key in keys:
            streak = 0
            while streak < 8:
                request = urllib.request.Request(f"{gw.url}/v1/models?limit=1",
                                                 headers={"authorization": f"Bearer {key}"})
                try:
                    with urllib.request.urlopen(request, timeout=5) as resp:
                        streak = streak + 1 if resp.status == 200 else 0
                except urllib.error.HTTPError:
                    streak = 0
                    if time.monotonic() > deadline:
                        raise AssertionError(f"key {key[:8]}... still refused after {timeout:g} s") from None
                    time.sleep(0.05)

    streaks()
    time.sleep(2.0)
    streaks()


def start_gateway(home: Path, config: str | None, env: dict[str, str] | None = None, *, workers: int = 1,
                  wait: bool = True) -> GatewayProcess:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [sys.executable, "-m", "interlock", "serve", "--port", str(port), "--workers", str(workers)]
    if config is not None:
        path = home / "interlock.yaml"
        path.write_text(config)
        args += ["--config", str(path)]
    log = home / "gateway.log"
    environment = env if env is not None else clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY)
    environment.setdefault("INTERLOCK_HOME", str(home / "state"))
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=home)
    gw = GatewayProcess(proc, port, home, log)
    capture.register(port)  # its answers are checked against the vendors' specs (tests/conformance)
    if wait:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}:\n{gw.output()}")
            try:
                with urllib.request.urlopen(f"{gw.url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return gw
            except OSError:
                time.sleep(0.1)
        gw.stop()
        raise RuntimeError(f"gateway did not become healthy:\n{gw.output()}")
    return gw


# --- the conformance layer: every gateway answer checked against the vendors' specs -----------------
_report = ConformanceReport()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--conformance-json", default=os.environ.get("INTERLOCK_CONFORMANCE_JSON"),
                     help="write the conformance summary (counts, violations, extra fields) to this JSON file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance_exempt(reason): this test's gateway answers are deliberately "
                            "malformed (raw framing, injected faults); conformance violations are counted, not failed")
    capture.install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    _report.claim("fixture setup", capture.take(), exempt=False)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Fail the test whose gateway answers break the vendors' specs (unless it is exempt)."""
    result = yield
    if capture.unfinished():
        gc.collect()  # closes streams the test abandoned (an SDK that raised mid-stream), so they are checked now
    marker = item.get_closest_marker("conformance_exempt")
    found = capture.take()
    _report.claim(item.nodeid, found, exempt=marker is not None)
    if found and marker is None:
        raise AssertionError(f"{len(found)} answer(s) break the vendor spec (tests/conformance):\n"
                             + "\n".join(str(v) for v in found[:10]))
    return result


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    _report.claim("teardown", capture.take(), exempt=False)
    _report.summarise(capture.checker, terminalreporter, config.getoption("--conformance-json"))


@pytest.fixture(scope="session")
def mock_vendor() -> Iterator[MockVendor]:
    vendor = MockVendor().start()
    yield vendor
    vendor.stop()


@pytest.fixture(scope="module")
def module_mock() -> Iterator[MockVendor]:
    """A mock vendor of the module's own, for a module that starts its own gateway."""
    vendor = MockVendor().start()
    yield vendor
    vendor.stop()


@pytest.fixture(scope="module")
def http_session() -> Iterator[requests.Session]:
    """One keep-alive HTTP session per module (schemathesis calls)."""
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="session")
def gateway(mock_vendor: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway for the end-to-end suite: the mock vendor plus the simulator."""
    home = tmp_path_factory.mktemp("gateway")
    config = f"""
server:
  max_body_bytes: 200000
vendors:
  mock:
    type: openai
    base_url: {mock_vendor.base_url}
    api_key: sk-mock-upstream-key
    timeouts: {{connect: 2, first_byte: 1.5, idle: 1, total: 20}}
aliases:
  fast: mock/ok
catalog:
  models:
    mocklab/priced:
      name: Priced mock
      context_window: 32768
      max_output: 4096
      capabilities: [streaming, tools]
      routes:
        mock: {{vendor_model_id: priced, price: {{input: 1.0, output: 2.0}}}}
    mocklab/unmetered:
      name: A mock that reports no usage
      context_window: 32768
      capabilities: [streaming]
      routes:
        mock: {{vendor_model_id: no-usage, price: {{input: 1.0, output: 2.0}}}}
simulator:
  enabled: true
  time_scale: 0
  allow_fault_headers: true
"""
    gw = start_gateway(home, config)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def vendor() -> Iterator[ScriptedVendor]:
    """A scripted vendor on a real socket, for the adapter tests (tests/mock_vendors/server.py)."""
    server = ScriptedVendor().start()
    yield server
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    transport = HttpTransport()
    yield transport
    await transport.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = create_database()
    yield url(name)
    drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def log_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogStore]:
    """The request log's store, once on SQLite and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "interlock.db")
        yield SQLiteLog(sqlite)
        sqlite.close()
    else:
        pg = PostgresLog(request.getfixturevalue("pg_url"))
        yield pg
        await pg.close()


#: Debian's chromium, which the browser tests drive through Playwright (scripts/debian_packages.sh installs it).
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for a test module's real-browser tests (Playwright's Python package)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[redis_asyncio.Redis, str]]:
    """A client of the local Redis and a key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    client = redis_asyncio.Redis.from_url("redis://127.0.0.1:6379/0")
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def load_schemathesis_modules(doc: dict[str, Any]) -> None:
    """Import what schemathesis imports lazily, at collection (called by the schemathesis test modules).

    Imported for the first time late in a long run (from a fixture), pytest's rewriting of those modules once
    failed in ``ast.parse`` with CPython 3.11's "AST constructor recursion depth mismatch"; at collection the
    interpreter's recursion state is the plain one.
    """
    import schemathesis

    for _ in schemathesis.openapi.from_dict(doc).get_all_operations():
        pass
