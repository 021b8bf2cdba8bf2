"""`interlock serve` as a user runs it: the embedded default, the admin key, workers, config errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.conftest import clean_env, start_gateway

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


def test_several_workers_serve_requests(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, "simulator: {enabled: true, time_scale: 0}\n", workers=2)
    try:
        client = openai.OpenAI(base_url=gw.base_url, api_key="ik-test-master-key-0123456789", max_retries=0)
        for _ in range(20):
            assert client.chat.completions.create(model="openai/gpt-4.1-mini",
                                                  messages=[{"role": "user", "content": "x"}]).choices
        assert gw.output().count("Started worker-") >= 2
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
