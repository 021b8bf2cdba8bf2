"""Every error path a client can reach: right status, OpenAI error shape, the offending parameter."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess
from tests.mock_openai import MockVendor, wait_until

pytestmark = pytest.mark.slow


def post(gw: GatewayProcess, body: bytes | str, headers: dict[str, str] | None = None,
         path: str = "/v1/chat/completions", method: str = "POST") -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    hdrs = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    hdrs.update(headers or {})
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        data = raw
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def chat(model: str, **extra: Any) -> str:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], **extra})


def assert_openai_error(data: Any, type_: str, param: str | None = None, code: str | None = None) -> None:
    assert set(data) == {"error"}
    err = data["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == type_
    assert err["message"]
    if param is not None:
        assert err["param"] == param
    if code is not None:
        assert err["code"] == code


def test_invalid_json_is_400(gateway: GatewayProcess) -> None:
    status, _, data = post(gateway, b'{"model": "mock/ok", "messages": [')
    assert status == 400
    assert_openai_error(data, "invalid_request_error", code="invalid_json")


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "mock/ok"}, "messages"),
    ({"model": "mock/ok", "messages": "hi"}, "messages"),
    ({"model": "mock/ok", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "mock/ok", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "mock/ok", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"model": "mock/ok", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
    ({"model": "mock/ok", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "mock/ok", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ({"model": "mock/ok", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
     "tools[0].function"),
    ({"model": "mock/ok", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}},
     "response_format.type"),
])
def test_wrong_types_name_the_parameter(gateway: GatewayProcess, body: dict[str, Any], param: str) -> None:
    status, _, data = post(gateway, json.dumps(body))
    assert status == 400, data
    assert_openai_error(data, "invalid_request_error", param=param)


def test_missing_and_wrong_key_are_401(gateway: GatewayProcess) -> None:
    status, _, data = post(gateway, chat("mock/ok"), headers={"Authorization": ""})
    assert status == 401
    assert_openai_error(data, "authentication_error")
    status, _, data = post(gateway, chat("mock/ok"), headers={"Authorization": "Bearer wrong-key-123456"})
    assert status == 401
    assert_openai_error(data, "authentication_error", code="invalid_api_key")
    assert "wrong-key-123456" not in data["error"]["message"]


def test_sdk_sees_authentication_error(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="mock/ok", messages=[{"role": "user", "content": "hi"}])


def test_unknown_model_is_404(gateway: GatewayProcess) -> None:
    for model in ("no-such-model", "nolab/nothing", "openai/gpt-does-not-exist-99"):
        status, _, data = post(gateway, chat(model))
        assert status == 404, (model, data)
        assert_openai_error(data, "invalid_request_error", param="model", code="model_not_found")


def test_body_over_limit_is_413(gateway: GatewayProcess) -> None:
    status, _, data = post(gateway, chat("mock/ok", padding="x" * 300_000))
    assert status == 413
    assert_openai_error(data, "invalid_request_error", code="request_too_large")


def test_vendor_429_passes_retry_after(gateway: GatewayProcess) -> None:
    status, headers, data = post(gateway, chat("mock/status-429"))
    assert status == 429
    assert headers["retry-after"] == "7"
    assert_openai_error(data, "rate_limit_error")


@pytest.mark.parametrize("code", [500, 502, 503])
def test_vendor_5xx_is_502(gateway: GatewayProcess, code: int) -> None:
    status, _, data = post(gateway, chat(f"mock/status-{code}"))
    assert status == 502
    assert_openai_error(data, "api_error", code="upstream_error")
    assert str(code) in data["error"]["message"]


def test_vendor_client_error_is_passed_on(gateway: GatewayProcess) -> None:
    status, _, data = post(gateway, chat("mock/status-400"))
    assert status == 400
    assert data["error"]["param"] == "messages"


def test_vendor_rejecting_our_credential_is_not_the_callers_401(gateway: GatewayProcess) -> None:
    status, _, data = post(gateway, chat("mock/status-401"))
    assert status == 502
    assert data["error"]["code"] == "upstream_auth_error"


def test_unreachable_vendor_is_502(tmp_path: Any) -> None:
    from tests.conftest import free_port, start_gateway

    port = free_port()
    gw = start_gateway(tmp_path, f"vendors:\n  dead:\n    type: openai\n    base_url: http://127.0.0.1:{port}/v1\n")
    try:
        status, _, data = post(gw, chat("dead/m"))
        assert status == 502
        assert_openai_error(data, "api_error", code="upstream_error")
    finally:
        gw.stop()


def test_vendor_timeout_is_504(gateway: GatewayProcess) -> None:
    start = time.monotonic()
    status, _, data = post(gateway, chat("mock/hang"))
    assert status == 504
    assert_openai_error(data, "api_error", code="upstream_timeout")
    assert "first-byte" in data["error"]["message"]
    assert time.monotonic() - start < 10


def test_stream_idle_timeout_reports_an_error_event(gateway: GatewayProcess) -> None:
    status, _, raw = post(gateway, chat("mock/stall", stream=True))
    assert status == 200
    text = raw.decode() if isinstance(raw, bytes) else json.dumps(raw)
    events = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
    last = json.loads(events[-1])
    assert last["error"]["code"] == "upstream_timeout"
    assert "idle" in last["error"]["message"]
    assert "[DONE]" not in text


def test_truncated_stream_reports_an_error_event(gateway: GatewayProcess) -> None:
    status, _, raw = post(gateway, chat("mock/truncate", stream=True))
    assert status == 200
    events = [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]
    assert json.loads(events[-1])["error"]["code"] == "upstream_stream_truncated"


def test_vendor_answer_that_is_not_json_is_502(gateway: GatewayProcess) -> None:
    status, _, data = post(gateway, chat("mock/not-json"))
    assert status == 502
    assert data["error"]["code"] == "upstream_invalid_response"


def test_unknown_path_and_method(gateway: GatewayProcess) -> None:
    status, _, data = post(gateway, "", path="/v1/nothing-here", method="GET")
    assert status == 404
    assert_openai_error(data, "invalid_request_error")
    status, _, data = post(gateway, "", path="/v1/chat/completions", method="GET")
    assert status == 405


def test_health_and_readiness(gateway: GatewayProcess) -> None:
    status, _, data = post(gateway, "", path="/healthz", method="GET")
    assert status == 200 and data == {"status": "ok"}
    status, _, data = post(gateway, "", path="/readyz", method="GET")
    assert status == 200 and data["status"] == "ready"
    assert data["checks"]["state_store"] == "ok"


def test_client_disconnect_aborts_the_upstream_call(gateway: GatewayProcess, mock_vendor: MockVendor) -> None:
    import socket

    before = mock_vendor.disconnects.count("slow-stream")
    body = chat("mock/slow-stream", stream=True).encode()
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {MASTER_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    received = b""
    while b"w2 " not in received:
        received += sock.recv(65536)
    sock.close()
    # The stream would last 10 s; the gateway must hang up on the vendor promptly.
    assert wait_until(lambda: mock_vendor.disconnects.count("slow-stream") > before, timeout=3)


def test_client_disconnect_before_first_byte_aborts_upstream(gateway: GatewayProcess, mock_vendor: MockVendor) -> None:
    import socket

    before = len(mock_vendor.requests)
    body = chat("mock/slow-first-byte").encode()
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {MASTER_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    assert wait_until(lambda: len(mock_vendor.requests) > before, timeout=3)
    gone = mock_vendor.disconnects.count("slow-first-byte")
    sock.close()
    assert wait_until(lambda: mock_vendor.disconnects.count("slow-first-byte") > gone, timeout=2)
    # The gateway process stays healthy and answers the next request at once.
    status, _, _ = post(gateway, chat("mock/ok"))
    assert status == 200


def test_readiness_fails_when_shared_counters_are_unreachable(tmp_path: Any) -> None:
    from tests.conftest import free_port, start_gateway

    gw = start_gateway(tmp_path, f"redis: redis://127.0.0.1:{free_port()}/0\nsimulator: {{enabled: true}}\n")
    try:
        status, _, data = post(gw, "", path="/readyz", method="GET")
        assert status == 503 and data["status"] == "not_ready"
        assert data["checks"]["counters"].startswith("unreachable")
        assert data["checks"]["state_store"] == "ok"
    finally:
        gw.stop()
