"""Structurally mutated request bodies on every inference endpoint, streamed and not: never a 5xx.

Each case starts from a valid, feature-rich body for the endpoint and applies
a few mutations drawn by Hypothesis: a value at any path replaced by a value of
the wrong type (null, booleans, 64-bit edge integers, huge floats, empty and
deeply nested containers, broken schemas), a key deleted, an unknown key added,
a value wrapped in an array, a container emptied; or, at the byte level,
invalid UTF-8 inside a string, or the body truncated. The gateway runs as a
real process with three vendors behind it: the in-process simulator (OpenAI
wire format) and two standalone simulators speaking Anthropic's and Gemini's
formats, so the native adapters' translations see the mutated requests too.

Bounded and reproducible: ``derandomize=True``, no example database, a fixed
number of examples per endpoint and mode. A failure prints the body that caused
it; the gateway's output must hold no internal error either.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway, start_simulator

pytestmark = pytest.mark.slow

EXAMPLES = 200
MODELS = ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5", "google/gemini-2.0-flash"]
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAAB"
       "JRU5ErkJggg==")
SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string", "description": "City name", "enum": ["Lisbon", "Osaka"]},
    "days": {"type": "integer", "minimum": 1, "maximum": 7},
    "units": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}}},
    "required": ["city"], "additionalProperties": False}

CHAT = {
    "model": MODELS[0],
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                     {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Osaka\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "description": "Forecast", "parameters": SCHEMA}}],
    "tool_choice": "auto",
    "temperature": 0.5, "top_p": 0.9, "max_tokens": 64, "stop": ["\n\n"], "seed": 7, "user": "u-1",
    "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": SCHEMA, "strict": True}},
    "metadata": {"k": "v"}, "logit_bias": {"50256": -100}, "n": 1,
}
MESSAGES = {
    "model": MODELS[1], "max_tokens": 64,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": PNG.split(",", 1)[1]}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                                          {"type": "tool_use", "id": "tu_1", "name": "weather",
                                           "input": {"city": "Osaka"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "Sunny"},
                                     {"type": "text", "text": "And tomorrow?"}]},
    ],
    "tools": [{"name": "weather", "description": "Forecast", "input_schema": SCHEMA}],
    "tool_choice": {"type": "auto"}, "temperature": 0.5, "top_k": 5, "stop_sequences": ["END"],
    "metadata": {"user_id": "u-1"}, "thinking": {"type": "disabled"},
}
COUNT = {k: v for k, v in MESSAGES.items() if k != "max_tokens"}
RESPONSES = {
    "model": MODELS[0], "instructions": "Be brief.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"},
                                     {"type": "input_image", "image_url": PNG, "detail": "low"}]},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Osaka\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "tools": [{"type": "function", "name": "weather", "description": "Forecast", "parameters": SCHEMA}],
    "tool_choice": "auto", "text": {"format": {"type": "json_schema", "name": "out", "schema": SCHEMA}},
    "temperature": 0.5, "max_output_tokens": 64, "metadata": {"k": "v"}, "store": False,
}
EMBEDDINGS = {"model": "openai/text-embedding-3-small", "input": ["hello", "world"], "encoding_format": "float",
              "dimensions": 8, "user": "u-1"}

#: (id, path, seed body, whether the endpoint streams)
ENDPOINTS = [
    ("chat", "/v1/chat/completions", CHAT, True),
    ("messages", "/v1/messages", MESSAGES, True),
    ("responses", "/v1/responses", RESPONSES, True),
    ("count_tokens", "/v1/messages/count_tokens", COUNT, False),
    ("explain", "/v1/route/explain", CHAT, False),
    ("embeddings", "/v1/embeddings", EMBEDDINGS, False),
]
CASES = [pytest.param(path, seed, stream, id=f"{name}-{'stream' if stream else 'whole'}")
         for name, path, seed, streams in ENDPOINTS for stream in ((False, True) if streams else (False,))]


def _nested(depth: int) -> Any:
    value: Any = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


#: Values of the wrong type or size for almost any field. Containers are built fresh for every draw: a
#: mutation must never change what a later draw returns.
_CONSTANTS: list[Any] = [
    None, True, False, 0, -1, 1, 2**63 - 1, -(2**63), 2**64 - 1, 1e308, -1e308, 5e-324, 0.5, "", " ", "x", "\u0000",
    "\U0010ffff", "é" * 300, [], {}, [None], [[]], {"": None}, {"type": None}, {"type": "object", "properties": 1},
    {"enum": 1}, {"properties": {"a": 1}}, {"type": "function"}, {"type": "text"}, {"type": "image_url", "image_url": 1},
    {"role": "user"}, {"role": "tool", "content": []}, ["a", 1, None], MODELS[1], MODELS[2],
    "data:image/png;base64,!!!", "data:,x", "auto", "none", "required", "json_schema"]
WEIRD = st.one_of(
    st.sampled_from(range(len(_CONSTANTS))).map(lambda i: orjson.loads(orjson.dumps(_CONSTANTS[i]))),
    st.sampled_from([60, 240, 400]).map(_nested),
    st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False,
                 allow_infinity=False) | st.text(max_size=6),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                 max_leaves=8),
)
OPS = ("replace", "replace", "same-type", "same-type", "same-type", "delete", "unknown", "wrap", "empty")
#: Values of each JSON type at its edges, for mutations that keep a field's type (and so pass type checks).
SAME_TYPE: dict[type, st.SearchStrategy[Any]] = {
    str: st.sampled_from(["", " ", "\u0000", "\U0001f600" * 3, "x" * 5000, "null", "{}", "data:", "#/$defs/x",
                          "a\r\nb", "\u202e", "-1", "auto", "none", "function", "text", "user"]) | st.text(max_size=12),
    int: st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1]),
    float: st.sampled_from([0.0, -0.0, 1e-308, 5e-324, 1e308, -1e308, 2.0000001, -2.5]),
    bool: st.booleans(),
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _paths(sub, (*prefix, i))


def _get(body: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        body = body[key]
    return body


def _mutate(body: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    if not path:
        return value if op == "replace" else body
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if op == "replace":
        parent[key] = value
    elif op == "delete":
        del parent[key]
    elif op == "unknown":
        target = parent[key]
        if isinstance(target, dict):
            target["x_unknown_field"] = value
        elif isinstance(target, list):
            target.append(value)
        else:
            parent[key] = value
    elif op == "wrap":
        parent[key] = [parent[key]]
    elif op == "same-type":
        parent[key] = value
    elif op == "empty":
        parent[key] = type(parent[key])() if isinstance(parent[key], dict | list | str) else None
    return body


@st.composite
def mutated(draw: st.DrawFn, seed: dict[str, Any], stream: bool) -> bytes:
    body: Any = orjson.loads(orjson.dumps(seed))
    if stream:
        body["stream"] = True
    if draw(st.booleans()):
        body["model"] = draw(st.sampled_from(MODELS)) if body["model"] != EMBEDDINGS["model"] else body["model"]
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(body))
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(OPS))
        if op == "same-type":
            current = _get(body, path)
            if isinstance(current, dict | list):
                op, value = "unknown", draw(WEIRD)
            else:
                value = draw(SAME_TYPE.get(type(current), WEIRD))
        else:
            value = draw(WEIRD)
        body = _mutate(body, path, op, value)
    raw = orjson.dumps(body) if _writable(body) else json.dumps(body).encode()
    kind = draw(st.sampled_from(["json"] * 10 + ["bad-utf8", "truncated"]))
    if kind == "bad-utf8":
        quotes = [i for i, b in enumerate(raw) if b == 0x22]
        at = draw(st.sampled_from(quotes)) + 1 if quotes else 0
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])) + raw[at:]
    elif kind == "truncated":
        raw = raw[:draw(st.integers(0, max(0, len(raw) - 1)))]
    return raw


def _writable(body: Any) -> bool:
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        return False
    return True


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    anthropic, a_port = start_simulator("anthropic")
    gemini, g_port = start_simulator("gemini")
    config = f"""
