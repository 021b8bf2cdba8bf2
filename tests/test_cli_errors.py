"""Every CLI failure is one clear line on stderr and exit code 2, never a traceback (issue 14).

Found: ``interlock models show nope/nope`` ended in a Python traceback; so did an unreachable store,
a missing or broken state directory, and ``logs --since garbage`` exited 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import clean_env, start_gateway

PG_DOWN = "store: postgresql://postgres@127.0.0.1:1/interlock\n"
PG_NO_DB = "store: postgresql://postgres@127.0.0.1:5432/interlock_no_such_database_14\n"

#: (id, argv, config text or None, state directory: "ok" | "missing" | "broken", text the line contains)
CASES = [
    ("unknown-model", ["models", "show", "nope/nope"], None, "ok", "'nope/nope' does not exist"),
    ("unknown-vendor-filter", ["models", "--vendor", "nope"], None, "ok", "unknown vendor 'nope'"),
    ("unknown-capability-filter", ["models", "--capability", "telepathy"], None, "ok", "telepathy"),
    ("bad-flag-value", ["keys", "create", "--project", "p", "--rpm", "x"], None, "ok", "--rpm"),
    ("unknown-flag", ["keys", "list", "--colour"], None, "ok", "--colour"),
    ("unknown-command", ["frobnicate"], None, "ok", "frobnicate"),
    ("bad-choice", ["spend", "--group-by", "planet"], None, "ok", "planet"),
    ("unknown-key-revoke", ["keys", "revoke", "key_nope"], None, "ok", "key_nope"),
    ("unknown-key-rotate", ["keys", "rotate", "key_nope"], None, "ok", "key_nope"),
    ("unknown-project", ["keys", "create", "--project", "nope"], None, "ok", "nope"),
    ("bad-budget", ["projects", "create", "p1", "--budget", "1/fortnight"], None, "ok", "fortnight"),
    ("bad-project-id", ["projects", "create", "Bad Id"], None, "ok", "--id"),
    ("bad-since", ["logs", "--since", "garbage"], None, "ok", "--since"),
    ("bad-from", ["spend", "--from", "garbage"], None, "ok", "--from"),
    ("negative-limit", ["logs", "--limit", "-5"], None, "ok", "--limit"),
    ("simulate-unknown-model", ["simulate", "--model", "nope/nope", "--prompt", "hi"], None, "ok", "nope/nope"),
    ("simulator-bad-port", ["simulator", "--port", "99999"], None, "ok", "--port"),
    ("serve-bad-port", ["serve", "--port", "70000"], None, "ok", "server.port"),
    ("missing-config", ["models", "--config", "/nonexistent/interlock.yaml"], None, "ok", "/nonexistent"),
    ("store-unreachable-keys", ["keys", "list"], PG_DOWN, "ok", "store"),
    ("store-unreachable-projects", ["projects", "list"], PG_DOWN, "ok", "store"),
    ("store-unreachable-logs", ["logs"], PG_DOWN, "ok", "store"),
    ("store-unreachable-spend", ["spend"], PG_DOWN, "ok", "store"),
    ("store-no-database", ["keys", "list"], PG_NO_DB, "ok", "does not exist"),
    ("state-dir-missing-keys", ["keys", "list"], None, "missing", "INTERLOCK_HOME"),
    ("state-dir-missing-logs", ["logs"], None, "missing", "INTERLOCK_HOME"),
    ("state-dir-missing-admin-key", ["admin-key"], None, "missing", "INTERLOCK_HOME"),
    ("state-dir-missing-serve", ["serve"], None, "missing", "INTERLOCK_HOME"),
    ("state-db-broken-keys", ["keys", "list"], None, "broken", "SQLite"),
    ("state-db-broken-logs", ["logs"], None, "broken", "SQLite"),
    ("state-db-broken-admin-key", ["admin-key"], None, "broken", "SQLite"),
]


def interlock(args: list[str], home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interlock", *args], capture_output=True, text=True,
                          timeout=timeout, env=clean_env(INTERLOCK_HOME=str(home)))


@pytest.mark.parametrize(("argv", "config", "state", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_error_is_one_line_and_exit_2(argv: list[str], config: str | None, state: str, needle: str,
                                          tmp_path: Path) -> None:
    home = tmp_path / "state"
    if state == "missing":
        # A state directory that cannot be created (its parent is a file).
        (tmp_path / "file").write_text("")
        home = tmp_path / "file" / "state"
    elif state == "broken":
        home.mkdir()
        (home / "interlock.db").write_text("this is not a database " * 100)
    if config is not None:
        path = tmp_path / "interlock.yaml"
        path.write_text(config)
        argv = [*argv, "--config", str(path)]
    proc = interlock(argv, home)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and lines[0].startswith("interlock")
    assert needle in lines[0], lines[0]


def test_admin_key_on_a_fresh_state_directory_prints_the_whole_key_once(tmp_path: Path) -> None:
    # Found: it printed only the prefix of the key it generated: the admin was locked out.
    home = tmp_path / "gw" / "state"
    home.parent.mkdir()
    first = interlock(["admin-key"], home)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert key.startswith("ik-admin-") and len(key) > 30 and "shown once" in first.stderr
    second = interlock(["admin-key"], home)
    assert second.returncode == 0 and key not in second.stdout and key[:12] in second.stdout
    gw = start_gateway(tmp_path / "gw", None, env=clean_env(INTERLOCK_HOME=str(home)))
    try:
        req = urllib.request.Request(gw.url + "/admin/v1/projects", headers={"authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200 and "data" in json.loads(resp.read())
    finally:
        gw.stop()
