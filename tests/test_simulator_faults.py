"""Faults and timeouts through the in-process transport (no sockets; time_scale 0 so nothing sleeps)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from interlock.core.errors import UpstreamError, UpstreamTimeout
from interlock.core.vendor import Timeouts
from interlock.simulator import SimulatorSettings, SimulatorTransport

URL = "http://simulator.internal/v1/chat/completions"
ANTHROPIC_URL = "http://simulator.internal/v1/messages"
BODY = orjson.dumps({"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 40})
STREAM = orjson.dumps(
    {"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 40, "stream": True}
)


def transport(**settings: Any) -> SimulatorTransport:
    return SimulatorTransport(SimulatorSettings(**{"time_scale": 0, "allow_fault_headers": True, **settings}))


def fault(spec: str) -> dict[str, str]:
    return {"x-interlock-simulator-fault": spec}


async def drain(response: Any) -> bytes:
    return b"".join([chunk async for chunk in response.iter_bytes()])


async def test_error_statuses_with_retry_after() -> None:
    t = transport()
    for status in (500, 502, 503, 529):
        response = await t.request("POST", URL, fault(f"error={status}"), BODY, Timeouts())
        assert response.status == status
        assert orjson.loads(await response.read())["error"]["type"] == "server_error"
    response = await t.request("POST", URL, fault("error=429;retry_after=2"), BODY, Timeouts())
    assert response.status == 429 and response.headers["retry-after"] == "2"
    assert orjson.loads(await response.read())["error"]["code"] == "rate_limit_exceeded"
    response = await t.request("POST", ANTHROPIC_URL, fault("error=529"), orjson.dumps({"model": "anthropic/claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}), Timeouts())
    assert response.status == 529
    error = orjson.loads(await response.read())
    assert error["type"] == "error" and error["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert error["request_id"].startswith("req_011")


async def test_refuse_and_reset_raise_upstream_error() -> None:
    t = transport()
    with pytest.raises(UpstreamError, match=r"could not reach the vendor: .*Connection refused"):
        await t.request("POST", URL, fault("refuse"), BODY, Timeouts())
    response = await t.request("POST", URL, fault("reset"), STREAM, Timeouts())
    assert response.status == 200
    with pytest.raises(UpstreamError, match=r"broke mid-stream: .*Connection reset by peer"):
        await drain(response)
    response = await t.request("POST", URL, fault("reset"), BODY, Timeouts())
    with pytest.raises(UpstreamError, match="failed while reading the answer"):
        await response.read()


async def test_hang_times_out_with_transport_messages_instantly_at_scale_zero() -> None:
    t = transport()
    started = time.perf_counter()
    with pytest.raises(UpstreamTimeout) as info:
        await t.request("POST", URL, fault("hang"), BODY, Timeouts(first_byte=30))
    assert str(info.value) == "the vendor sent no data within the first-byte timeout of 30s"
    with pytest.raises(UpstreamTimeout) as info:
        await t.request("POST", URL, fault("hang"), BODY, Timeouts(first_byte=30, total=10))
    assert str(info.value) == "the vendor did not finish within the total timeout of 10s"
    assert time.perf_counter() - started < 0.5


async def test_hang_waits_for_the_scaled_deadline() -> None:
    t = transport(time_scale=0.01)
    started = time.perf_counter()
    with pytest.raises(UpstreamTimeout):
        await t.request("POST", URL, fault("hang"), BODY, Timeouts(first_byte=10))
    assert 0.08 <= time.perf_counter() - started < 1.0


async def test_slow_first_byte_against_the_first_byte_timeout() -> None:
    t = transport()
    with pytest.raises(UpstreamTimeout, match="first-byte timeout of 2s"):
        await t.request("POST", URL, fault("slow_first_byte=2.5"), STREAM, Timeouts(first_byte=2))
    # The model's own time to first token is drawn at random; pinned here, so that 1.5 s is the fault's.
    pinned = {**fault("slow_first_byte=1.5"), "x-interlock-simulator-latency": "ttft=0.1;tps=100"}
    response = await t.request("POST", URL, pinned, STREAM, Timeouts(first_byte=2))
    assert (await drain(response)).endswith(b"data: [DONE]\n\n")


async def test_idle_and_total_timeouts_mid_stream() -> None:
    t = transport()
    slow = {"x-interlock-simulator-latency": "ttft=0.1;tps=0.2"}
    response = await t.request("POST", URL, slow, STREAM, Timeouts(idle=3))
    with pytest.raises(UpstreamTimeout, match="stalled for longer than the idle timeout of 3s"):
        await drain(response)
    response = await t.request("POST", URL, {"x-interlock-simulator-latency": "ttft=0.1;tps=2"}, STREAM, Timeouts(total=4))
    with pytest.raises(UpstreamTimeout, match="total timeout of 4s"):
        await drain(response)


async def test_stop_after_drops_the_stream_without_done() -> None:
    response = await transport().request("POST", URL, fault("stop_after=3"), STREAM, Timeouts())
    received: list[bytes] = []
    with pytest.raises(UpstreamError, match="broke mid-stream"):
        async for chunk in response.iter_bytes():
            received.append(chunk)
    assert len(received) == 3 and b"[DONE]" not in b"".join(received)


async def test_malformed_json_and_sse() -> None:
    t = transport()
    response = await t.request("POST", URL, fault("malformed_json"), BODY, Timeouts())
    assert response.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(await response.read())
    data = await drain(await t.request("POST", URL, fault("malformed_json"), STREAM, Timeouts()))
    payloads = [e.removeprefix(b"data: ") for e in data.split(b"\n\n") if e]
    bad = [p for p in payloads if p != b"[DONE]" and not _is_json(p)]
    assert len(bad) == 1 and data.endswith(b"data: [DONE]\n\n")
    data = await drain(await t.request("POST", URL, fault("malformed_sse"), STREAM, Timeouts()))
    merged = [e for e in data.split(b"\n\n") if e.count(b"data: ") > 1]
    assert len(merged) == 1


async def test_error_event_mid_stream() -> None:
    data = await drain(await transport().request("POST", URL, fault("error_event=503"), STREAM, Timeouts()))
    last = data.split(b"\n\n")[-2]
    assert orjson.loads(last.removeprefix(b"data: "))["error"]["type"] == "server_error"
    assert b"[DONE]" not in data
    body = orjson.dumps({"model": "anthropic/claude-haiku-4-5", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    data = await drain(await transport().request("POST", ANTHROPIC_URL, fault("error_event"), body, Timeouts()))
    name, _, payload = data.split(b"\n\n")[-2].partition(b"\ndata: ")
    error = orjson.loads(payload)
    assert name == b"event: error" and data.endswith(b"\n\n")
    assert error["error"] == {"type": "overloaded_error", "message": "Overloaded"} and error["request_id"].startswith("req_")
    assert b"message_stop" not in data


async def test_fault_rate_is_statistical_and_seeded() -> None:
    statuses: list[list[int]] = []
    for _ in range(2):
        t = transport(seed=11)
        statuses.append([(await t.request("POST", URL, fault("rate=0.3;error=500"), BODY, Timeouts())).status for _ in range(300)])
    assert statuses[0] == statuses[1]
    failures = statuses[0].count(500)
    assert 60 <= failures <= 120, failures
    assert set(statuses[0]) == {200, 500}


async def test_config_faults_apply_by_model_pattern() -> None:
    t = SimulatorTransport(
        SimulatorSettings.from_config({"time_scale": 0, "faults": {"openai/*": "error=502", "openai/gpt-4.1-mini": "error=503"}})
    )
    assert (await t.request("POST", URL, {}, BODY, Timeouts())).status == 503
    other = orjson.dumps({"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "x"}]})
    assert (await t.request("POST", URL, {}, other, Timeouts())).status == 502
    google = orjson.dumps({"model": "google/gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5})
    assert (await t.request("POST", URL, {}, google, Timeouts())).status == 200


async def test_time_scale_zero_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    async def forbidden(delay: float, *args: Any) -> None:
        raise AssertionError(f"slept {delay}")

    monkeypatch.setattr(asyncio, "sleep", forbidden)
    t = transport()
    data = await drain(await t.request("POST", URL, {"x-interlock-simulator-latency": "ttft=5;tps=1"}, STREAM, Timeouts()))
    assert data.endswith(b"data: [DONE]\n\n")


async def test_streams_are_paced_in_scaled_time() -> None:
    t = transport(time_scale=0.1)
    started = time.perf_counter()
    response = await t.request("POST", URL, {"x-interlock-simulator-latency": "ttft=1;tps=100"}, STREAM, Timeouts())
    first = time.perf_counter() - started
    await drain(response)
    total = time.perf_counter() - started
    assert 0.09 <= first < 0.3
    usage_tokens = 40  # max_tokens caps the answer: ~40 tokens at 100 tok/s is 0.4 s, 0.04 s scaled
    assert first + 0.02 <= total < first + usage_tokens / 100 * 0.1 + 0.2


def _is_json(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True
