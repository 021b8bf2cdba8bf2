"""The simulator's ``/v1/embeddings`` (in process and over a socket) and its resolution of vendors' own model ids."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest

from interlock.catalog import count_tokens, load_catalog
from interlock.core.vendor import Timeouts
from interlock.simulator import SimulatorSettings, SimulatorTransport, server
from interlock.simulator.engine import Engine

URL = "http://simulator.internal/v1/embeddings"
SMALL = "openai/text-embedding-3-small"


def transport(**settings: Any) -> SimulatorTransport:
    return SimulatorTransport(SimulatorSettings(time_scale=0, allow_fault_headers=True, **settings))


async def embed(body: dict[str, Any], headers: dict[str, str] | None = None,
                t: SimulatorTransport | None = None) -> tuple[int, Any]:
    resp = await (t or transport()).request("POST", URL, headers or {}, orjson.dumps(body), Timeouts())
    return resp.status, orjson.loads(await resp.read())


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


async def test_unit_vectors_seeded_by_the_text_with_real_token_counts() -> None:
    texts = ["The cat sat on the mat.", "Quarterly revenue grew 12%.", "The cat sat on the mat."]
    status, out = await embed({"model": SMALL, "input": texts})
    assert status == 200 and out["object"] == "list" and out["model"] == SMALL
    vectors = [item["embedding"] for item in out["data"]]
    assert [item["index"] for item in out["data"]] == [0, 1, 2]
    assert all(len(v) == 1536 and abs(norm(v) - 1.0) < 1e-5 for v in vectors)
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    # Two independent random directions in 1536 dimensions are nearly orthogonal.
    assert abs(sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))) < 0.2
    model = load_catalog().get(SMALL)
    expected = sum(count_tokens(t, model) for t in texts)
    assert out["usage"] == {"prompt_tokens": expected, "total_tokens": expected}
    # A fresh engine gives the same vectors: the seed is the text, not the process.
    _, again = await embed({"model": SMALL, "input": texts[1]}, t=transport(seed=99))
    assert again["data"][0]["embedding"] == vectors[1]


async def test_base64_carries_the_same_float32_values_and_dimensions_shorten_by_prefix() -> None:
    _, floats = await embed({"model": SMALL, "input": "shorten me", "encoding_format": "float"})
    _, b64 = await embed({"model": SMALL, "input": "shorten me", "encoding_format": "base64"})
    raw = base64.b64decode(b64["data"][0]["embedding"])
    full = floats["data"][0]["embedding"]
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == full
    _, short = await embed({"model": SMALL, "input": "shorten me", "dimensions": 64})
    vector = short["data"][0]["embedding"]
    prefix = full[:64]
    assert len(vector) == 64 and abs(norm(vector) - 1.0) < 1e-5
    assert all(abs(a - b / norm(prefix)) < 1e-5 for a, b in zip(vector, prefix, strict=True))


async def test_token_inputs_and_native_sizes() -> None:
    status, out = await embed({"model": "openai/text-embedding-3-large", "input": [[1, 2, 3], [4, 5]]})
    assert status == 200 and out["usage"]["prompt_tokens"] == 5
    assert [len(item["embedding"]) for item in out["data"]] == [3072, 3072]
    # models.dev says 1 for gemini-embedding-001; the documented size wins.
    _, gem = await embed({"model": "google/gemini-embedding-001", "input": "x"})
    assert len(gem["data"][0]["embedding"]) == 3072


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": "openai/gpt-4.1-mini", "input": "x"}, 400, "model"),
    ({"model": SMALL, "input": ""}, 400, "input"),
    ({"model": SMALL, "input": ["ok", 3]}, 400, "input[1]"),
    ({"model": SMALL, "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"model": SMALL, "input": "x", "dimensions": 4096}, 400, "dimensions"),
    ({"model": SMALL}, 400, "input"),
    ({"model": "nobody/no-such-embedder", "input": "x"}, 404, None),
])
async def test_vendor_errors(body: dict[str, Any], status: int, param: str | None) -> None:
    got, out = await embed(body)
    assert got == status and out["error"]["param"] == param


async def test_fault_injection_applies_to_embeddings() -> None:
    status, out = await embed({"model": SMALL, "input": "x"}, {"x-interlock-simulator-fault": "error=503"})
    assert status == 503 and out["error"]["type"] == "server_error"


# ----------------------------------------------------------------------------- vendor model ids


def shared_id_catalog() -> Any:
    """Two labs whose vendors both call their model ``shared-id``: only the format can choose."""
    route = {"vendor_model_id": "shared-id", "price": {"input": 1.0, "output": 2.0}}
    return load_catalog().with_overrides({"models": {
        "labone/alpha": {"name": "Alpha", "context_window": 8000, "routes": {"openai": route}},
        "labtwo/beta": {"name": "Beta", "context_window": 8000, "routes": {"anthropic": route}},
    }})


def test_engine_resolves_vendor_ids_preferring_the_formats_vendor() -> None:
    engine = Engine(SimulatorSettings(time_scale=0), shared_id_catalog())
    assert engine.catalog.find("shared-id") is None  # ambiguous without a vendor
    assert engine.resolve("shared-id", "openai").id == "labone/alpha"  # type: ignore[union-attr]
    assert engine.resolve("shared-id", "anthropic").id == "labtwo/beta"  # type: ignore[union-attr]
    assert engine.resolve("claude-sonnet-4-5", "anthropic").id == "anthropic/claude-sonnet-4-5"  # type: ignore[union-attr]
    assert engine.resolve("models/gemini-2.0-flash", "gemini").id == "google/gemini-2.0-flash"  # type: ignore[union-attr]
    assert engine.resolve("text-embedding-3-small", "openai").id == SMALL  # type: ignore[union-attr]
    assert engine.resolve("anthropic/claude-sonnet-4-5", "openai").id == "anthropic/claude-sonnet-4-5"  # type: ignore[union-attr]
    assert engine.resolve("no-such-model", "openai") is None


async def test_anthropic_format_answers_for_a_vendor_model_id() -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    resp = await transport().request("POST", "http://simulator.internal/v1/messages",
                                     {"anthropic-version": "2023-06-01"}, orjson.dumps(body), Timeouts())
    data = orjson.loads(await resp.read())
    assert resp.status == 200 and data["type"] == "message" and data["usage"]["input_tokens"] > 0


# ----------------------------------------------------------------------------- over a socket, the official SDK


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    engine = Engine(SimulatorSettings(time_scale=0))
    runner, port = await server.start(engine, "127.0.0.1", 0, formats=("openai",), time_scale=0)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_openai_sdk_over_http(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-sim", max_retries=0)
    floats = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float")
    decoded = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])  # SDK asks base64
    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]
    assert floats.usage.prompt_tokens == 2 and len(floats.data[0].embedding) == 1536
    with pytest.raises(openai.BadRequestError) as info:
        await client.embeddings.create(model="gpt-4.1-mini", input="x")
    assert info.value.param == "model"
    await client.close()
