"""Graceful drain (``server.drain_s``): on SIGTERM a gateway fails ``/readyz`` first and keeps serving, then
stops accepting and lets in-flight streams finish; nothing in flight is dropped and the log is flushed."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, start_gateway

MODEL = "openai/gpt-4.1-mini"


def ready(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_then_finishes_streams(tmp_path: Path, workers: int) -> None:
    # The simulator at a third of real speed: a 300-token answer streams for several seconds. The prompt is
    # one whose (deterministic) simulated answer runs past max_tokens, so the stream cannot end early.
    gw = start_gateway(tmp_path, "simulator: {enabled: true, time_scale: 3}\n"
                       "logging: {flush_interval: 0.2}\nserver: {drain_s: 1.5, grace_s: 20}\n", workers=workers)
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    streamed: dict[str, Any] = {}

    def stream() -> None:
        chunks = client.chat.completions.create(model=MODEL, stream=True, max_tokens=300,
                                                messages=[{"role": "user", "content": "a long story, please"}])
        text = []
        for chunk in chunks:
            streamed.setdefault("id", chunk.id)
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
            streamed["finish"] = chunk.choices[0].finish_reason if chunk.choices else streamed.get("finish")
        streamed["text"] = "".join(text)
        streamed["ended"] = time.monotonic()

    try:
        assert ready(gw.url)[0] == 200
        worker = threading.Thread(target=stream)
        worker.start()
        deadline = time.monotonic() + 10
        while "id" not in streamed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "id" in streamed, "the stream did not start"
        gw.proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        time.sleep(0.3)
        # Draining: not ready, but still serving (a new connection, answered and closed).
        status, body = ready(gw.url)
        assert status == 503 and body["status"] == "draining"
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "still there?"}])
        assert raw.status_code == 200 and raw.headers.get("connection") == "close"
        time.sleep(max(0.0, stopped + 1.8 - time.monotonic()))  # past drain_s: the listener is closed
        assert "ended" not in streamed  # ... and the stream goes on
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
        worker.join(30)
        assert streamed.get("finish") == "length" and streamed["text"], streamed  # it ended normally
        assert streamed["ended"] - stopped > 1.5  # ... after the listener closed
        assert gw.proc.wait(30) == 0
        # The stream's record was flushed on the way out.
        with sqlite3.connect(tmp_path / "state" / "interlock.db") as conn:
            ids = {r[0] for r in conn.execute("SELECT id FROM requests")}
        assert len(ids) == 2 and "Traceback" not in gw.output()
    finally:
        gw.stop()
