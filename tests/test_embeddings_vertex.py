"""Vertex AI embeddings over a real socket: ``:predict`` bodies, service-account auth, batching, token counts, errors.

The mock plays both Google endpoints: the token URI (verifying the RS256
assertion with the public half of a key generated here) and ``:predict``
answering in the documented shape (``predictions[].embeddings.values`` and
``.statistics``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.config import VendorConfig
from interlock.core.errors import InvalidRequest, RateLimited, UpstreamError
from interlock.core.vendor import EmbeddingAdapter
from interlock.vendors.registry import BY_TYPE
from interlock.vendors.transport import HttpTransport
from interlock.vendors.vertex.embeddings import MAX_INSTANCES, VertexEmbedder, decode_predict, encode_predict
from tests.mock_vendors.canonical import vendor_config
from tests.mock_vendors.server import Received, Reply, ScriptedVendor
from tests.test_vendor_vertex import PEM, token_endpoint


def _embedder(config: VendorConfig, transport: HttpTransport) -> EmbeddingAdapter | None:
    """What the registry attaches to this vendor's runtime: its package's embedder, if it declares one."""
    factory = BY_TYPE[config.spec.type].embedder
    return factory(config, transport) if factory is not None else None

BASE = "/v1/projects/proj-from-file/locations/europe-west4/publishers/google/models/"


@pytest.fixture
def creds(tmp_path: Path, vendor: ScriptedVendor) -> Path:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "proj-from-file", "private_key_id": "key-1",
                                "private_key": PEM, "client_email": "sa@proj.iam.gserviceaccount.com",
                                "token_uri": f"{vendor.url}/token"}))
    return path


@pytest.fixture(autouse=True)
def _fresh_script(vendor: ScriptedVendor) -> None:
    vendor.replies.clear()


def embedder(vendor: ScriptedVendor, http: HttpTransport, creds: Path) -> VertexEmbedder:
    config = vendor_config("vertex", vendor.url, {"GOOGLE_APPLICATION_CREDENTIALS": str(creds),
                                                  "GOOGLE_CLOUD_LOCATION": "europe-west4"})
    built = _embedder(config, http)
    assert isinstance(built, VertexEmbedder)
    return built


def vector_of(text: str) -> list[float]:
    """A vector the mock derives from the instance, so order mix-ups show."""
    return [float(len(text)), float(sum(map(ord, text)) % 97), 0.5]


def predict(token: str, *, key: str = "token_count") -> Any:
    """The mock ``:predict``: checks the bearer token and answers one prediction per instance."""

    def handle(req: Received) -> Reply:
        if req.headers.get("authorization") != f"Bearer {token}":
            return Reply(401, b'{"error":{"code":401,"status":"UNAUTHENTICATED"}}')
        body = req.json()
        predictions = [{"embeddings": {"values": vector_of(inst["content"]),
                                       "statistics": {key: len(inst["content"].split()), "truncated": False}}}
                       for inst in body["instances"]]
        return Reply(200, orjson.dumps({"predictions": predictions, "metadata": {"billableCharacterCount": 9}}))

    return handle


def test_request_body_follows_the_predict_shape() -> None:
    body = encode_predict(["a", "b"], {"input": ["a", "b"], "dimensions": 768, "task_type": "retrieval_document",
                                       "title": "Doc"})
    assert body == {"instances": [{"content": "a", "task_type": "RETRIEVAL_DOCUMENT", "title": "Doc"},
                                  {"content": "b", "task_type": "RETRIEVAL_DOCUMENT", "title": "Doc"}],
                    "parameters": {"outputDimensionality": 768}}
    assert encode_predict(["a"], {"input": "a"}) == {"instances": [{"content": "a"}]}
    with pytest.raises(InvalidRequest) as info:
        encode_predict(["a"], {"input": "a", "task_type": 3})
    assert info.value.param == "task_type"


def test_decode_reads_both_token_count_spellings_and_checks_the_count() -> None:
    data = {"predictions": [{"embeddings": {"values": [0.1], "statistics": {"token_count": 6.0}}},
                            {"embeddings": {"values": [0.2], "statistics": {"tokenCount": 4}}}]}
    assert decode_predict(data, 2, "vertex") == ([[0.1], [0.2]], 10)
    without = {"predictions": [{"embeddings": {"values": [0.1]}}]}
    assert decode_predict(without, 1, "vertex") == ([[0.1]], None)
    with pytest.raises(UpstreamError, match="1 embeddings for 2 inputs"):
        decode_predict(without, 2, "vertex")
    with pytest.raises(UpstreamError, match="predictions"):
        decode_predict({"error": "x"}, 1, "vertex")


async def test_gemini_embedding_sends_one_instance_per_call(vendor: ScriptedVendor, http: HttpTransport,
                                                            creds: Path) -> None:
    texts = ["first text", "second one here", "third"]
    vendor.handle_with(token_endpoint("ya29.embed"))
    for _ in texts:
        vendor.handle_with(predict("ya29.embed"))
    e = embedder(vendor, http, creds)
    before = len(vendor.received)
    out = await e.embed({"model": "m", "input": texts, "dimensions": 3, "task_type": "RETRIEVAL_QUERY"},
                        "gemini-embedding-001")
    calls = [r for r in vendor.received[before:] if r.path != "/token"]
    assert len(calls) == 3 and e.tokens.exchanges == 1
    for call in calls:
        assert call.path == BASE + "gemini-embedding-001:predict"
        assert call.headers["authorization"] == "Bearer ya29.embed" and "x-goog-api-key" not in call.headers
        body = call.json()
        assert len(body["instances"]) == 1 and body["instances"][0]["task_type"] == "RETRIEVAL_QUERY"
        assert body["parameters"] == {"outputDimensionality": 3}
    assert out.vectors == [vector_of(t) for t in texts]  # input order, whatever order the calls finished in
    assert out.input_tokens == 2 + 3 + 1 and out.model == "gemini-embedding-001"


async def test_text_embedding_models_are_batched(vendor: ScriptedVendor, http: HttpTransport, creds: Path) -> None:
    texts = [f"text number {i}" for i in range(MAX_INSTANCES + 5)]
    vendor.handle_with(token_endpoint("ya29.batch"))
    vendor.handle_with(predict("ya29.batch", key="tokenCount"))
    vendor.handle_with(predict("ya29.batch", key="tokenCount"))
    e = embedder(vendor, http, creds)
    before = len(vendor.received)
    out = await e.embed({"model": "m", "input": texts}, "text-embedding-005")
    calls = [r for r in vendor.received[before:] if r.path != "/token"]
    assert sorted(len(c.json()["instances"]) for c in calls) == [5, MAX_INSTANCES]
    assert all(c.path == BASE + "text-embedding-005:predict" and "parameters" not in c.json() for c in calls)
    assert out.vectors == [vector_of(t) for t in texts] and out.input_tokens == 3 * len(texts)


async def test_token_ids_are_decoded_to_text(vendor: ScriptedVendor, http: HttpTransport, creds: Path) -> None:
    vendor.handle_with(token_endpoint("ya29.ids"))
    vendor.handle_with(predict("ya29.ids"))
    e = embedder(vendor, http, creds)
    await e.embed({"model": "m", "input": [15339, 1917]}, "gemini-embedding-001")  # cl100k: "hello world"
    assert vendor.last.json()["instances"] == [{"content": "hello world"}]


async def test_vendor_errors_keep_their_meaning(vendor: ScriptedVendor, http: HttpTransport, creds: Path) -> None:
    vendor.handle_with(token_endpoint("ya29.err"))
    vendor.reply(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, headers={"retry-after": "3"})
    e = embedder(vendor, http, creds)
    with pytest.raises(RateLimited):
        await e.embed({"model": "m", "input": "x"}, "gemini-embedding-001")
    # Vertex refusing our bearer token is our credential's fault: a 502, never the caller's 401.
    vendor.reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
    with pytest.raises(UpstreamError) as info:
        await e.embed({"model": "m", "input": "x"}, "gemini-embedding-001")
    assert info.value.status == 502 and info.value.code == "upstream_auth_error"
    vendor.reply(200, {"predictions": [{"embeddings": {"values": "not numbers"}}]})
    with pytest.raises(UpstreamError) as bad:
        await e.embed({"model": "m", "input": "x"}, "gemini-embedding-001")
    assert bad.value.code == "upstream_invalid_response"


async def test_refused_service_account_is_an_upstream_auth_error(vendor: ScriptedVendor, http: HttpTransport,
                                                                 creds: Path) -> None:
    vendor.reply(400, b'{"error":"invalid_grant"}')
    e = embedder(vendor, http, creds)
    with pytest.raises(UpstreamError) as info:
        await e.embed({"model": "m", "input": "x"}, "gemini-embedding-001")
    assert info.value.code == "upstream_auth_error" and info.value.status == 502
