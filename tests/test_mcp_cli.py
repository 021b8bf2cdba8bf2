"""``interlock mcp ...``: users, credentials (never from argv), access keys, rotation with reseal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFIG = """
mcp:
  servers:
    crm: {url: "http://127.0.0.1:1/mcp", per_user: {type: api_key}}
    plain: {url: "http://127.0.0.1:1/mcp"}
  tool_packs:
    support: {project: acme, tools: ["crm/*"]}
"""
KEY_A = "11" * 32
KEY_B = "22" * 32


def run(tmp: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    environment.update(INTERLOCK_HOME=str(tmp / "state"), **env)
    return subprocess.run([sys.executable, "-m", "interlock", "mcp", *args, "--config", str(tmp / "c.yaml")],
                          input=stdin, capture_output=True, text=True, env=environment, timeout=60)


def test_users_credentials_access_keys_and_rotation(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    assert run(tmp_path, "users", "create", "u-42", "--project", "acme",
               INTERLOCK_ENCRYPTION_KEY=KEY_A).returncode == 0
    # From stdin; the secret is sealed under key A and is nowhere in the database in plaintext.
    done = run(tmp_path, "credentials", "set", "u-42", "crm", "--project", "acme", stdin="crm-secret-42\n",
               INTERLOCK_ENCRYPTION_KEY=KEY_A)
    assert done.returncode == 0, done.stderr
    assert "crm-secret-42" not in done.stdout
    assert b"crm-secret-42" not in (tmp_path / "state" / "interlock.db").read_bytes()
    wrong = run(tmp_path, "credentials", "set", "u-42", "plain", "--project", "acme", stdin="x\n",
                INTERLOCK_ENCRYPTION_KEY=KEY_A)
    assert wrong.returncode == 2 and "no per-user credential" in wrong.stderr
    minted = run(tmp_path, "access-keys", "create", "--pack", "support", "--user", "u-42", "--ttl", "600")
    assert minted.returncode == 0 and "ik-mcp-" in minted.stdout
    refused = run(tmp_path, "access-keys", "create", "--pack", "support", "--user", "u-43")
    assert refused.returncode == 2 and "Unknown registered user 'u-43'" in refused.stderr
    # Rotation: key B current, A old; reseal moves the credential under B; then B alone opens it.
    rotated = run(tmp_path, "reseal", INTERLOCK_ENCRYPTION_KEY=KEY_B, INTERLOCK_ENCRYPTION_OLD_KEYS=KEY_A)
    assert rotated.returncode == 0 and "resealed 1 credential" in rotated.stdout
    listed = run(tmp_path, "credentials", "list", "u-42", "--project", "acme", INTERLOCK_ENCRYPTION_KEY=KEY_B)
    assert '"kind": "api_key"' in listed.stdout and "crm-secret" not in listed.stdout
    assert run(tmp_path, "users", "delete", "u-42", "--project", "acme").returncode == 0
    assert '"id"' not in run(tmp_path, "users", "list").stdout
