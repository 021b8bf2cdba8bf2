"""The Redis-backed response cache across two gateway processes, and a Redis cut mid-run: the cache turns
into misses, requests keep being answered, and it recovers when Redis is back.

A Redis server of the test's own (a free port, nothing on disk) so that stopping it touches nothing else.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, free_port, start_gateway
from tests.mock_openai import MockVendor
from tests.test_cache_gateway import MODEL, config, received

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


def gateways(mock: MockVendor, home: Path, port: int) -> list[GatewayProcess]:
    conf = config(mock).replace("cache:\n  enabled: true\n", "cache:\n  enabled: true\n  backend: redis\n"
                                "  redis_timeout_s: 0.2\n")
    conf += f"redis: {{url: 'redis://127.0.0.1:{port}/0', key_prefix: 'it-{uuid.uuid4().hex[:6]}:'}}\n"
    return [start_gateway(home / name, conf) for name in ("a", "b")]


def ask(gw: GatewayProcess, text: str) -> str:
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(model=MODEL, temperature=0,
                                                           messages=[{"role": "user", "content": text}])
    assert raw.parse().choices[0].message.content == text
    return raw.headers["x-interlock-cache"]


def test_two_gateways_share_the_cache_and_survive_a_redis_cut(module_mock: MockVendor, tmp_path: Path,
                                                              redis_server: RedisServer) -> None:
    a, b = gateways(module_mock, tmp_path, redis_server.port)
    try:
        text = f"shared {uuid.uuid4().hex}"
        assert ask(a, text) == "miss"
        deadline = time.monotonic() + 5
        while ask(b, text) != "hit":  # the store is written just after the answer
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert received(module_mock, text) <= 2
        redis_server.stop()
        cut = f"cut {uuid.uuid4().hex}"
        started = time.monotonic()
        assert [ask(g, cut) for g in (a, b, a)] == ["miss", "miss", "miss"]  # answered, never an error
        assert time.monotonic() - started < 5
        assert received(module_mock, cut) == 3
        redis_server.start()  # an empty Redis: misses again, then hits
        back = f"back {uuid.uuid4().hex}"
        deadline = time.monotonic() + 10
        statuses = []
        while "hit" not in statuses:
            statuses.append(ask(a, back))
            assert time.monotonic() < deadline, statuses
            time.sleep(0.1)
        assert a.log.read_text().count("response cache: Redis") >= 1
    finally:
        for g in (a, b):
            g.stop()
