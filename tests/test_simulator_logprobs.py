"""The simulator's token log probabilities (OpenAI chat): shape, determinism, streams equal whole answers."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from interlock.catalog import count_tokens, load_catalog
from tests.test_simulator_openai import MODEL, call, events, request, transport

#: ChatCompletionTokenLogprob.required, and its top_logprobs items' required fields.
ENTRY_REQUIRED = {"token", "logprob", "bytes", "top_logprobs"}
TOP_REQUIRED = {"token", "logprob", "bytes"}


def check_entries(content: list[dict[str, Any]], top: int) -> None:
    for entry in content:
        assert entry.keys() >= ENTRY_REQUIRED
        assert entry["logprob"] <= 0
        assert bytes(entry["bytes"]).decode("utf-8", errors="replace") == entry["token"]
        tops = entry["top_logprobs"]
        assert len(tops) == top
        if top:
            assert all(t.keys() >= TOP_REQUIRED for t in tops)
            values = [t["logprob"] for t in tops]
            assert values == sorted(values, reverse=True)
            assert sum(math.exp(v) for v in values) <= 1 + 1e-9
            assert [t["bytes"] for t in tops].count(entry["bytes"]) == 1
            chosen = next(t for t in tops if t["bytes"] == entry["bytes"])
            assert chosen["logprob"] == entry["logprob"]
            assert len({bytes(t["bytes"]) for t in tops}) == top


@pytest.mark.parametrize("top", [0, 1, 5])
async def test_whole_answer_has_one_entry_per_generated_token(top: int) -> None:
    extra: dict[str, Any] = {"logprobs": True, "max_tokens": 120}
    if top:
        extra["top_logprobs"] = top
    status, _, data = await call(transport(), request(**extra))
    assert status == 200
    choice = orjson.loads(data)["choices"][0]
    content = choice["logprobs"]["content"]
    assert choice["logprobs"]["refusal"] is None
    text = choice["message"]["content"]
    model = load_catalog().get(MODEL)
    assert len(content) == count_tokens(text, model)
    assert b"".join(bytes(e["bytes"]) for e in content) == text.encode()
    check_entries(content, top)


async def test_logprobs_are_deterministic_and_do_not_change_the_answer() -> None:
    t = transport()
    plain = orjson.loads((await call(t, request(seed=7, max_tokens=80)))[2])
    first = orjson.loads((await call(t, request(seed=7, max_tokens=80, logprobs=True, top_logprobs=3)))[2])
    again = orjson.loads((await call(t, request(seed=7, max_tokens=80, logprobs=True, top_logprobs=3)))[2])
    assert plain["choices"][0]["logprobs"] is None
    assert first["choices"][0]["message"] == plain["choices"][0]["message"]
    assert first["choices"][0]["logprobs"] == again["choices"][0]["logprobs"]


async def test_stream_chunks_carry_the_tokens_they_complete() -> None:
    body = request(seed=3, max_tokens=100, logprobs=True, top_logprobs=2, n=2)
    whole = orjson.loads((await call(transport(), body))[2])
    _, _, data = await call(transport(), {**body, "stream": True})
    streamed: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for event in events(data):
        if event == b"[DONE]":
            continue
        for choice in event["choices"]:
            if choice["delta"].get("content"):
                assert choice["logprobs"]["refusal"] is None
                streamed[choice["index"]] += choice["logprobs"]["content"]
    for choice in whole["choices"]:
        assert streamed[choice["index"]] == choice["logprobs"]["content"]
        check_entries(streamed[choice["index"]], 2)


async def test_top_logprobs_needs_logprobs_and_a_range() -> None:
    status, _, data = await call(transport(), request(top_logprobs=2))
    assert status == 400 and orjson.loads(data)["error"]["param"] == "top_logprobs"
    status, _, data = await call(transport(), request(logprobs=True, top_logprobs=21))
    assert status == 400 and orjson.loads(data)["error"]["param"] == "top_logprobs"
    status, _, data = await call(transport(), request(logprobs="yes"))
    assert status == 400 and orjson.loads(data)["error"]["param"] == "logprobs"


async def test_labs_without_logprobs_answer_null() -> None:
    body = {**request(logprobs=True, max_tokens=40), "model": "anthropic/claude-sonnet-4-5"}
    status, _, data = await call(transport(), body)
    assert status == 200 and orjson.loads(data)["choices"][0]["logprobs"] is None
