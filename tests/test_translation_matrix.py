"""Every inbound API against every vendor wire format, end to end, through the official SDKs.

Three ``interlock simulator --format openai|anthropic|gemini`` processes (time
scale 0) stand in for the vendors; one gateway fronts them with a vendor of
each type (``sim-openai``, ``sim-anthropic``, ``sim-gemini``) and an alias per
vendor. Each case runs for the OpenAI SDK's chat completions, the Anthropic
SDK's messages and the OpenAI SDK's ``responses.create``, streamed and not,
against each vendor format:

* a plain answer - text, usage with non-zero tokens, the caller's "finished" reason;
* a forced tool call - arguments that parse as JSON and satisfy the tool's schema;
* an answer cut by the output limit - the caller's "too long" reason.

Streams are read from the raw events, so what is checked is what crossed the wire.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import jsonschema
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway, start_simulator

pytestmark = pytest.mark.slow

#: Vendor wire format → (vendor id in the gateway, alias served by it).
VENDORS = {"openai": ("sim-openai", "via-openai"), "anthropic": ("sim-anthropic", "via-anthropic"),
           "gemini": ("sim-gemini", "via-gemini")}
FORMATS = list(VENDORS)
APIS = ["chat", "messages", "responses"]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 1}, "unit": {"type": "string", "enum": ["c", "f"]},
                   "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "unit", "days"],
}
TOOL_NAME = "get_forecast"
TOOL_DESCRIPTION = "Weather forecast for a city"
PROMPT = "What will the weather be like in Oslo this week?"
#: Plenty for the simulator's answers (lognormal, p95 ~520 tokens) - they finish on their own.
ROOMY = 4096
#: Fewer tokens than any simulated answer (at least 8 and rarely under 40): cut by the limit.
TIGHT = 16

#: The caller's terms for each outcome, per inbound API (Responses reports a status instead).
FINISH = {
    "chat": {"answer": "stop", "tool": "tool_calls", "limit": "length"},
    "messages": {"answer": "end_turn", "tool": "tool_use", "limit": "max_tokens"},
    "responses": {"answer": "completed", "tool": "completed", "limit": "incomplete:max_output_tokens"},
}




@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    sims: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for fmt in FORMATS:
            sims[fmt] = start_simulator(fmt)
        ports = {fmt: port for fmt, (_, port) in sims.items()}
        # Each vendor gets its own model id; the simulator resolves it in the vendor's namespace.
        config = f"""
vendors:
  sim-openai: {{type: openai, base_url: "http://127.0.0.1:{ports['openai']}/v1", api_key: sk-sim}}
  sim-anthropic: {{type: anthropic, base_url: "http://127.0.0.1:{ports['anthropic']}", api_key: sk-ant-sim}}
  sim-gemini: {{type: gemini, base_url: "http://127.0.0.1:{ports['gemini']}", api_key: AIza-sim}}
aliases:
  via-openai: sim-openai/gpt-4.1-mini
  via-anthropic: sim-anthropic/claude-sonnet-4-5
  via-gemini: sim-gemini/gemini-2.0-flash
simulator:
  enabled: false
