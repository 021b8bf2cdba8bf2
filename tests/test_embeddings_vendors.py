"""Embeddings adapters per wire format, over a real socket: the bodies sent, the answers decoded, the errors mapped.

Golden bodies follow the vendors' documented shapes: OpenAI ``/v1/embeddings``,
Gemini ``batchEmbedContents``, Cohere ``/v2/embed``, Bedrock InvokeModel for
Titan Text Embeddings v2 and Cohere Embed.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from typing import Any

import orjson
import pytest

from interlock.catalog.tokens import get_encoding
from interlock.config import VendorConfig
from interlock.core.errors import InvalidRequest, RateLimited, UpstreamError, UpstreamRejected
from interlock.core.vendor import EmbeddingAdapter
from interlock.vendors.bedrock.embeddings import BedrockEmbedder
from interlock.vendors.cohere.embeddings import CohereEmbedder
from interlock.vendors.embeddings_common import (
    base64_vector,
    bounded_gather,
    float_vector,
    input_problem,
    texts_of,
)
from interlock.vendors.gemini.embeddings import GeminiEmbedder
from interlock.vendors.openai_compat.embeddings import OpenAICompatEmbedder
from interlock.vendors.openai_compat.settings import OpenAICompatSettings
from interlock.vendors.registry import BY_TYPE
from interlock.vendors.transport import HttpTransport
from tests.mock_vendors.canonical import vendor_config
from tests.mock_vendors.server import Received, Reply, ScriptedVendor
from tests.test_vendor_bedrock import ENV as AWS_ENV
from tests.test_vendor_bedrock import verified


def _embedder(config: VendorConfig, transport: HttpTransport) -> EmbeddingAdapter | None:
    """What the registry attaches to this vendor's runtime: its package's embedder, if it declares one."""
    factory = BY_TYPE[config.spec.type].embedder
    return factory(config, transport) if factory is not None else None

TITAN = "amazon.titan-embed-text-v2:0"


def request(inputs: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "input": inputs, **extra}


# ----------------------------------------------------------------------------- shared helpers


@pytest.mark.parametrize(("value", "param"), [
    (None, "input"), ("", "input"), ([], "input"), (3, "input"), ({"text": "x"}, "input"),
    (["a", ""], "input[1]"), (["a", 1], "input[1]"), ([1, -2], "input[1]"), ([1, True], "input[1]"),
    ([[1, 2], []], "input[1]"), ([[1, 2], [3, "x"]], "input[1][1]"), ([2.5], "input[0]"),
    (["x"] * 2049, "input"),
])
def test_input_problems_name_the_parameter(value: Any, param: str) -> None:
    problem = input_problem(value)
    assert problem is not None and problem[0] == param


@pytest.mark.parametrize("value", ["x", ["a", "b"], [1, 2, 3], [[1], [2, 3]], ["x"] * 2048])
def test_valid_inputs(value: Any) -> None:
    assert input_problem(value) is None


def test_token_ids_are_decoded_for_text_only_vendors() -> None:
    enc = get_encoding("cl100k_base")
    assert texts_of(request([enc.encode("hello world"), enc.encode("second")])) == ["hello world", "second"]
    assert texts_of(request(enc.encode("one array"))) == ["one array"]
    with pytest.raises(InvalidRequest) as info:
        texts_of(request([10**9]))
    assert info.value.param == "input"


def test_base64_round_trip_is_float32_little_endian() -> None:
    encoded = base64_vector([0.5, -1.0, 0.25])
    assert base64.b64decode(encoded) == struct.pack("<3f", 0.5, -1.0, 0.25)
    assert float_vector(encoded) == [0.5, -1.0, 0.25]
    with pytest.raises(UpstreamError):
        float_vector("!!not base64!!")


async def test_bounded_gather_keeps_order_limits_and_cancels_on_failure() -> None:
    running = peak = 0
    cancelled: list[int] = []

    never = asyncio.Event()

    def job(i: int, fail: bool = False, block: bool = False) -> Any:
        async def run() -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                for _ in range(3):
                    await asyncio.sleep(0)
                if fail:
                    raise RateLimited("slow down")
                if block:
                    await never.wait()
                return i
            except asyncio.CancelledError:
                cancelled.append(i)
                raise
            finally:
                running -= 1
        return run

    assert await bounded_gather([job(i) for i in range(7)], 2) == list(range(7))
    assert peak == 2
    with pytest.raises(RateLimited):
        await bounded_gather([job(0, fail=True), *(job(i, block=True) for i in range(1, 6))], 6)
    assert sorted(cancelled) == [1, 2, 3, 4, 5] and running == 0


def test_registry_attaches_embedders_per_vendor_type() -> None:
    http = HttpTransport()
    assert isinstance(_embedder(vendor_config("openai", "http://x/v1", {"OPENAI_API_KEY": "k"}), http),
                      OpenAICompatEmbedder)
    assert isinstance(_embedder(vendor_config("google", "http://x", {"GEMINI_API_KEY": "k"}), http),
                      GeminiEmbedder)
    assert isinstance(_embedder(vendor_config("cohere", "http://x", {"COHERE_API_KEY": "k"}), http),
                      CohereEmbedder)
    assert _embedder(vendor_config("anthropic", "http://x", {"ANTHROPIC_API_KEY": "k"}), http) is None


# ----------------------------------------------------------------------------- OpenAI-compatible


async def test_openai_compatible_passes_the_body_and_keeps_base64(vendor: ScriptedVendor, http: HttpTransport) -> None:
    b64 = base64_vector([0.1, 0.2])
    vendor.reply(200, {"object": "list", "model": "text-embedding-3-small",
                       "data": [{"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
                                {"object": "embedding", "index": 0, "embedding": b64}],
                       "usage": {"prompt_tokens": 7, "total_tokens": 7}})
    embedder = OpenAICompatEmbedder(vendor_config("openai", vendor.url + "/v1", {"OPENAI_API_KEY": "sk-up"}), http)
    out = await embedder.embed(request(["a", "b"], encoding_format="base64", dimensions=2, user="u1"),
                               "text-embedding-3-small")
    sent = vendor.last
    assert sent.path == "/v1/embeddings" and sent.headers["authorization"] == "Bearer sk-up"
    assert sent.json() == {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64",
                           "dimensions": 2, "user": "u1"}
    assert out.vectors == [b64, [0.3, 0.4]] and out.input_tokens == 7 and out.model == "text-embedding-3-small"


async def test_azure_deployment_url(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, {"data": [{"index": 0, "embedding": [1.0]}]})
    config = vendor_config("azure", vendor.url, {"AZURE_OPENAI_API_KEY": "az", "AZURE_OPENAI_ENDPOINT": vendor.url},
                           settings=OpenAICompatSettings("2024-10-21", {"text-embedding-3-small": "emb-prod"}))
    out = await OpenAICompatEmbedder(config, http).embed(request("a"), "text-embedding-3-small")
    assert vendor.last.path == "/openai/deployments/emb-prod/embeddings"
    assert vendor.last.query == "api-version=2024-10-21" and vendor.last.headers["api-key"] == "az"
    assert out.vectors == [[1.0]] and out.input_tokens is None


@pytest.mark.parametrize(("reply", "error"), [
    (Reply(429, b'{"error":{"message":"slow","type":"requests"}}', headers={"retry-after": "3"}), RateLimited),
    (Reply(400, b'{"error":{"message":"bad dims","param":"dimensions"}}'), UpstreamRejected),
    (Reply(200, b'{"data":[{"index":0,"embedding":[1.0]}]}'), UpstreamError),  # one vector for two inputs
    (Reply(200, b'{"object":"list"}'), UpstreamError),
])
async def test_openai_compatible_errors(vendor: ScriptedVendor, http: HttpTransport, reply: Reply,
                                        error: type[Exception]) -> None:
    vendor.replies.append(reply)
    embedder = OpenAICompatEmbedder(vendor_config("openai", vendor.url + "/v1", {"OPENAI_API_KEY": "k"}), http)
    with pytest.raises(error):
        await embedder.embed(request(["a", "b"]), "m")


# ----------------------------------------------------------------------------- Gemini


def gemini(vendor: ScriptedVendor, http: HttpTransport) -> GeminiEmbedder:
    return GeminiEmbedder(vendor_config("google", vendor.url, {"GEMINI_API_KEY": "AIza-test"}), http)


async def test_gemini_batch_body_task_type_and_dimensions(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, {"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]})
    out = await gemini(vendor, http).embed(request(["What is life?", "How does AI work?"], dimensions=2,
                                                   task_type="retrieval_document", title="Doc"),
                                           "gemini-embedding-001")
    sent = vendor.last
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "AIza-test"
    assert sent.json() == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is life?"}]},
         "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc", "outputDimensionality": 2},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "How does AI work?"}]},
         "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc", "outputDimensionality": 2}]}
    assert out.vectors == [[0.1, 0.2], [0.3, 0.4]] and out.input_tokens is None


async def test_gemini_splits_batches_of_100(vendor: ScriptedVendor, http: HttpTransport) -> None:
    def answer(req: Received) -> Reply:
        items = req.json()["requests"]
        return Reply(200, orjson.dumps({"embeddings": [{"values": [float(item["content"]["parts"][0]["text"])]}
                                                       for item in items]}))

    for _ in range(3):
        vendor.handle_with(answer)
    before = len(vendor.received)
    out = await gemini(vendor, http).embed(request([str(i) for i in range(250)]), "models/gemini-embedding-001")
    sizes = sorted(len(r.json()["requests"]) for r in vendor.received[before:])
    assert sizes == [50, 100, 100]
    assert out.vectors == [[float(i)] for i in range(250)]


async def test_gemini_bad_key_is_our_credential(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                 "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}})
    with pytest.raises(UpstreamError) as info:
        await gemini(vendor, http).embed(request("x"), "gemini-embedding-001")
    assert info.value.status == 502 and info.value.code == "upstream_auth_error"


# ----------------------------------------------------------------------------- Cohere


async def test_cohere_v2_embed_body_and_billed_units(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, {"id": "da6e531f", "texts": ["hello", "goodbye"],
                       "embeddings": {"float": [[0.016296387, -0.008354187], [-0.04663086, -0.023239136]]},
                       "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}},
                       "response_type": "embeddings_by_type"})
    embedder = CohereEmbedder(vendor_config("cohere", vendor.url, {"COHERE_API_KEY": "co-key"}), http)
    out = await embedder.embed(request(["hello", "goodbye"], dimensions=256, input_type="search_query"),
                               "embed-v4.0")
    sent = vendor.last
    assert sent.path == "/v2/embed" and sent.headers["authorization"] == "Bearer co-key"
    assert sent.json() == {"model": "embed-v4.0", "texts": ["hello", "goodbye"], "input_type": "search_query",
                           "embedding_types": ["float"], "output_dimension": 256}
    assert out.vectors == [[0.016296387, -0.008354187], [-0.04663086, -0.023239136]] and out.input_tokens == 2


async def test_cohere_defaults_to_search_document_and_splits_96(vendor: ScriptedVendor, http: HttpTransport) -> None:
    def answer(req: Received) -> Reply:
        body = req.json()
        assert body["input_type"] == "search_document" and "output_dimension" not in body
        return Reply(200, orjson.dumps({"embeddings": {"float": [[1.0]] * len(body["texts"])},
                                        "meta": {"billed_units": {"input_tokens": len(body["texts"])}}}))

    vendor.handle_with(answer)
    vendor.handle_with(answer)
    out = await CohereEmbedder(vendor_config("cohere", vendor.url, {"COHERE_API_KEY": "k"}), http).embed(
        request(["t"] * 100), "embed-english-v3.0")
    assert len(out.vectors) == 100 and out.input_tokens == 100


# ----------------------------------------------------------------------------- Bedrock


def bedrock(vendor: ScriptedVendor, http: HttpTransport) -> BedrockEmbedder:
    return BedrockEmbedder(vendor_config("bedrock", vendor.url, AWS_ENV), http)


def _verified_handler(answer: Any) -> Any:
    """A SigV4-checking handler whose reply is computed from the request."""

    def handle(req: Received) -> Reply:
        check = verified(Reply(200, b"ok"))(req)
        return check if check.status != 200 else answer(req)

    return handle


async def test_titan_v2_one_signed_call_per_input(vendor: ScriptedVendor, http: HttpTransport) -> None:
    def answer(req: Received) -> Reply:
        text = req.json()["inputText"]
        body = {"embedding": [float(len(text)), 0.5], "inputTextTokenCount": len(text),
                "embeddingsByType": {"float": [float(len(text)), 0.5]}}
        return Reply(200, orjson.dumps(body))

    for _ in range(3):
        vendor.handle_with(_verified_handler(answer))
    before = len(vendor.received)
    out = await bedrock(vendor, http).embed(request(["a", "bb", "ccc"], dimensions=256), TITAN)
    sent = vendor.received[before:]
    assert {r.raw_path for r in sent} == {"/model/amazon.titan-embed-text-v2%3A0/invoke"}
    assert sorted(r.json()["inputText"] for r in sent) == ["a", "bb", "ccc"]
    assert all(r.json() == {"inputText": r.json()["inputText"], "normalize": True, "dimensions": 256} for r in sent)
    assert out.vectors == [[1.0, 0.5], [2.0, 0.5], [3.0, 0.5]] and out.input_tokens == 6


async def test_titan_prefers_the_billing_header(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.reply(200, {"embedding": [0.1], "inputTextTokenCount": 3},
                 headers={"content-type": "application/json", "x-amzn-bedrock-input-token-count": "4"})
    out = await bedrock(vendor, http).embed(request("abc"), "amazon.titan-embed-text-v1")
    assert vendor.last.json() == {"inputText": "abc"}  # v1 takes neither dimensions nor normalize
    assert out.input_tokens == 4


async def test_bedrock_cohere_embed_batched(vendor: ScriptedVendor, http: HttpTransport) -> None:
    vendor.handle_with(_verified_handler(lambda req: Reply(
        200, orjson.dumps({"id": "e1", "response_type": "embeddings_floats", "texts": req.json()["texts"],
                           "embeddings": [[0.25, 0.5]] * len(req.json()["texts"])}),
        headers={"content-type": "application/json", "x-amzn-bedrock-input-token-count": "5"})))
    out = await bedrock(vendor, http).embed(request(["x", "y"], input_type="classification", dimensions=512),
                                            "cohere.embed-english-v3")
    assert vendor.last.raw_path == "/model/cohere.embed-english-v3/invoke"
    # v3 takes no output_dimension; the body is Cohere's, without the model.
    assert vendor.last.json() == {"texts": ["x", "y"], "input_type": "classification", "embedding_types": ["float"]}
    assert out.vectors == [[0.25, 0.5], [0.25, 0.5]] and out.input_tokens == 5


async def test_bedrock_refuses_models_it_cannot_embed_and_maps_throttling(vendor: ScriptedVendor,
                                                                          http: HttpTransport) -> None:
    with pytest.raises(InvalidRequest) as info:
        await bedrock(vendor, http).embed(request("x"), "anthropic.claude-3-haiku-20240307-v1:0")
    assert info.value.param == "model"
    vendor.reply(429, {"message": "Too many requests, please wait before trying again."})
    with pytest.raises(RateLimited):
        await bedrock(vendor, http).embed(request("x"), TITAN)
