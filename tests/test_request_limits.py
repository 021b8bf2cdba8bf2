"""max_tokens above a route's max output, and logprobs per vendor (issue 14), through a real gateway.

Found: ``max_tokens`` above the model's max output answered 200; ``logprobs`` / ``top_logprobs`` came back
``null`` silently from vendors that return none.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest

from interlock.vendors.gemini.chat import GeminiStream, decode_response, encode_request
from interlock.vendors.translate_common import Drops
from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.mock_openai import MockVendor
from tests.mock_vendors.canonical import collect
from tests.mock_vendors.memory import MemoryResponse

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gw(module_mock: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    config = f"""
vendors:
  mock: {{type: openai, base_url: {module_mock.base_url}, api_key: sk-mock}}
  groq: {{base_url: {module_mock.base_url}, api_key: gsk-mock}}
catalog:
  models:
    mocklab/small:
      name: Small output
      context_window: 32768
      max_output: 1000
      capabilities: [streaming]
      routes:
        mock: {{vendor_model_id: small, price: {{input: 1.0, output: 2.0}}}}
    mocklab/big:
      name: Big output
      context_window: 32768
      max_output: 8000
      capabilities: [streaming]
      routes:
        mock: {{vendor_model_id: big, price: {{input: 1.0, output: 2.0}}}}
policies:
  both: {{targets: [mocklab/small, mocklab/big]}}
  groq-first: {{targets: [groq/lp, mock/lp]}}
  groq-only: {{targets: [groq/lp]}}