"""
        gw = start_gateway(tmp_path_factory.mktemp("matrix"), config, clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY))
        try:
            yield gw
        finally:
            gw.stop()
    finally:
        for proc, _ in sims.values():
            proc.terminate()
            proc.wait(10)


@dataclass
class Outcome:
    """One answer in neutral terms: what the assertions compare across APIs."""

    vendor: str
    text: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments JSON text)
    finish: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


# ----------------------------------------------------------------------------- OpenAI chat completions


def _chat(gw: GatewayProcess, model: str, stream: bool, case: str) -> Outcome:
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                              "max_tokens": TIGHT if case == "limit" else ROOMY}
    if case == "tool":
        kwargs["tools"] = [{"type": "function", "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION,
                                                             "parameters": SCHEMA}}]
        kwargs["tool_choice"] = "required"
    if not stream:
        raw = client.chat.completions.with_raw_response.create(**kwargs)
        done = raw.parse()
        choice = done.choices[0]
        out = Outcome(raw.headers["x-interlock-vendor"], choice.message.content or "",
                      [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or ()
                       if c.type == "function"], choice.finish_reason)
        assert done.usage is not None
        out.input_tokens, out.output_tokens = done.usage.prompt_tokens, done.usage.completion_tokens
        return out
    raw_stream = client.chat.completions.with_raw_response.create(
        **kwargs, stream=True, stream_options={"include_usage": True})
    out = Outcome(raw_stream.headers["x-interlock-vendor"])
    calls: dict[int, list[str]] = {}
    for chunk in raw_stream.parse():
        if chunk.usage is not None:
            out.input_tokens, out.output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
        for choice in chunk.choices:
            out.text += choice.delta.content or ""
            for call in choice.delta.tool_calls or ():
                slot = calls.setdefault(call.index, ["", ""])
                if call.function is not None:
                    slot[0] += call.function.name or ""
                    slot[1] += call.function.arguments or ""
            out.finish = choice.finish_reason or out.finish
    out.calls = [(name, args) for _, (name, args) in sorted(calls.items())]
    return out


# ----------------------------------------------------------------------------- Anthropic messages


def _messages(gw: GatewayProcess, model: str, stream: bool, case: str) -> Outcome:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    kwargs: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                              "max_tokens": TIGHT if case == "limit" else ROOMY}
    if case == "tool":
        kwargs["tools"] = [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": SCHEMA}]
        kwargs["tool_choice"] = {"type": "any"}
    if not stream:
        raw = client.messages.with_raw_response.create(**kwargs)
        message = raw.parse()
        out = Outcome(raw.headers["x-interlock-vendor"], finish=message.stop_reason,
                      input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens)
        for block in message.content:
            if block.type == "text":
                out.text += block.text
            elif block.type == "tool_use":
                out.calls.append((block.name, json.dumps(block.input)))
        return out
    raw_stream = client.messages.with_raw_response.create(**kwargs, stream=True)
    out = Outcome(raw_stream.headers["x-interlock-vendor"])
    blocks: dict[int, list[str]] = {}
    kinds = []
    for event in raw_stream.parse():
        kinds.append(event.type)
        if event.type == "message_start":
            out.input_tokens = event.message.usage.input_tokens
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            blocks[event.index] = [event.content_block.name, ""]
        elif event.type == "content_block_delta":
            if event.delta.type == "text_delta":
                out.text += event.delta.text
            elif event.delta.type == "input_json_delta":
                blocks[event.index][1] += event.delta.partial_json
        elif event.type == "message_delta":
            out.finish = event.delta.stop_reason
            out.output_tokens = event.usage.output_tokens
            if event.usage.input_tokens is not None:  # the final count; message_start's is provisional
                out.input_tokens = event.usage.input_tokens
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    out.calls = [(name, args or "{}") for _, (name, args) in sorted(blocks.items())]
    return out


# ----------------------------------------------------------------------------- OpenAI responses


def _response_outcome(vendor: str, response: Any) -> Outcome:
    finish = response.status
    if response.status == "incomplete" and response.incomplete_details is not None:
        finish = f"incomplete:{response.incomplete_details.reason}"
    out = Outcome(vendor, response.output_text, finish=finish)
    out.calls = [(item.name, item.arguments) for item in response.output if item.type == "function_call"]
    assert response.usage is not None
    out.input_tokens, out.output_tokens = response.usage.input_tokens, response.usage.output_tokens
    return out


def _responses(gw: GatewayProcess, model: str, stream: bool, case: str) -> Outcome:
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    kwargs: dict[str, Any] = {"model": model, "input": PROMPT, "store": False,
                              "max_output_tokens": TIGHT if case == "limit" else ROOMY}
    if case == "tool":
        kwargs["tools"] = [{"type": "function", "name": TOOL_NAME, "description": TOOL_DESCRIPTION,
                            "parameters": SCHEMA, "strict": False}]
        kwargs["tool_choice"] = "required"
    if not stream:
        raw = client.responses.with_raw_response.create(**kwargs)
        return _response_outcome(raw.headers["x-interlock-vendor"], raw.parse())
    raw_stream = client.responses.with_raw_response.create(**kwargs, stream=True)
    events = list(raw_stream.parse())
    final = events[-1]
    assert final.type in ("response.completed", "response.incomplete"), [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    out = _response_outcome(raw_stream.headers["x-interlock-vendor"], final.response)
    # The streamed deltas add up to the final response.
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == out.text
    streamed_args = [e.arguments for e in events if e.type == "response.function_call_arguments.done"]
    assert streamed_args == [args for _, args in out.calls]
    return out


CALLERS: dict[str, Callable[[GatewayProcess, str, bool, str], Outcome]] = {
    "chat": _chat, "messages": _messages, "responses": _responses}


def run(gw: GatewayProcess, api: str, fmt: str, stream: bool, case: str) -> Outcome:
    vendor, alias = VENDORS[fmt]
    out = CALLERS[api](gw, alias, stream, case)
    assert out.vendor == vendor  # served by the vendor of that wire format, not by a fallback
    assert out.input_tokens > 0 and out.output_tokens > 0, out
    return out


matrix = pytest.mark.parametrize(("api", "fmt", "stream"),
                                 [(api, fmt, stream) for api in APIS for fmt in FORMATS for stream in (False, True)],
                                 ids=lambda v: {False: "whole", True: "stream"}.get(v, v) if isinstance(v, bool)
                                 else str(v))


@matrix
def test_plain_answer(gateway: GatewayProcess, api: str, fmt: str, stream: bool) -> None:
    out = run(gateway, api, fmt, stream, "answer")
    assert out.text.strip() and not out.calls
    assert out.finish == FINISH[api]["answer"]


@matrix
def test_tool_call(gateway: GatewayProcess, api: str, fmt: str, stream: bool) -> None:
    out = run(gateway, api, fmt, stream, "tool")
    assert out.calls and out.finish == FINISH[api]["tool"]
    for name, arguments in out.calls:
        assert name == TOOL_NAME
        jsonschema.validate(json.loads(arguments), SCHEMA)


@matrix
def test_output_limit(gateway: GatewayProcess, api: str, fmt: str, stream: bool) -> None:
    out = run(gateway, api, fmt, stream, "limit")
    assert out.text and not out.calls
    assert out.finish == FINISH[api]["limit"]
    assert out.output_tokens <= TIGHT
