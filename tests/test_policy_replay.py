"""The what-if replay's arithmetic and re-planning (routing/replay.py) and the policies page's pure helpers."""

from __future__ import annotations

from typing import Any

import pytest

from interlock.app import build_simulator
from interlock.catalog import load_catalog
from interlock.config import ConfigError, Settings, load_settings
from interlock.console.policies import DEFAULT_N, FormError, parse_n, policy_yaml, replay_view, sample_request
from interlock.core.pricing import Price, Usage, cost_of
from interlock.routing.difficulty import shared_scorer
from interlock.routing.engine import RoutingEngine
from interlock.routing.replay import (
    Outcome,
    PolicyLab,
    combine_speed,
    median,
    modelled_latency_ms,
    replay_cost,
    replay_request,
    summarize,
    usage_of,
)
from interlock.routing.setup import build_routing
from interlock.vendors.registry import VENDOR_TABLE, build_vendors
from interlock.vendors.transport import HttpTransport

CONFIG = """
simulator: {enabled: true, time_scale: 0}
aliases: {fast: openai/gpt-4.1-nano}
policies:
  premium: {targets: [openai/gpt-4.1, anthropic/claude-sonnet-4-5]}
  budget:
    targets: [openai/gpt-4.1-nano, {model: openai/gpt-4.1-mini, weight: 2}]
    strategy: cost
  smart:
    strategy: difficulty
    tiers: {weak: [openai/gpt-4.1-nano, {model: openai/gpt-4.1-mini, weight: 2}], strong: [openai/gpt-4.1]}
    tier_strategy: cost
    difficulty: {strong_share: 0.3, fallback_across_tiers: false}
  smart-fixed:
    strategy: difficulty
    tiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1]}
    difficulty: {threshold: 0.625}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> PolicyLab:
    path = tmp_path_factory.mktemp("replay") / "interlock.yaml"
    path.write_text(CONFIG)
    settings: Settings = load_settings(path, vendor_table=VENDOR_TABLE, environ={"SECRET": "s3cret"})
    catalog = load_catalog()
    vendors = build_vendors(settings, HttpTransport(), build_simulator(settings, catalog))
    engine: RoutingEngine = build_routing(settings, catalog, vendors)
    return PolicyLab(engine, catalog, settings)


def row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "req_1", "inbound": "openai.chat", "requested_model": "premium",
                            "model": "openai/gpt-4.1", "vendor": "simulator", "status": 200, "stream": 0,
                            "input_tokens": 900, "cache_read_tokens": 100, "cache_write_tokens": 0,
                            "output_tokens": 250, "reasoning_tokens": 0, "cost_picousd": 3_800_000_000,
                            "duration_ms": 1200.0, "routing_trace": {"requested_output_tokens": 0}}
    base.update(kw)
    return base


def test_usage_of_a_row_and_none_without_usage() -> None:
    usage = usage_of(row())
    assert usage == Usage(input_tokens=900, cache_read_tokens=100, output_tokens=250)
    assert usage is not None and usage.prompt_tokens == 1000
    assert usage_of(row(input_tokens=None, output_tokens=None)) is None
    assert usage_of(row(cost_estimated=1, reasoning_tokens=None)) == Usage(900, 100, 0, 250, estimated=True)


def test_replay_cost_is_the_billing_cost_and_none_when_unpriced() -> None:
    price = Price(input=2_000_000, output=8_000_000, cache_read=500_000)
    usage = Usage(input_tokens=900, cache_read_tokens=100, output_tokens=250)
    assert replay_cost(price, usage) == cost_of(price, usage).picousd
    # 900 x $2/M + 100 x $0.5/M + 250 x $8/M = $0.00385
    assert replay_cost(price, usage) == 3_850_000_000
    assert replay_cost(None, usage) is None
    assert replay_cost(Price(input=1), usage) is None


def test_modelled_latency_and_its_sources() -> None:
    assert modelled_latency_ms(400.0, 100.0, 250) == pytest.approx(2900.0)
    assert modelled_latency_ms(400.0, None, 250) == 400.0
    assert modelled_latency_ms(None, 100.0, 250) is None
    assert combine_speed(5.0, 80.0, 600.0, 110.0).source == "live"
    both = combine_speed(5.0, None, 600.0, 110.0)
    assert (both.ttft_ms, both.tokens_per_s, both.source) == (5.0, 110.0, "live + catalog")
    assert combine_speed(None, None, 600.0, 110.0).source == "catalog"
    assert combine_speed(None, None, None, None).source == "none"
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([4.0, 1.0]) == 2.5 and median([]) is None


def outcome(model: str | None, cost: int | None, latency: float | None, *, actual: str = "openai/gpt-4.1",
            actual_cost: int | None = 10, vendor: str = "simulator") -> Outcome:
    return Outcome(actual, "simulator", actual_cost, 1000.0, model, vendor if model else None, cost, latency,
                   "live" if model else "none", None if model else "no route")


def test_summarize_totals_latency_and_shares() -> None:
    s = summarize([outcome("openai/gpt-4.1-nano", 2, 100.0), outcome("openai/gpt-4.1-nano", 3, 300.0),
                   outcome("openai/gpt-4.1-mini", None, 200.0, actual_cost=None), outcome(None, None, None)])
    assert s["requests"] == 4
    assert (s["actual_spend"], s["replayed_spend"]) == (30, 5)
    assert (s["actual_unpriced"], s["replayed_unpriced"], s["unroutable"]) == (1, 1, 1)
    assert s["actual_p50_ms"] == 1000.0 and s["replayed_mean_ms"] == 200.0 and s["replayed_p50_ms"] == 200.0
    models = {m["name"]: m for m in s["models"]}
    assert models["openai/gpt-4.1"]["actual"] == 4 and models["openai/gpt-4.1"]["replayed"] == 0
    assert models["openai/gpt-4.1-nano"]["replayed_share"] == 0.5
    assert s["vendors"] == [{"name": "simulator", "actual": 4, "actual_share": 1.0, "replayed": 3,
                             "replayed_share": 0.75}]
    assert s["latency_sources"] == [("live", 3, 1.0)]
    assert summarize([])["actual_mean_ms"] is None


def test_replay_request_keeps_the_recorded_needs() -> None:
    made = replay_request(row(stream=1, routing_trace={
        "requested_output_tokens": 300, "overrides": {"required_capabilities": ["streaming", "tools", "vision"]}}),
        "budget")
    assert made is not None
    request, tokens = made
    assert tokens == 1000 and request["model"] == "budget" and request["stream"] is True
    assert request["max_tokens"] == 300 and request["tools"]
    assert request["messages"][0]["content"][1]["type"] == "image_url"
    assert replay_request(row(inbound="openai.embeddings"), "budget") is None
    assert replay_request(row(input_tokens=None, output_tokens=None, status=502), "budget") is None


def test_a_cheaper_policy_replays_cheaper(lab: PolicyLab) -> None:
    rows = [row(id=f"req_{i}") for i in range(5)]
    outcomes = lab.replayer(lab.policies["budget"]).run(rows)
    assert [o.model for o in outcomes] == ["openai/gpt-4.1-nano"] * 5  # cost: the cheapest first
    nano = lab.engine.planner.plan("budget").targets[0].price
    usage = usage_of(rows[0])
    assert nano is not None and usage is not None
    assert all(o.cost == cost_of(nano, usage).picousd for o in outcomes)
    s = summarize(outcomes)
    assert s["replayed_spend"] < s["actual_spend"] == 5 * 3_800_000_000
    # No live figures yet: the catalog's latency class, and it says so.
    assert {o.latency_source for o in outcomes} == {"catalog"}
    assert all(o.latency_ms is not None and o.latency_ms > 0 for o in outcomes)


def test_an_edited_policy_is_validated_like_the_config(lab: PolicyLab) -> None:
    policy = lab.parse("targets:\n  - openai/gpt-4.1-mini\n  - fast\nstrategy: latency\n")
    assert policy.strategy == "latency" and [t.name for t in policy.targets] == ["openai/gpt-4.1-mini", "fast"]
    assert lab.parse('{"targets": ["openai/gpt-4.1"]}').strategy == "priority"  # JSON too
    with pytest.raises(ConfigError, match=r"policy:3: strategy: expected one of"):
        lab.parse("targets:\n  - openai/gpt-4.1\nstrategy: cheapest\n")
    with pytest.raises(ConfigError, match=r"policy:1: targets\[0\]: 'nope' is neither"):
        lab.parse("targets: [nope/x]")
    with pytest.raises(ConfigError, match="not valid YAML"):
        lab.parse("targets: [")
    with pytest.raises(ConfigError, match="empty"):
        lab.parse("  ")
    # The page never reads the gateway's environment through a policy.
    for text in ("targets: ['${SECRET}']", "targets: [{model: '${SECRET}'}]"):
        with pytest.raises(ConfigError) as info:
            lab.parse(text)
        assert "s3cret" not in str(info.value)
    outcomes = lab.replayer(lab.parse("targets: [openai/gpt-4.1-mini]")).run([row()])
    assert outcomes[0].model == "openai/gpt-4.1-mini"


def test_a_policy_that_cannot_serve_a_request_counts_it_unroutable(lab: PolicyLab) -> None:
    # gpt-4.1-nano's window is ~1M tokens: a 2M-token prompt fits nowhere.
    outcomes = lab.replayer(lab.policies["budget"]).run([row(input_tokens=2_000_000)])
    assert outcomes[0].model is None and outcomes[0].unroutable and "context" in outcomes[0].unroutable


def test_page_helpers_validate_the_form_and_round_trip_a_policy(lab: PolicyLab) -> None:
    assert parse_n("") == DEFAULT_N and parse_n("5000") == 5000
    for bad in ("0", "5001", "abc", "-3"):
        with pytest.raises(FormError) as info:
            parse_n(bad)
        assert info.value.field == "n" and info.value.status == 400
    request = sample_request({"model": "budget", "max_tokens": "300", "tools": "1", "reasoning": "low"})
    assert request["max_tokens"] == 300 and request["tools"] and request["reasoning_effort"] == "low"
    with pytest.raises(FormError) as info:
        sample_request({"model": "budget", "max_tokens": "many"})
    assert info.value.field == "max_tokens"
    with pytest.raises(FormError) as info:
        sample_request({"model": " "})
    assert info.value.field == "model"
    # A configured policy shown as YAML parses back to the same policy.
    for name, policy in lab.policies.items():
        again = lab.parse(policy_yaml(policy))
        assert (again.targets, again.strategy, again.filters, again.difficulty) == (
            policy.targets, policy.strategy, policy.filters, policy.difficulty), name
    view = replay_view(summarize([outcome("openai/gpt-4.1-nano", 2, 100.0), outcome("openai/gpt-4.1-nano", 3, 300.0)]),
                       "policy budget", "cost", 3, None, 200)
    assert view["actual_spend_bar"] == 100 and view["replayed_spend_bar"] == 25 and view["cheaper"]
    assert view["skipped"] == 1 and view["project"] == "all projects" and view["change"] == "-75.0%"


def test_a_difficulty_policy_replays_by_recorded_score_or_logged_text(lab: PolicyLab) -> None:
    policy = lab.parse("strategy: difficulty\ntiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1]}\n"
                       "difficulty: {threshold: 0.5}\n")
    scored = [row(id=f"s{i}", routing_trace={"difficulty": {"score": score, "tier": "x"}})
              for i, score in enumerate((0.1, 0.7, 0.9, 0.2))]
    text = "Explain, step by step, why the harmonic series diverges."
    logged = row(id="t", request_content={"model": "premium", "messages": [{"role": "user", "content": text}]})
    outcomes = lab.replayer(policy).run([*scored, logged, row(id="none")])
    assert [o.tier for o in outcomes[:4]] == ["weak", "strong", "strong", "weak"]
    assert [o.model for o in outcomes[:4]] == ["openai/gpt-4.1-nano", "openai/gpt-4.1", "openai/gpt-4.1",
                                               "openai/gpt-4.1-nano"]
    expected = "strong" if shared_scorer().score(text) >= 0.5 else "weak"
    assert outcomes[4].tier == expected  # scored from the logged request's last user message
    assert outcomes[5].model is None and outcomes[5].unroutable is not None and "difficulty unknown" in \
        outcomes[5].unroutable
    s = summarize(outcomes)
    assert s["tiers"]["strong"] + s["tiers"]["weak"] == 5 and s["unscored"] == 1
    assert s["strong_share"] == s["tiers"]["strong"] / 5
    view = replay_view(s, "the edited policy", "difficulty", 6, None, 10)
    assert view["strong_share"] == f"{100 * s['strong_share']:.1f}%" and view["unscored"] == 1
