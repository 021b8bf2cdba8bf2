"""A replica whose Redis dies: governed requests get 503, ungoverned ones go on, and it recovers on its own.

A real ``redis-server`` of the test's own, on a free port, is stopped and started again under a running gateway.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, free_port, start_gateway
from tests.test_cache_redis_gateway import RedisServer
from tests.test_governance_gateway import call, chat

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


def _metrics(gw: GatewayProcess) -> dict[str, float]:
    with urllib.request.urlopen(f"{gw.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    wanted = ("interlock_governance_counters_up", "interlock_governance_counters_transitions")
    return {name: float(value) for line in text.splitlines() if line.startswith(wanted)
            for name, value in [line.rsplit(" ", 1)]}


def test_losing_redis_refuses_only_governed_requests_and_recovers(tmp_path: Path, redis_server: RedisServer) -> None:
    config = (f"simulator: {{enabled: true, time_scale: 0}}\n"
              f"redis: {{url: 'redis://127.0.0.1:{redis_server.port}/0', key_prefix: 'loss:'}}\n")
    gw = start_gateway(tmp_path / "gw", config, clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY))
    try:
        call(gw, "POST", "/admin/v1/projects", {"id": "limited"})
        _, _, key = call(gw, "POST", "/admin/v1/keys", {"project": "limited", "limits": {"rpm": 1000}})
        assert chat(gw, key["key"], max_tokens=5)[0] == 200
        assert _metrics(gw)["interlock_governance_counters_up"] == 1.0

        redis_server.stop()
        for _ in range(3):
            status, _, body = chat(gw, key["key"], max_tokens=5)
            assert status == 503 and body["error"]["code"] == "governance_unavailable", body
            assert str(redis_server.port) not in body["error"]["message"]
        # The master key needs no shared counter: it is still served.
        assert chat(gw, MASTER_KEY, max_tokens=5)[0] == 200
        down = _metrics(gw)
        assert down["interlock_governance_counters_up"] == 0.0
        assert down['interlock_governance_counters_transitions{to="down"}'] == 1.0
        # One log line for the loss, not one per refused request.
        assert gw.output().count("unreachable") == 1, gw.output()

        redis_server.start()
        deadline = time.monotonic() + 15
        status = 0
        while time.monotonic() < deadline and status != 200:
            status = chat(gw, key["key"], max_tokens=5)[0]
            time.sleep(0.1)
        assert status == 200
        up = _metrics(gw)
        assert up["interlock_governance_counters_up"] == 1.0
        assert up['interlock_governance_counters_transitions{to="up"}'] == 1.0
        assert gw.output().count("answer again") == 1, gw.output()
    finally:
        gw.stop()
