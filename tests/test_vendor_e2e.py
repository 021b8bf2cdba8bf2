"""End to end: the official OpenAI SDK → gateway process → native adapters → the simulator speaking Anthropic/Gemini."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway, start_simulator

pytestmark = pytest.mark.slow

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}




@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    anthropic, a_port = start_simulator("anthropic")
    gemini, g_port = start_simulator("gemini")
    # The gateway sends each vendor its own model id (claude-sonnet-4-5); the simulator resolves it.
    config = f"""
vendors:
  anthropic: {{base_url: "http://127.0.0.1:{a_port}", api_key: sk-ant-x}}
  google: {{base_url: "http://127.0.0.1:{g_port}", api_key: AIza-x}}
aliases:
  claude: anthropic/claude-sonnet-4-5
  gem: google/gemini-2.0-flash
simulator:
  enabled: false
"""
    gw = start_gateway(tmp_path_factory.mktemp("native"), config, clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY))
    try:
        yield gw
    finally:
        gw.stop()
        for proc in (anthropic, gemini):
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", ["claude", "gem"])
def test_plain_completion(client: openai.OpenAI, model: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_tokens=50, seed=3 if model == "claude" else None)
    out = raw.parse()
    assert out.choices[0].message.content and out.choices[0].finish_reason in ("stop", "length")
    assert out.usage is not None and out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
    assert raw.headers["x-interlock-vendor"] == ("anthropic" if model == "claude" else "google")
    if model == "claude":
        assert raw.headers["x-interlock-dropped-params"] == "seed"


@pytest.mark.parametrize("model", ["claude", "gem"])
def test_streamed_tool_call(client: openai.OpenAI, model: str) -> None:
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Weather in Oslo?"}],
                                            tools=[WEATHER], tool_choice="required", stream=True,
                                            stream_options={"include_usage": True}, max_tokens=200)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                slot = calls.setdefault(call.index, {"name": "", "arguments": ""})
                if call.function and call.function.name:
                    slot["name"] = call.function.name
                if call.function and call.function.arguments:
                    slot["arguments"] += call.function.arguments
            finish = choice.finish_reason or finish
    assert finish == "tool_calls" and calls
    assert calls[0]["name"] == "get_weather" and "city" in orjson.loads(calls[0]["arguments"])
    assert usage is not None and usage.prompt_tokens > 0


@pytest.mark.parametrize("model", ["claude", "gem"])
def test_structured_output(client: openai.OpenAI, model: str) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
              "required": ["city", "days"], "additionalProperties": False}
    out = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Plan a trip"}],
                                         response_format={"type": "json_schema",
                                                          "json_schema": {"name": "trip", "schema": schema}},
                                         max_tokens=300)
    data = orjson.loads(out.choices[0].message.content or "")
    assert set(data) == {"city", "days"} and out.choices[0].finish_reason == "stop"


def test_vendor_errors_keep_their_meaning(client: openai.OpenAI, tmp_path: Path) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="anthropic/claude-does-not-exist",
                                       messages=[{"role": "user", "content": "x"}])
