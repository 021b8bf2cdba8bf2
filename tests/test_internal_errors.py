"""A 500 that still happens (a bug) is answered, logged, counted and recorded under its request id.

Found in issue 14: an exception in a handler left no request-log record, no
metric and no request id - the client got a generic 500 and the log a
traceback nobody could match to it. The faults here are injected by
monkeypatching components of an in-process gateway (no production switch),
which is then driven through its RSGI entry with an in-memory protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.app import Gateway
from interlock.config import load_settings
from interlock.pipeline.guard import GuardStage
from interlock.vendors.registry import VENDOR_TABLE
from interlock.wire.openai_chat import OpenAIChatCodec
from tests.conftest import MASTER_KEY
from tests.inprocess import Proto, Scope, running_gateway

SECRET = "prompt-marker-7f3a"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[Gateway, asyncio.AbstractEventLoop]]:
    with running_gateway("simulator: {enabled: true, time_scale: 0}\nlogging: {flush_interval: 0.05}\n",
                         tmp_path) as running:
        yield running


def call(gw: Gateway, loop: asyncio.AbstractEventLoop, method: str, path: str, body: Any = None) -> Proto:
    async def run() -> Proto:
        proto = Proto(orjson.dumps(body) if body is not None else b"")
        scope = Scope(method, path, {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
        await gw.__rsgi__(scope, proto)  # type: ignore[arg-type]
        return proto
    return loop.run_until_complete(run())


def record(gw: Gateway, loop: asyncio.AbstractEventLoop, rid: str) -> dict[str, Any]:
    """The request-log row, once the writer has flushed it."""
    async def wait() -> dict[str, Any]:
        for _ in range(100):
            row = await gw.obs.store.get(rid)
            if row is not None:
                return row
            await asyncio.sleep(0.05)
        raise AssertionError(f"no request-log record for {rid}")
    return loop.run_until_complete(wait())


def metric(gw: Gateway, route: str) -> float:
    return gw.internal_error_count.values.get((route,), 0.0)


def boom(*args: Any, **kwargs: Any) -> Any:
    raise KeyError(SECRET)


async def _broken_stage(self: GuardStage, ctx: Any, request: Any) -> Any:
    """A guardrails stage that raises: a bug inside the pipeline's first stage."""
    raise KeyError(SECRET)


def break_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The guardrails stage runs first on every request, and its class is interpreted: the pipeline's own
    # classes and the guardrails' may be compiled (make fast), and a compiled class's methods cannot be
    # patched, nor its typed attributes hold a stand-in.
    monkeypatch.setattr(GuardStage, "__call__", _broken_stage)


CHAT = {"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_a_bug_in_the_pipeline_is_a_500_with_request_id_record_metric_and_log(
        gateway: tuple[Gateway, asyncio.AbstractEventLoop], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    gw, loop = gateway
    break_the_pipeline(monkeypatch)
    with caplog.at_level(logging.ERROR, logger="interlock"):
        proto = call(gw, loop, "POST", "/v1/chat/completions", CHAT)
    assert proto.status == 500
    rid = proto.headers["x-interlock-request-id"]
    assert rid.startswith("req_")
    error = orjson.loads(proto.chunks[0])["error"]
    assert error["type"] == "api_error" and error["code"] == "internal_error"
    assert rid in error["message"] and "KeyError" in error["message"] and SECRET not in error["message"]
    row = record(gw, loop, rid)
    assert row["status"] == 500
    assert row["error_type"] == "internal_error" and "KeyError" in row["error_message"]
    assert metric(gw, "/v1/chat/completions") == 1
    assert "interlock_internal_errors_total" in gw.obs.registry.render()
    assert rid in caplog.text and "Traceback" in caplog.text and f"KeyError: '{SECRET}'" in caplog.text


def test_a_bug_mid_stream_ends_the_stream_with_an_error_event_and_is_recorded(
        gateway: tuple[Gateway, asyncio.AbstractEventLoop], monkeypatch: pytest.MonkeyPatch) -> None:
    gw, loop = gateway

    class Broken:
        usage_seen = False

        def encode(self, payloads: list[bytes]) -> bytes:
            raise ValueError("encoder bug")

        def finish(self) -> bytes:
            return b"data: [DONE]\n\n"

        def error(self, err: Any) -> bytes:
            return b"data: " + orjson.dumps(err.to_openai()) + b"\n\n"

    monkeypatch.setattr(OpenAIChatCodec, "stream_encoder", lambda self, ctx, request, on_usage: Broken())
    proto = call(gw, loop, "POST", "/v1/chat/completions", {**CHAT, "stream": True})
    assert proto.status == 200  # committed before the bug
    rid = proto.headers["x-interlock-request-id"]
    last = b"".join(proto.chunks).decode().strip().split("\n\n")[-1]
    assert orjson.loads(last.removeprefix("data: "))["error"]["code"] == "internal_error"
    assert record(gw, loop, rid)["status"] == 500
    assert metric(gw, "/v1/chat/completions") == 1


@pytest.mark.parametrize(("path", "target", "body", "shape"), [
    ("/v1/messages/count_tokens", "interlock.api.messages.estimate_chat_tokens",
     {"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": "hi"}]}, "anthropic"),
    ("/v1/route/explain", "interlock.api.routing.explain", CHAT, "openai"),
    ("/v1/embeddings", "interlock.api.embeddings.validate_embeddings_request",
     {"model": "openai/text-embedding-3-small", "input": "hi"}, "openai"),
    ("/v1/messages", "interlock.wire.anthropic_messages.parse_messages_request",
     {"model": "anthropic/claude-sonnet-4", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
     "anthropic"),
])
def test_every_route_answers_a_bug_the_same_way(gateway: tuple[Gateway, asyncio.AbstractEventLoop],
                                                monkeypatch: pytest.MonkeyPatch, path: str, target: str,
                                                body: Any, shape: str) -> None:
    gw, loop = gateway
    monkeypatch.setattr(target, boom)
    proto = call(gw, loop, "POST", path, body)
    assert proto.status == 500
    rid = proto.headers["x-interlock-request-id"]
    data = orjson.loads(proto.chunks[0])
    error = data["error"]
    if shape == "anthropic":
        assert data["type"] == "error" and error["type"] == "api_error"
        assert data["request_id"] == rid
    else:
        assert error["code"] == "internal_error"
    assert rid in error["message"]
    assert record(gw, loop, rid)["status"] == 500
    assert metric(gw, path) == 1


def test_under_zero_data_retention_the_log_line_has_no_exception_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("INTERLOCK_MASTER_KEY", MASTER_KEY)
    config = tmp_path / "interlock.yaml"
    config.write_text("simulator: {enabled: true, time_scale: 0}\nlogging: {zero_data_retention: true}\n")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gw = Gateway(load_settings(config, vendor_table=VENDOR_TABLE, environ={"INTERLOCK_HOME": str(tmp_path / "state")}))
    try:
        break_the_pipeline(monkeypatch)
        with caplog.at_level(logging.ERROR, logger="interlock"):
            proto = call(gw, loop, "POST", "/v1/chat/completions", CHAT)
        assert proto.status == 500
        rid = proto.headers["x-interlock-request-id"]
        text = caplog.text
        assert rid in text and "KeyError" in text and "Traceback" in text
        assert SECRET not in text
    finally:
        loop.run_until_complete(gw.obs.stop())
        loop.run_until_complete(gw.http.close())
        loop.close()
        asyncio.set_event_loop(None)
