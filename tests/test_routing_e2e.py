"""End to end: the official OpenAI SDK → a real gateway process → policies, failover, explanations."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.mock_openai import MockVendor

pytestmark = pytest.mark.slow


def config(mock: MockVendor) -> str:
    return f"""
vendors:
  mock:
    type: openai
    base_url: {mock.base_url}
    api_key: sk-mock
    timeouts: {{connect: 2, first_byte: 5, idle: 5, total: 20}}
catalog:
  models:
    mocklab/routed:
      name: Routed mock
      context_window: 32768
      capabilities: [streaming, tools]
      routes:
        mock: {{vendor_model_id: ok, price: {{input: 1.0, output: 2.0}}}}
simulator:
  enabled: true
  time_scale: 0
  allow_fault_headers: true
  faults:
    "openai/gpt-4.1-nano": "error=503"
policies:
  support-bot:
    targets: [simulator/openai/gpt-4.1-nano, simulator/openai/gpt-4.1-mini]
    retry: {{attempts: 2, backoff_s: 0.01}}
  cheap:
    targets: [simulator/openai/gpt-4.1, simulator/openai/gpt-4.1-mini, simulator/openai/gpt-4o-mini]
    strategy: cost
  mocked:
    targets: [mocklab/routed]
"""


@pytest.fixture(scope="module")
def gateway(mock_vendor: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("routing"), config(mock_vendor))
    yield gw
    gw.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)


def get(gateway: GatewayProcess, path: str) -> tuple[int, Any]:
    req = urllib.request.Request(gateway.url + path, headers={"authorization": f"Bearer {MASTER_KEY}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def post(gateway: GatewayProcess, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(gateway.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


MSG = [{"role": "user", "content": "Hello there"}]


def test_policy_fails_over_and_explains_itself(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    raw = client.chat.completions.with_raw_response.create(model="support-bot", messages=MSG)
    out = raw.parse()
    assert out.choices[0].message.content
    assert raw.headers["x-interlock-route"] == "simulator/openai/gpt-4.1-mini"
    reason = raw.headers["x-interlock-route-reason"]
    assert reason.startswith("first in priority order of 2 capable targets")
    assert "answered by simulator/openai/gpt-4.1-mini after simulator/openai/gpt-4.1-nano (502)" in reason
    assert raw.headers["x-interlock-model"] == "openai/gpt-4.1-mini"
    # Billed once, at the answering model's price.
    assert float(raw.headers["x-interlock-cost-usd"]) > 0
    status, body = get(gateway, f"/v1/generation?id={raw.headers['x-interlock-request-id']}")
    assert status == 200
    data = body["data"]
    assert data["model"] == "openai/gpt-4.1-mini" and data["router"] == "support-bot"
    assert data["tokens_completion"] == out.usage.completion_tokens  # type: ignore[union-attr]
    assert [(r["model_permaslug"], r["status"]) for r in data["provider_responses"]] == [
        ("openai/gpt-4.1-nano", 502), ("openai/gpt-4.1-nano", 502), ("openai/gpt-4.1-mini", 200)]
    assert data["routing"]["order"] == ["simulator/openai/gpt-4.1-nano", "simulator/openai/gpt-4.1-mini"]
    assert all(a["latency_ms"] is not None for a in data["routing"]["attempts"])


def test_stream_fails_over_before_the_first_byte(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
            model="support-bot", messages=MSG, stream=True, stream_options={"include_usage": True}) as resp:
        assert resp.headers["x-interlock-route"] == "simulator/openai/gpt-4.1-mini"
        chunks = list(resp.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None


def test_cost_policy_and_provider_overrides(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="cheap", messages=MSG)
    assert raw.headers["x-interlock-route"] in ("simulator/openai/gpt-4.1-mini", "simulator/openai/gpt-4o-mini")
    assert raw.headers["x-interlock-route-reason"].startswith("cheapest of 3 capable targets")
    # OpenRouter-style fallbacks through extra_body; the routing fields never reach the vendor.
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4.1-nano", messages=MSG,
        extra_body={"models": ["openai/gpt-4.1-mini"], "provider": {"sort": "price"}})
    assert raw.headers["x-interlock-route"] == "simulator/openai/gpt-4.1-mini"


def test_provider_validation_is_a_400_naming_the_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="support-bot", messages=MSG, extra_body={"provider": {"order": "x"}})
    assert info.value.body["param"] == "provider.order"  # type: ignore[index]


def test_explain_calls_no_vendor(gateway: GatewayProcess, mock_vendor: MockVendor) -> None:
    before = len(mock_vendor.requests)
    status, body = post(gateway, "/v1/route/explain", {"model": "mocked", "messages": MSG,
                                                       "provider": {"ignore": ["simulator"]}})
    assert status == 200
    assert body["route"] == "mock/ok" and body["policy"] == "mocked"
    assert body["plan"][0]["price"] == {"input_per_m": 1.0, "output_per_m": 2.0}
    assert body["estimated_input_tokens"] > 0 and "attempts" not in body
    assert len(mock_vendor.requests) == before
    status, body = post(gateway, "/v1/route/explain", {"model": "support-bot", "messages": MSG, "max_tokens": 5,
                                                       "tools": [{"type": "function", "function": {"name": "f"}}]})
    assert status == 200 and body["strategy"] == "priority"
    status, body = post(gateway, "/v1/route/explain", {"model": "support-bot"})
    assert status == 400 and body["error"]["param"] == "messages"


def test_live_stats_reach_the_endpoints_view(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    for _ in range(3):
        with client.chat.completions.create(model="mocklab/routed", messages=MSG, stream=True) as stream:
            list(stream)
    status, body = get(gateway, "/v1/models/mocklab/routed/endpoints")
    assert status == 200
    endpoint = body["data"]["endpoints"][0]
    assert endpoint["vendor"] == "mock" and endpoint["latency_ms"] is not None and endpoint["uptime"] == 1.0
    assert endpoint["stats"]["requests_5m"] >= 3


def test_generation_unknown_id_is_404(gateway: GatewayProcess) -> None:
    status, body = get(gateway, "/v1/generation?id=req_nope")
    assert status == 404
    status, body = get(gateway, "/v1/generation")
    assert status == 400 and body["error"]["param"] == "id"


def test_generation_is_served_from_the_request_log_after_a_restart(mock_vendor: MockVendor,
                                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("routing-restart")
    gw = start_gateway(home, config(mock_vendor))
    try:
        client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="support-bot", messages=MSG)
        rid = raw.headers["x-interlock-request-id"]
    finally:
        gw.stop()
    gw = start_gateway(home, config(mock_vendor))
    try:
        status, body = get(gw, f"/v1/generation?id={rid}")
        assert status == 200
        assert body["data"]["routing"]["policy"] == "support-bot"
        assert [a["outcome"] for a in body["data"]["routing"]["attempts"]] == ["failed", "failed", "answered"]
    finally:
        gw.stop()
