"""The routing decision: policies, filters with reasons, strategies, OpenRouter overrides, explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.catalog import load_catalog
from interlock.config import ConfigError, load_settings
from interlock.core.errors import InvalidRequest, NoRouteAvailable
from interlock.core.policy import Policy, PolicyTarget
from interlock.core.vendor import Timeouts
from interlock.routing.circuit import BreakerSettings
from interlock.routing.policies import load_policies
from interlock.routing.strategies import quality_scores
from interlock.vendors.registry import VENDOR_TABLE
from tests.test_routing_fixtures import MODEL, catalog_with, chat, simulator, world

THREE = {"sima": {}, "simb": {}, "simc": {}}


def three(**kw: Any) -> Any:
    return world({v: simulator() for v in THREE}, **kw)


def policy(name: str, *targets: str, **kw: Any) -> Policy:
    return Policy(name, tuple(PolicyTarget(t) for t in targets), **kw)


def decide(w: Any, request: dict[str, Any]) -> Any:
    trace, _ = w.engine.decide(request)
    return trace


def order(trace: Any) -> list[str]:
    return [t.vendor.id for t in trace.order]


def test_default_is_the_planner_order_with_a_reason() -> None:
    trace = decide(three(), chat())
    assert order(trace) == ["sima", "simb", "simc"]
    assert trace.strategy == "priority"
    assert trace.reason == "first in priority order of 3 capable targets"
    headers = dict(trace.headers(None))
    assert headers["x-interlock-route"] == f"sima/{MODEL}"


def test_policy_is_reachable_as_a_model_name_in_its_order() -> None:
    p = policy("support-bot", f"simc/{MODEL}", f"sima/{MODEL}")
    w = three(policies={"support-bot": p})
    trace = decide(w, chat("support-bot"))
    assert order(trace) == ["simc", "sima"]
    assert trace.policy == "support-bot"


def test_filters_record_their_reasons_and_are_never_in_the_order() -> None:
    routes = {"sima": {"capabilities": ["streaming"]}, "simb": {"context_window": 50},
              "simc": {"zdr": True}, "simd": {}}
    w = world({v: simulator() for v in routes}, routes=routes)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    trace = decide(w, chat(tools=tools, max_tokens=100, provider={"ignore": ["simd"]}))
    reasons = {c.target.vendor.id: c.reason for c in trace.candidates}
    assert reasons["sima"] == "no tools support"
    assert reasons["simb"] is not None and reasons["simb"].startswith("context window 50 <")
    assert reasons["simc"] is None
    assert reasons["simd"] == "in provider.ignore"
    assert order(trace) == ["simc"]
    assert "sima/openai/gpt-4.1-mini skipped: no tools support" in trace.reason
    assert trace.reason.startswith("the only capable target")


def test_zdr_and_max_price_filters() -> None:
    routes = {"sima": {"zdr": True, "price": {"input": 5.0, "output": 20.0}},
              "simb": {"zdr": False, "price": {"input": 0.1, "output": 0.4}},
              "simc": {"zdr": True, "price": {"input": 0.2, "output": 0.8}}}
    w = world({v: simulator() for v in routes}, routes=routes)
    trace = decide(w, chat(provider={"zdr": True, "max_price": {"prompt": 1, "completion": "2"}}))
    reasons = {c.target.vendor.id: c.reason for c in trace.candidates}
    assert reasons == {"sima": "input $5/M above max $1/M", "simb": "not zero-data-retention", "simc": None}


def test_request_problems_everywhere_are_a_400_and_outages_a_503() -> None:
    routes = {"sima": {"context_window": 30}, "simb": {"context_window": 30}}
    w = world({v: simulator() for v in routes}, routes=routes)
    with pytest.raises(InvalidRequest) as info:
        decide(w, chat(max_tokens=100))
    assert info.value.code == "context_length_exceeded" and "context window 30" in info.value.message
    w = three(breaker=BreakerSettings(min_requests=1, cooldown_s=10))
    for vendor in THREE:
        w.engine.circuits.record(f"{vendor}/{MODEL}", False)
    with pytest.raises(NoRouteAvailable) as outage:
        decide(w, chat())
    assert "circuit open" in outage.value.message and outage.value.headers["retry-after"] == "10"


def test_cost_strategy_uses_the_request_tokens_and_cache_discounts() -> None:
    routes = {"sima": {"price": {"input": 1.0, "output": 1.0}},
              "simb": {"price": {"input": 0.5, "output": 4.0}},
              "simc": {"price": {"input": 2.0, "output": 0.5, "cache_read": 0.01}}}
    w = world({v: simulator() for v in routes}, routes=routes)
    long_prompt = [{"role": "user", "content": "word " * 4000}]
    # Input-heavy request: the cheap-input vendor wins.
    trace = decide(w, {"model": MODEL, "messages": long_prompt, "max_tokens": 10, "provider": {"sort": "price"}})
    assert order(trace)[0] == "simb" and trace.strategy == "cost"
    # Output-heavy: the cheap-output vendor wins.
    trace = decide(w, chat(max_tokens=1000, provider={"sort": "price"}))
    assert order(trace)[0] == "simc"
    # simc's prompts are mostly cache hits (live stats): with the discount it wins the long prompt too.
    w.engine.stats.attempt(f"simc/{MODEL}", ok=True)
    w.engine.stats.answered(f"simc/{MODEL}", 0.2, prompt_tokens=1000, cached_tokens=950)
    trace = decide(w, {"model": f"{MODEL}:floor", "messages": long_prompt, "max_tokens": 10})
    assert order(trace)[0] == "simc"
    costs = {c.target.vendor.id: (c.detail or {})["expected_cost_usd"] for c in trace.candidates}
    assert costs["simc"] is not None and costs["simb"] is not None and costs["simc"] < costs["simb"]


def test_latency_and_throughput_follow_live_stats_unknown_gets_the_median() -> None:
    w = three()
    for vendor, ttft, tps in (("sima", 0.9, 50), ("simb", 0.2, 300)):
        key = f"{vendor}/{MODEL}"
        for _ in range(5):
            w.engine.stats.attempt(key, ok=True)
            w.engine.stats.answered(key, ttft, output_tokens=tps, generation_s=1.0)
    trace = decide(w, chat(provider={"sort": "latency"}))
    # simc has no data: it is ranked at the median TTFT, between the measured two (explored, not starved).
    assert order(trace) == ["simb", "simc", "sima"]
    trace = decide(w, chat(f"{MODEL}:nitro"))
    assert trace.strategy == "throughput" and order(trace)[0] == "simb"


def test_quality_normalises_and_fills_missing_with_the_median() -> None:
    cat = catalog_with(THREE)
    w = world({v: simulator() for v in THREE}, catalog=cat)
    p = policy("q", f"sima/{MODEL}", f"simb/{MODEL}", f"simc/{MODEL}", strategy="quality",
               quality_weights={"support": 1.0},
               scores={f"sima/{MODEL}": {"support": 0.2}, f"simc/{MODEL}": {"support": 0.9}})
    trace, _ = w.engine.decide(chat())
    cands = [c for c in trace.candidates]
    scores = quality_scores(cands, p)
    assert scores == [0.0, 0.5, 1.0]


def test_weighted_draws_follow_weights() -> None:
    p = Policy("w", (PolicyTarget(f"sima/{MODEL}", 1.0), PolicyTarget(f"simb/{MODEL}", 9.0)), strategy="weighted")
    w = world({v: simulator() for v in ("sima", "simb")}, policies={"w": p})
    import random

    rng = random.Random(7)
    w.engine.rng = rng.random
    firsts = [order(decide(w, chat("w")))[0] for _ in range(2000)]
    share = firsts.count("simb") / len(firsts)
    assert 0.85 < share < 0.95


def test_balanced_prefers_cheap_fast_good() -> None:
    routes = {"sima": {"price": {"input": 0.1, "output": 0.1}}, "simb": {"price": {"input": 9.0, "output": 9.0}}}
    p = policy("b", f"simb/{MODEL}", f"sima/{MODEL}", strategy="balanced")
    w = world({v: simulator() for v in routes}, routes=routes, policies={"b": p})
    assert order(decide(w, chat("b")))[0] == "sima"


def test_provider_order_and_allow_fallbacks() -> None:
    w = three()
    trace = decide(w, chat(provider={"order": ["simc", "SIMB"]}))
    assert order(trace) == ["simc", "simb", "sima"]
    trace = decide(w, chat(provider={"order": ["simc"], "allow_fallbacks": False}))
    assert order(trace) == ["simc"]
    assert {c.target.vendor.id: c.reason for c in trace.candidates}["sima"] == (
        "not in provider.order (allow_fallbacks is false)")
    trace = decide(w, chat(provider={"allow_fallbacks": False}))
    assert order(trace) == ["sima"]


def test_models_array_adds_fallback_groups_in_order() -> None:
    w = world({"sima": simulator(), "simulator": simulator()}, routes={"sima": {}})
    trace = decide(w, chat(models=["simulator/openai/gpt-4.1-nano", "nope/nothing"]))
    assert [t.key for t in trace.order] == [f"sima/{MODEL}", "simulator/openai/gpt-4.1-nano"]
    assert "nope/nothing" in trace.overrides["unresolved_models"]
    assert "(with 1 fallback model)" in trace.reason


@pytest.mark.parametrize(("body", "param"), [
    ({"provider": "openai"}, "provider"),
    ({"provider": {"order": "openai"}}, "provider.order"),
    ({"provider": {"order": ["openai", 3]}}, "provider.order[1]"),
    ({"provider": {"only": [""]}}, "provider.only[0]"),
    ({"provider": {"allow_fallbacks": "no"}}, "provider.allow_fallbacks"),
    ({"provider": {"sort": "cheapest"}}, "provider.sort"),
    ({"provider": {"data_collection": "never"}}, "provider.data_collection"),
    ({"provider": {"max_price": {"prompt": "lots"}}}, "provider.max_price.prompt"),
    ({"provider": {"max_price": {"tokens": 1}}}, "provider.max_price.tokens"),
    ({"provider": {"zdr": 1}}, "provider.zdr"),
    ({"provider": {"speed": "fast"}}, "provider.speed"),
    ({"models": "openai/gpt-4.1"}, "models"),
    ({"models": ["ok/x", 7]}, "models[1]"),
    ({"route": "random"}, "route"),
])
def test_override_validation_names_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decide(three(), chat(**body))
    assert info.value.status == 400 and info.value.param == param and param in info.value.message


def test_ignored_provider_fields_are_reported() -> None:
    trace = decide(three(), chat(provider={"quantizations": ["fp8"], "sort": {"by": "latency"}}))
    assert trace.overrides["provider"]["ignored"] == ["provider.quantizations"]
    assert trace.strategy == "latency"


class Recording:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bodies: list[dict[str, Any]] = []

    async def request(self, method: str, url: str, headers: Any, body: bytes, timeouts: Timeouts) -> Any:
        self.bodies.append(orjson.loads(body))
        return await self.inner.request(method, url, headers, body, timeouts)

    async def close(self) -> None:
        return None


async def test_routing_fields_are_not_forwarded_to_vendors() -> None:
    rec = Recording(simulator())
    w = world({"sima": rec}, routes={"sima": {}})
    ctx, canonical = w.context(chat(provider={"sort": "price"}, models=[MODEL], route="fallback"))
    await w.dispatcher.complete(ctx, canonical, {})
    assert rec.bodies and not {"provider", "models", "route"} & set(rec.bodies[0])
    assert rec.bodies[0]["model"] == MODEL


def write(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "interlock.yaml"
    path.write_text(text)
    return load_settings(path, vendor_table=VENDOR_TABLE, environ={})


def test_policy_config_is_validated_with_file_line_and_key(tmp_path: Path) -> None:
    catalog = load_catalog()
    good = write(tmp_path, """
