"""``POST /v1/embeddings`` end to end: the official OpenAI SDK → a gateway process → a mock vendor / the simulator.

The mock is an OpenAI-compatible embeddings server on a real socket; what it
does is chosen by the model id the gateway forwards (``embed-ok``,
``embed-503``, ``embed-400``, ``embed-nousage``). Each vector it returns is
``[index, length of the input text]``, so order and content are checkable.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from aiohttp import web

from interlock.catalog.tokens import get_encoding
from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.mock_vendors.server import Received, Reply, ScriptedVendor
from tests.socket_app import SocketApp
from tests.test_ledger_gateway import call, wait_logged

pytestmark = pytest.mark.slow

SMALL = "openai/text-embedding-3-small"


class EmbeddingsVendor(SocketApp):
    """OpenAI's ``/v1/embeddings`` wire format, scripted by model id; records every body it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/embeddings", self.embeddings)

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        model = body["model"]
        if model == "embed-503":
            return web.json_response({"error": {"message": "overloaded", "type": "server_error"}}, status=503)
        if model == "embed-400":
            return web.json_response({"error": {"message": "This model does not support specifying dimensions.",
                                                "type": "invalid_request_error", "param": "dimensions"}},
                                     status=400)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if inputs and isinstance(inputs[0], int):
            inputs = [inputs]
        data = []
        for i, item in enumerate(inputs):
            vector = [float(i), float(len(item))]
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack("<2f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        answer: dict[str, Any] = {"object": "list", "data": data, "model": model}
        if model != "embed-nousage":
            tokens = sum(len(str(item).split()) for item in inputs)
            answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response(answer)


@pytest.fixture(scope="module")
def vendor() -> Iterator[EmbeddingsVendor]:
    server = EmbeddingsVendor().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def google() -> Iterator[ScriptedVendor]:
    server = ScriptedVendor().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(vendor: EmbeddingsVendor, google: ScriptedVendor,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    base = f"http://127.0.0.1:{vendor.port}/v1"
    config = f"""
server:
  max_body_bytes: 100000
vendors:
  embedco:
    type: openai
    base_url: {base}
    api_key: sk-embed
  flaky:
    type: openai
    base_url: {base}
    api_key: sk-flaky
  anthropic:
    base_url: {base}
    api_key: sk-ant
  google:
    base_url: {google.url}
    api_key: AIza-test
catalog:
  models:
    mocklab/embedder:
      name: Mock embedder
      context_window: 8192
      routes:
        flaky: {{vendor_model_id: embed-503, price: {{input: 0.5, output: 0}}}}
        embedco: {{vendor_model_id: embed-ok, price: {{input: 2.0, output: 0}}}}
simulator:
  enabled: true
  time_scale: 0
  allow_fault_headers: true
logging:
  level: full
  flush_interval: 0.1
"""
    gw = start_gateway(tmp_path_factory.mktemp("embeddings"), config)
    yield gw
    gw.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)


def test_mock_vendor_float_and_base64(client: openai.OpenAI, vendor: EmbeddingsVendor) -> None:
    raw = client.embeddings.with_raw_response.create(model="embedco/embed-ok", input=["one two", "three"],
                                                     encoding_format="float", user="alice")
    out = raw.parse()
    assert [d.embedding for d in out.data] == [[0.0, 7.0], [1.0, 5.0]]
    assert out.usage.prompt_tokens == 3 and out.model == "embed-ok"
    assert vendor.bodies[-1] == {"model": "embed-ok", "input": ["one two", "three"], "encoding_format": "float",
                                 "user": "alice"}
    assert raw.headers["x-interlock-vendor"] == "embedco" and raw.headers["x-interlock-request-id"].startswith("req_")
    # embedco's embed-ok is a catalog route (mocklab/embedder at $2/M): priced at that route.
    assert raw.headers["x-interlock-model"] == "mocklab/embedder" and raw.headers["x-interlock-cost-usd"] == "0.000006"
    # The SDK's default is base64: the vendor's bytes come back and decode to the same floats.
    decoded = client.embeddings.create(model="embedco/embed-ok", input=["one two", "three"])
    assert vendor.bodies[-1]["encoding_format"] == "base64"
    assert [d.embedding for d in decoded.data] == [[0.0, 7.0], [1.0, 5.0]]


def test_failover_cost_and_one_ledger_record(client: openai.OpenAI, gateway: GatewayProcess,
                                             vendor: EmbeddingsVendor) -> None:
    before = len(vendor.bodies)
    raw = client.embeddings.with_raw_response.create(model="mocklab/embedder", input="alpha beta gamma",
                                                     encoding_format="float")
    out = raw.parse()
    models = [b["model"] for b in vendor.bodies[before:]]
    assert models[-1] == "embed-ok" and "embed-503" in models  # the cheaper route failed, the next one answered
    assert raw.headers["x-interlock-vendor"] == "embedco" and raw.headers["x-interlock-model"] == "mocklab/embedder"
    # 3 tokens at $2 per million, the route that answered.
    assert raw.headers["x-interlock-cost-usd"] == "0.000006"
    assert out.usage.prompt_tokens == 3 and out.model_extra is not None
    assert out.usage.model_extra == {"cost": 6e-06}
    record = wait_logged(gateway, raw.headers["x-interlock-request-id"])
    assert record["inbound"] == "openai.embeddings" and record["status"] == 200
    assert record["vendor"] == "embedco" and record["input_tokens"] == 3 and record["output_tokens"] == 0
    assert record["response_content"] == {"embeddings": 1, "dimensions": 2}
    assert [a["outcome"] for a in record["attempts"]][-1] == "answered" and len(record["attempts"]) >= 2


def test_simulator_serves_catalog_embedding_models_offline(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model=SMALL, input=["hello world", "hello world", "bye"],
                                                     dimensions=256)
    out = raw.parse()
    vectors = [d.embedding for d in out.data]
    assert raw.headers["x-interlock-vendor"] == "simulator" and len(vectors[0]) == 256
    assert vectors[0] == vectors[1] != vectors[2]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4
    assert out.usage.prompt_tokens == 5  # "hello world" is 2 tokens (twice), "bye" 1
    assert float(raw.headers["x-interlock-cost-usd"]) == pytest.approx(5 * 0.02e-6)
    tokens = client.embeddings.create(model=SMALL, input=[[9906, 1917], [3432]], encoding_format="float")
    assert tokens.usage.prompt_tokens == 3 and len(tokens.data) == 2


def test_gateway_counts_when_the_vendor_reports_no_usage(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model="embedco/embed-nousage", input="count me please")
    assert raw.parse().usage.prompt_tokens == 3
    assert "x-interlock-cost-usd" not in raw.headers  # unpriced passthrough: counted, not priced


def test_gemini_native_with_token_ids_and_an_estimated_cost(client: openai.OpenAI, google: ScriptedVendor) -> None:
    def answer(req: Received) -> Reply:
        texts = [item["content"]["parts"][0]["text"] for item in req.json()["requests"]]
        return Reply(200, json.dumps({"embeddings": [{"values": [float(len(t)), 0.5]} for t in texts]}).encode())

    google.handle_with(answer)
    ids = get_encoding("cl100k_base").encode("vector search")
    hi = get_encoding("cl100k_base").encode("hi")
    raw = client.embeddings.with_raw_response.create(model="google/gemini-embedding-001", input=[ids, hi],
                                                     dimensions=2, extra_body={"task_type": "retrieval_query"})
    out = raw.parse()
    sent = google.last.json()["requests"]
    assert google.last.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in sent] == ["vector search", "hi"]
    assert sent[0]["taskType"] == "RETRIEVAL_QUERY" and sent[0]["outputDimensionality"] == 2
    assert [d.embedding for d in out.data] == [[13.0, 0.5], [2.0, 0.5]]
    # Gemini reports no tokens: the gateway counts them (the ids sent) and says the cost is an estimate.
    assert raw.headers["x-interlock-vendor"] == "google" and raw.headers["x-interlock-cost-estimated"] == "true"
    assert out.usage.prompt_tokens == len(ids) + len(hi) and float(raw.headers["x-interlock-cost-usd"]) > 0