simulator: {{enabled: true, time_scale: 0}}
"""
    gw = start_gateway(tmp_path_factory.mktemp("limits"), config)
    yield gw
    gw.stop()


@pytest.fixture
def client(gw: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0)


def explain(gw: GatewayProcess, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(gw.url + "/v1/route/explain", data=json.dumps(body).encode(), method="POST",
                                 headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read()))


def test_a_target_whose_max_output_is_too_small_is_filtered(client: openai.OpenAI, gw: GatewayProcess) -> None:
    raw = client.chat.completions.with_raw_response.create(model="both", max_tokens=5000, messages=HI)
    assert raw.headers["x-interlock-route"] == "mock/big"
    assert "mock/small skipped: max output 1,000 < 5,000 tokens requested" in raw.headers["x-interlock-route-reason"]
    cands = {c["target"]: c for c in explain(gw, {"model": "both", "max_tokens": 5000, "messages": HI})["candidates"]}
    assert cands["mock/small"]["filtered"] == "max output 1,000 < 5,000 tokens requested"
    assert cands["mock/big"]["eligible"]
    # Within both limits, the first target answers.
    raw = client.chat.completions.with_raw_response.create(model="both", max_tokens=500, messages=HI)
    assert raw.headers["x-interlock-route"] == "mock/small"


def test_no_target_allows_that_many_is_a_400_naming_the_param_and_limit(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="both", max_completion_tokens=9000, messages=HI)
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "max_completion_tokens" and "at most 8000" in body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mocklab/small", max_tokens=1001, messages=HI)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "max_tokens"


def test_logprobs_pass_through_to_a_vendor_that_returns_them(client: openai.OpenAI, module_mock: MockVendor) -> None:
    raw = client.chat.completions.with_raw_response.create(model="mock/ok", logprobs=True, top_logprobs=2,
                                                           messages=HI)
    assert "x-interlock-dropped-params" not in raw.headers
    sent = module_mock.requests[-1]["body"]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2


def test_logprobs_to_a_vendor_without_them_are_dropped_and_named(client: openai.OpenAI, module_mock: MockVendor) -> None:
    # Groq (here served by the mock) refuses logprobs: they are not sent, and the header says so.
    raw = client.chat.completions.with_raw_response.create(model="groq/lp", logprobs=True, top_logprobs=2,
                                                           messages=HI)
    assert raw.headers["x-interlock-dropped-params"] == "logprobs,top_logprobs"
    assert "logprobs" not in module_mock.requests[-1]["body"] and "top_logprobs" not in module_mock.requests[-1]["body"]
    # The simulator generates none for labs whose API returns none: named too (found: null, silently).
    claude = "anthropic/claude-sonnet-4-5"
    raw = client.chat.completions.with_raw_response.create(model=claude, logprobs=True, messages=HI)
    assert raw.headers["x-interlock-dropped-params"] == "logprobs"
    with client.chat.completions.with_streaming_response.create(model=claude, logprobs=True,
                                                                 stream=True, messages=HI) as stream:
        assert stream.headers["x-interlock-dropped-params"] == "logprobs"


def test_simulator_returns_logprobs_for_openai_models(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="openai/gpt-4.1-mini", logprobs=True,
                                                           top_logprobs=3, max_tokens=30, messages=HI)
    assert "x-interlock-dropped-params" not in raw.headers
    choice = raw.parse().choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    assert all(len(t.top_logprobs) == 3 and t.logprob <= 0 for t in choice.logprobs.content)
    assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    streamed = []
    for chunk in client.chat.completions.create(model="openai/gpt-4.1-mini", logprobs=True, top_logprobs=3,
                                                max_tokens=30, messages=HI, stream=True):
        for c in chunk.choices:
            if c.logprobs is not None and c.logprobs.content:
                streamed += c.logprobs.content
    assert streamed and all(len(t.top_logprobs) == 3 for t in streamed)


def test_require_parameters_prefers_a_logprob_capable_target(client: openai.OpenAI, module_mock: MockVendor) -> None:
    raw = client.chat.completions.with_raw_response.create(model="groq-first", logprobs=True, messages=HI)
    assert raw.headers["x-interlock-route"] == "groq/lp"  # without require_parameters: first target, dropped
    raw = client.chat.completions.with_raw_response.create(
        model="groq-first", logprobs=True, messages=HI, extra_body={"provider": {"require_parameters": True}})
    assert raw.headers["x-interlock-route"] == "mock/lp"
    assert "groq/lp skipped: does not support logprobs" in raw.headers["x-interlock-route-reason"]
    assert module_mock.requests[-1]["body"]["logprobs"] is True
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="groq-only", logprobs=True, messages=HI,
                                       extra_body={"provider": {"require_parameters": True}})
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "logprobs"
    assert info.value.body["code"] == "unsupported_parameter"


_GEMINI_LOGPROBS = {
    "chosenCandidates": [{"token": "Hi", "logProbability": -0.25}, {"token": "!", "logProbability": -1.5}],
    "topCandidates": [{"candidates": [{"token": "Hi", "logProbability": -0.25},
                                      {"token": "Hello", "logProbability": -2.0}]},
                      {"candidates": [{"token": "!", "logProbability": -1.5}]}],
}


def test_gemini_maps_logprobs_result_to_openai_logprobs() -> None:
    drops = Drops({"model": "m", "logprobs": True, "top_logprobs": 2, "messages": HI}, "Gemini")
    body = encode_request({"model": "m", "logprobs": True, "top_logprobs": 2, "messages": HI}, drops)
    assert body["generationConfig"]["responseLogprobs"] is True and body["generationConfig"]["logprobs"] == 2
    response = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi!"}]}, "finishReason": "STOP",
                                "logprobsResult": _GEMINI_LOGPROBS}]}
    logprobs = decode_response(response)["choices"][0]["logprobs"]
    assert logprobs["content"][0] == {"token": "Hi", "logprob": -0.25, "bytes": [72, 105], "top_logprobs": [
        {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]}, {"token": "Hello", "logprob": -2.0,
                                                                 "bytes": list(b"Hello")}]}
    assert [c["token"] for c in logprobs["content"]] == ["Hi", "!"]


async def test_gemini_stream_carries_logprobs() -> None:
    event = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi!"}]}, "finishReason": "STOP",
                             "logprobsResult": _GEMINI_LOGPROBS}]}
    payloads = await collect(GeminiStream(MemoryResponse([b"data: " + orjson.dumps(event) + b"\r\n\r\n"]), (),
                                          "Gemini"))
    chunks = [orjson.loads(p) for p in payloads]
    with_logprobs = [c["choices"][0]["logprobs"] for c in chunks if c["choices"] and c["choices"][0]["logprobs"]]
    assert with_logprobs and with_logprobs[0]["content"][1]["token"] == "!"


@pytest.mark.parametrize(("vendor", "model", "returns"), [
    ("openai", "gpt-4.1-mini", True), ("azure", "gpt-4.1-mini", True), ("deepseek", "deepseek-chat", True),
    ("groq", "llama-3.3-70b-versatile", False), ("mistral", "mistral-small-latest", False),
    ("perplexity", "sonar", False), ("simulator", "openai/gpt-4.1-mini", True),
    ("simulator", "anthropic/claude-sonnet-4-5", False),
    ("google", "gemini-2.5-flash", True), ("vertex", "gemini-2.5-flash", True), ("vertex", "claude-haiku-4-5", False),
    ("anthropic", "claude-haiku-4-5", False), ("bedrock", "anthropic.claude-haiku-4-5", False),
    ("cohere", "command-a-03-2025", False),
])
def test_which_vendors_return_logprobs(vendor: str, model: str, returns: bool) -> None:
    from interlock.vendors.registry import VENDOR_TABLE, returns_logprobs

    assert returns_logprobs(VENDOR_TABLE.specs[vendor], model) is returns
