"""The MCP admin API in a real gateway process whose store is PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.conftest import clean_env, start_gateway

CONFIG = """
simulator: {enabled: true, time_scale: 0}
mcp:
  servers:
    docs: {url: "http://127.0.0.1:9/mcp", per_user: {type: api_key}}
  tool_packs:
    support: {project: acme, tools: ["docs/*"]}
"""
SECRET = "sk-pg-user-secret-0123456789"
ENC_KEY = "ab" * 32


async def _sealed(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["sealed"] for r in await conn.fetch("SELECT sealed FROM mcp_credentials")]
    finally:
        await conn.close()


def test_admin_api_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    env = clean_env(INTERLOCK_MASTER_KEY="ik-test-master-key-0123456789", INTERLOCK_ENCRYPTION_KEY=ENC_KEY)
    gw = start_gateway(tmp_path, f"store: {pg_url}\n{CONFIG}", env)
    try:
        assert gw.call("POST", "/admin/v1/projects", {"id": "acme"})[0] == 201
        assert gw.call("POST", "/admin/v1/mcp/registered-users", {"id": "u-1", "project": "acme"})[0] == 201
        status, out = gw.call("PUT", "/admin/v1/mcp/registered-users/u-1/credentials/docs?project=acme",
                              {"api_key": SECRET})
        assert status == 200 and SECRET not in str(out)
        status, minted = gw.call("POST", "/admin/v1/mcp/access-keys", {"tool_pack": "support",
                                                                        "registered_user": "u-1", "ttl_s": 600})
        assert status == 201 and minted["key"].startswith("ik-mcp-")
        status, listed = gw.call("GET", "/admin/v1/mcp/access-keys?project=acme")
        assert status == 200 and [k["id"] for k in listed["data"]] == [minted["id"]]
        assert gw.call("GET", "/admin/v1/mcp/calls")[1]["data"] == []
        sealed = asyncio.run(_sealed(pg_url))
        assert len(sealed) == 1 and sealed[0].startswith("v1:") and SECRET not in sealed[0]
        assert not (tmp_path / "state" / "encryption-key").exists()  # the key came from the environment
    finally:
        gw.stop()
    assert "Traceback" not in gw.output()


def test_a_bad_encryption_key_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "interlock.yaml").write_text(CONFIG)
    env = clean_env(INTERLOCK_HOME=str(tmp_path / "state"), INTERLOCK_ENCRYPTION_KEY="too-short")
    proc = subprocess.run([sys.executable, "-m", "interlock", "serve", "--port", "1", "--config",
                           str(tmp_path / "interlock.yaml")], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "INTERLOCK_ENCRYPTION_KEY" in proc.stderr and "32 bytes" in proc.stderr and "too-short" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