policies:
  support-bot:
    targets: [openai/gpt-4.1-mini, {model: simulator/openai/gpt-4.1-nano, weight: 2}]
    strategy: quality
    quality: {weights: {"Aider Polyglot": 1, mine: 1}, scores: {openai/gpt-4.1-mini: {mine: 0.7}}}
    retry: {attempts: 3}
    filters: {zdr: true, max_price: {input: 1}}
""")
    p = load_policies(good, catalog)["support-bot"]
    assert p.strategy == "quality" and p.targets[1].weight == 2.0 and p.retry.attempts == 3
    assert p.filters.zdr and p.filters.max_price.input == 1.0
    cases = [
        ("policies:\n  bot:\n    targets: [openai/gpt-4.1-mini]\n    strategy: fastest\n",
         ":4: policies.bot.strategy: expected one of"),
        ("policies:\n  bot:\n    targets:\n      - openai/gpt-4.1-mini\n      - nowhere/model-x\n",
         ":5: policies.bot.targets[1]: 'nowhere' is neither"),
        ("policies:\n  bot:\n    targets: []\n", ":3: policies.bot.targets: a policy needs"),
        ("policies:\n  bot:\n    targets: [openai/gpt-4.1-mini]\n    retry: {attempt: 2}\n",
         "policies.bot.retry.attempt: unknown key (did you mean 'attempts'?)"),
        ("policies:\n  bot:\n    targets: [openai/gpt-4.1-mini]\n    quality: {weights: {vibes: 1}}\n",
         "policies.bot.quality.weights.vibes: not a catalog benchmark"),
        ("policies:\n  a/b:\n    targets: [openai/gpt-4.1-mini]\n", "policies.a/b: a policy name may not"),
    ]
    for text, expected in cases:
        with pytest.raises(ConfigError) as info:
            load_policies(write(tmp_path, text), catalog)
        assert expected in str(info.value) and "interlock.yaml" in str(info.value)


def test_token_memo_agrees_with_the_catalog_estimate() -> None:
    from interlock.catalog import estimate_chat_tokens
    from interlock.routing.tokens import TokenMemo

    catalog = load_catalog()
    memo = TokenMemo(entries=3)
    requests = [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]},
        {"messages": [{"role": "user", "content": "Grüße, 你好 🙂", "name": "ana"},
                      {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Again"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts are counted whole"}]}]},
        {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
                                                                     "function": {"name": "f"}}]},
    ]
    for model_id in ("openai/gpt-4.1-mini", "openai/gpt-4-turbo", "anthropic/claude-haiku-4-5"):
        model = catalog.get(model_id)
        for _ in range(2):  # second pass: memo hits (and evictions, with 3 entries)
            for request in requests:
                assert memo.count(request, model) == estimate_chat_tokens(request, model)


@pytest.mark.parametrize("body", [
    {},
    {"model": f"{MODEL}:floor"},
    {"models": ["nope/nothing"]},
    {"models": ["simulator/openai/gpt-4.1-nano"]},
    {"provider": {"order": ["simb"]}},
    {"provider": {"quantizations": ["fp8"]}},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
])
def test_overrides_view_is_falsy_only_when_it_renders_nothing(body: dict[str, Any]) -> None:
    # The request log skips rendering a falsy view, so a falsy view must never hide anything.
    w = world({"sima": simulator(), "simb": simulator(), "simulator": simulator()}, routes={"sima": {}, "simb": {}})
    trace = decide(w, chat(**body))
    rendered = trace.overrides.to_json()
    # Falsy exactly when there is nothing to render: every override here renders something.
    assert bool(trace.overrides) == bool(rendered) == bool(body)