vendors:
  anthropic: {{base_url: "http://127.0.0.1:{a_port}", api_key: sk-ant-x}}
  google: {{base_url: "http://127.0.0.1:{g_port}", api_key: AIza-x}}
simulator:
  enabled: true
  time_scale: 0
"""
    gw = start_gateway(tmp_path_factory.mktemp("fuzz"), config, clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY))
    try:
        yield gw
    finally:
        gw.stop()
        for proc in (anthropic, gemini):
            proc.terminate()
            proc.wait(10)


class Client:
    """One keep-alive connection, reopened after the gateway closes it (it does after a framing error)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request("POST", path, body=body, headers={
                    "Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"})
                resp = self.conn.getresponse()
                data = resp.read()
            except (TimeoutError, http.client.HTTPException, ConnectionError):
                self.close()
                if attempt:
                    raise
                continue
            if resp.getheader("connection", "").lower() == "close":
                self.close()
            return resp.status, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@pytest.mark.parametrize(("path", "seed", "stream"), CASES)
def test_mutated_bodies_never_get_a_5xx(fuzz_gateway: GatewayProcess, path: str, seed: dict[str, Any],
                                        stream: bool) -> None:
    client = Client(fuzz_gateway.port)
    status, data = client.post(path, orjson.dumps({**seed, "stream": True} if stream else seed))
    assert status == 200, data  # the seed itself is valid

    @given(body=mutated(seed, stream))
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def run(body: bytes) -> None:
        status, data = client.post(path, body)
        assert status < 500, (status, data[:500], body[:2000])

    try:
        run()
    finally:
        client.close()
    assert "internal error" not in fuzz_gateway.output()