def test_a_vendor_rate_limit_reaches_the_caller(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model=SMALL, input="x",
                                 extra_headers={"x-interlock-simulator-fault": "error=429;retry_after=30"})


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": SMALL, "input": ""}, 400, "input"),
    ({"model": SMALL, "input": []}, 400, "input"),
    ({"model": SMALL, "input": 5}, 400, "input"),
    ({"model": SMALL, "input": ["a", None]}, 400, "input[1]"),
    ({"model": SMALL, "input": ["x"] * 2049}, 400, "input"),
    ({"model": SMALL}, 400, "input"),
    ({"input": "x"}, 400, "model"),
    ({"model": SMALL, "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"model": SMALL, "input": "x", "dimensions": "8"}, 400, "dimensions"),
    ({"model": SMALL, "input": "x", "user": 7}, 400, "user"),
    ({"model": "openai/gpt-4.1-mini", "input": "x"}, 400, "model"),
    ({"model": "anthropic/claude-embed-nothing", "input": "x"}, 400, "model"),
    ({"model": "embedco/embed-400", "input": "x", "dimensions": 8}, 400, "dimensions"),
    ({"model": "nolab/no-model", "input": "x"}, 404, "model"),
])
def test_errors_name_the_parameter(gateway: GatewayProcess, body: dict[str, Any], status: int, param: str) -> None:
    got, headers, raw = call(gateway, "/v1/embeddings", body)
    error = json.loads(raw)["error"]
    assert got == status and error["param"] == param, error
    assert headers["x-interlock-request-id"].startswith("req_")


def test_auth_and_body_limit(gateway: GatewayProcess) -> None:
    status, _, raw = call(gateway, "/v1/embeddings", {"model": SMALL, "input": "x"}, key="ik-wrong")
    assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
    status, _, raw = call(gateway, "/v1/embeddings", {"model": SMALL, "input": ["word " * 50] * 1000})
    assert status == 413 and json.loads(raw)["error"]["code"] == "request_too_large"
    status, _, _ = call(gateway, "/v1/embeddings")
    assert status == 405
