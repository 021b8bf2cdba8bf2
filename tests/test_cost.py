"""Exact cost accounting: usage normalisation per vendor and integer pricing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from interlock.catalog import load_catalog
from interlock.core.pricing import (
    Cost,
    Price,
    PriceTier,
    Usage,
    cost_of,
    cost_parts,
    micro_to_usd_str,
    usd_to_micro,
)
from interlock.core.usage import usage_from_openai
from interlock.vendors.anthropic.usage import usage_from_anthropic
from interlock.vendors.bedrock.usage import usage_from_bedrock
from interlock.vendors.cohere.usage import usage_from_cohere
from interlock.vendors.gemini.usage import usage_from_gemini


def _price(model_id: str, vendor: str) -> Price:
    model = load_catalog().get(model_id)
    assert model is not None, model_id
    route = model.route(vendor)
    assert route is not None, (model_id, vendor)
    return route.price


# --------------------------------------------------------------------------- money basics


def test_usd_to_micro_is_exact() -> None:
    assert usd_to_micro(0.4) == 400_000
    assert usd_to_micro("0.0028") == 2_800
    assert usd_to_micro(Decimal("3.75")) == 3_750_000
    assert usd_to_micro(15) == 15_000_000
    # binary-float artefacts from the source snap to the intended value
    assert usd_to_micro(Decimal("0.049999999999999996")) == 50_000


@pytest.mark.parametrize("bad", [-1, "abc", True, None, 0.0000001, float("inf")])
def test_usd_to_micro_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        usd_to_micro(bad)


def test_micro_to_usd_str() -> None:
    assert micro_to_usd_str(400_000) == "0.4"
    assert micro_to_usd_str(400_000, 10**12) == "0.0000004"
    assert micro_to_usd_str(0) == "0"
    assert micro_to_usd_str(15_000_000) == "15"


def test_cost_properties_and_addition() -> None:
    a = Cost(160_000_000_000)
    assert a.usd_str == "0.16"
    assert a.usd == pytest.approx(0.16)
    b = Cost(1, estimated=True)
    total = a + b
    assert total.picousd == 160_000_000_001
    assert total.estimated
    assert total.usd_str == "0.160000000001"
    assert sum([a, a, a]) == Cost(480_000_000_000)
    assert Cost().usd_str == "0"


def test_many_small_costs_sum_exactly() -> None:
    price = Price(input=400_000, output=1_600_000)
    one_token = cost_of(price, Usage(input_tokens=1))
    total = sum((one_token for _ in range(1_000_000)), Cost())
    assert total.usd_str == "0.4"  # a float accumulator would drift here


# --------------------------------------------------------------------------- required vectors


def test_gpt_41_mini_uncached_input_and_output() -> None:
    price = _price("openai/gpt-4.1-mini", "openai")
    assert (price.input, price.output, price.cache_read) == (400_000, 1_600_000, 100_000)
    cost = cost_of(price, Usage(input_tokens=1_000_000, output_tokens=1_000_000))
    assert cost.usd_str == "2"
    assert cost.picousd == 2 * 10**12


def test_gpt_41_mini_cached_prompt() -> None:
    price = _price("openai/gpt-4.1-mini", "openai")
    usage = usage_from_openai(
        {
            "prompt_tokens": 1_000_000,
            "completion_tokens": 0,
            "prompt_tokens_details": {"cached_tokens": 800_000},
        }
    )
    assert usage.input_tokens == 200_000
    assert usage.cache_read_tokens == 800_000
    assert cost_of(price, usage).usd_str == "0.16"  # $0.08 uncached + $0.08 cached


# --------------------------------------------------------------------------- OpenAI semantics


def test_openai_usage_full_details() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 600, "audio_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 300, "audio_tokens": 50},
        }
    )
    assert usage == Usage(
        input_tokens=300,
        cache_read_tokens=600,
        input_audio_tokens=100,
        output_tokens=500,
        reasoning_tokens=300,
        output_audio_tokens=50,
    )
    rendered = usage.to_openai()
    assert rendered == {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 600, "audio_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 300, "audio_tokens": 50},
    }


def test_openai_responses_api_shape() -> None:
    usage = usage_from_openai(
        {
            "input_tokens": 2006,
            "input_tokens_details": {"cached_tokens": 1920},
            "output_tokens": 300,
            "output_tokens_details": {"reasoning_tokens": 200},
            "total_tokens": 2306,
        }
    )
    assert (usage.input_tokens, usage.cache_read_tokens) == (86, 1920)
    assert (usage.output_tokens, usage.reasoning_tokens) == (300, 200)


def test_openai_reasoning_model_costs_reasoning_at_output_rate() -> None:
    price = _price("openai/o3", "openai")  # $2 / $8, no separate reasoning rate
    usage = usage_from_openai(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 5000,
            "completion_tokens_details": {"reasoning_tokens": 4000},
        }
    )
    assert cost_of(price, usage).usd_str == "0.042"  # 1000*2e-6 + 5000*8e-6


def test_openai_stream_final_usage_chunk() -> None:
    """With stream_options.include_usage the last chunk carries usage and no choices."""
    stream = (
        'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}],'
        '"usage":null}\n\n'
        'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},'
        '"finish_reason":"stop"}],"usage":null}\n\n'
        'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1200,'
        '"completion_tokens":40,"total_tokens":1240,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},'
        '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}}}\n\n'
        "data: [DONE]\n\n"
    )
    final = None
    for line in stream.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[len("data: ") :])
            if chunk.get("usage") is not None:
                final = chunk["usage"]
    assert final is not None
    usage = usage_from_openai(final)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (176, 1024, 40)
    price = _price("openai/gpt-4.1-mini", "openai")
    # 176*0.40 + 1024*0.10 + 40*1.60 micro-USD = 70.4 + 102.4 + 64 = 236.8 micro-USD
    assert cost_of(price, usage).picousd == 236_800_000


def test_deepseek_and_perplexity_extensions() -> None:
    deepseek = usage_from_openai(
        {"prompt_tokens": 100, "completion_tokens": 10, "prompt_cache_hit_tokens": 64}
    )
    assert (deepseek.input_tokens, deepseek.cache_read_tokens) == (36, 64)
    pplx = usage_from_openai(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 2000,
            "completion_tokens_details": {"reasoning_tokens": 1500},
            "citation_tokens": 3000,
            "num_search_queries": 4,
        }
    )
    price = _price("perplexity/sonar-deep-research", "perplexity")
    # input 1000*$2 + plain out 500*$8 + reasoning 1500*$3 + citations 3000*$2 (per 1M) + 4 searches * $5/1k
    expected = Decimal(1000 * 2 + 500 * 8 + 1500 * 3 + 3000 * 2) / 10**6 + Decimal(4 * 5) / 1000
    assert Decimal(cost_of(price, pplx).usd_str) == expected


def test_reasoning_price_used_when_listed() -> None:
    price = Price(input=1_000_000, output=4_000_000, reasoning=2_000_000)
    usage = Usage(output_tokens=1_000_000, reasoning_tokens=250_000)
    assert cost_of(price, usage).usd_str == "3.5"  # 750k*4 + 250k*2


# --------------------------------------------------------------------------- Anthropic semantics


def test_anthropic_cache_write_and_read() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 1000,
            "cache_creation_input_tokens": 10_000,
            "cache_read_input_tokens": 100_000,
            "output_tokens": 500,
        }
    )
    assert usage.input_tokens == 1000  # EXCLUDES cache reads and writes
    assert usage.prompt_tokens == 111_000
    assert usage.to_openai()["prompt_tokens"] == 111_000
    assert usage.to_openai()["prompt_tokens_details"]["cached_tokens"] == 100_000
    price = _price("anthropic/claude-sonnet-4-5", "anthropic")  # $3 / $15, read $0.30, write $3.75
    # 1000*3 + 10000*3.75 + 100000*0.30 + 500*15 = 3000 + 37500 + 30000 + 7500 micro-USD
    assert cost_of(price, usage).usd_str == "0.078"


def test_anthropic_one_hour_cache_writes_cost_twice_the_input_rate() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 1000,
            "cache_creation_input_tokens": 10_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 4_000, "ephemeral_1h_input_tokens": 6_000},
            "cache_read_input_tokens": 0,
            "output_tokens": 500,
        }
    )
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (10_000, 6_000)
    price = _price("anthropic/claude-sonnet-4-5", "anthropic")  # $3 / $15, 5-minute write $3.75
    # 1000*3 + 4000*3.75 + 6000*6 + 500*15 = 3000 + 15000 + 36000 + 7500 micro-USD
    assert cost_of(price, usage).usd_str == "0.0615"
    # The split survives the canonical (OpenAI-shaped) usage the pipeline prices from.
    canonical = usage.to_openai()
    assert canonical["prompt_tokens_details"]["cache_write_1h_tokens"] == 6_000
    again = usage_from_openai(canonical)
    assert (again.cache_write_tokens, again.cache_write_1h_tokens) == (10_000, 6_000)
    assert cost_of(price, again) == cost_of(price, usage)
    # And the Anthropic Messages API answers with it.
    from interlock.wire.anthropic_stream import anthropic_usage

    assert anthropic_usage(canonical)["cache_creation"] == {"ephemeral_5m_input_tokens": 4_000,
                                                            "ephemeral_1h_input_tokens": 6_000}
    # Without a split (or an impossible one) every write is a 5-minute write; never more than was written.
    assert usage_from_anthropic({"cache_creation_input_tokens": 10, "cache_creation": {
        "ephemeral_1h_input_tokens": 99}}).cache_write_1h_tokens == 10
    assert usage_from_anthropic({"cache_creation_input_tokens": 10}).cache_write_1h_tokens == 0


def test_anthropic_stream_merges_start_and_delta() -> None:
    start = {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2048,
        "output_tokens": 1,
    }
    delta = {"output_tokens": 503}
    usage = usage_from_anthropic(start, delta)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (472, 2048, 503)


def test_anthropic_long_context_tier_applies_to_whole_request() -> None:
    price = Price(
        input=3_000_000,
        output=15_000_000,
        cache_read=300_000,
        cache_write=3_750_000,
        tiers=(PriceTier(above=200_000, input=6_000_000, output=22_500_000, cache_read=600_000),),
    )
    small = Usage(input_tokens=100_000, cache_read_tokens=100_000, output_tokens=1000)
    assert cost_of(price, small).usd_str == "0.345"  # 0.3 + 0.03 + 0.015
    big = Usage(input_tokens=100_000, cache_read_tokens=100_001, output_tokens=1000)
    # above 200k prompt tokens: every token at the tier rate; cache_write keeps its base rate
    assert Decimal(cost_of(price, big).usd_str) == Decimal("0.6") + Decimal("0.0600006") + Decimal("0.0225")
    assert price.for_prompt(200_000) is price


# --------------------------------------------------------------------------- Gemini semantics


def test_gemini_thoughts_and_cache() -> None:
    usage = usage_from_gemini(
        {
            "promptTokenCount": 1000,
            "cachedContentTokenCount": 400,
            "candidatesTokenCount": 100,
            "thoughtsTokenCount": 300,
            "totalTokenCount": 1400,
        }
    )
    assert usage == Usage(input_tokens=600, cache_read_tokens=400, output_tokens=400, reasoning_tokens=300)
    price = _price("google/gemini-2.5-flash", "google")  # $0.30 / $2.50, cache $0.03
    # 600*0.30 + 400*0.03 + 400*2.50 = 180 + 12 + 1000 micro-USD
    assert cost_of(price, usage).picousd == 1_192_000_000
    assert usage.to_openai()["completion_tokens_details"]["reasoning_tokens"] == 300


def test_gemini_audio_and_tool_prompt() -> None:
    usage = usage_from_gemini(
        {
            "promptTokenCount": 1000,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 800},
                {"modality": "AUDIO", "tokenCount": 200},
            ],
            "toolUsePromptTokenCount": 50,
            "candidatesTokenCount": 10,
        }
    )
    assert (usage.input_tokens, usage.input_audio_tokens) == (850, 200)
    price = _price("google/gemini-2.5-flash", "google")  # audio input $1.00
    assert cost_of(price, usage).picousd == (850 * 300_000 + 200 * 1_000_000 + 10 * 2_500_000)


def test_gemini_long_context_tier() -> None:
    price = _price("google/gemini-2.5-pro", "google")
    usage = usage_from_gemini({"promptTokenCount": 250_000, "candidatesTokenCount": 1000})
    assert cost_of(price, usage).usd_str == "0.64"  # 250k*$2.50 + 1k*$15 (>200k rates)
    usage = usage_from_gemini({"promptTokenCount": 200_000, "candidatesTokenCount": 1000})
    assert cost_of(price, usage).usd_str == "0.26"  # 200k*$1.25 + 1k*$10


# --------------------------------------------------------------------------- Bedrock and Cohere


def test_bedrock_exclusive_cache_counts() -> None:
    usage = usage_from_bedrock(
        {
            "inputTokens": 4,
            "outputTokens": 10,
            "cacheReadInputTokens": 1500,
            "cacheWriteInputTokens": 0,
            "totalTokens": 1514,
        }
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (4, 1500, 10)


def test_bedrock_inclusive_form_is_not_double_counted() -> None:
    usage = usage_from_bedrock(
        {"inputTokens": 1504, "outputTokens": 10, "cacheReadInputTokens": 1500, "totalTokens": 1514}
    )
    assert (usage.input_tokens, usage.cache_read_tokens) == (4, 1500)


def test_bedrock_claude_cost() -> None:
    model = load_catalog().get("anthropic/claude-sonnet-4-5")
    assert model is not None
    route = model.route("bedrock")
    assert route is not None
    usage = usage_from_bedrock({"inputTokens": 1000, "outputTokens": 1000, "cacheWriteInputTokens": 1000})
    expected = 1000 * route.price.input + 1000 * route.price.output + 1000 * route.price.cache_write  # type: ignore[operator]
    assert cost_of(route.price, usage).picousd == expected


def test_cohere_billed_units_win() -> None:
    usage = usage_from_cohere(
        {
            "billed_units": {"input_tokens": 10, "output_tokens": 20},
            "tokens": {"input_tokens": 210, "output_tokens": 20},
            "cached_tokens": 0,
        }
    )
    assert (usage.input_tokens, usage.output_tokens) == (10, 20)
    fallback = usage_from_cohere({"tokens": {"input_tokens": 210, "output_tokens": 20}})
    assert (fallback.input_tokens, fallback.output_tokens) == (210, 20)


# --------------------------------------------------------------------------- fallbacks and edge cases


def test_missing_cache_prices_fall_back_to_input() -> None:
    price = Price(input=1_000_000, output=2_000_000)
    usage = Usage(
        cache_read_tokens=1_000_000,
        cache_write_tokens=1_000_000,
        input_audio_tokens=1_000_000,
        output_tokens=1_000_000,
        output_audio_tokens=500_000,
    )
    assert cost_of(price, usage).usd_str == "5"  # 3 x $1 input-rate + 1M output at $2


def test_unknown_price_costs_zero_and_estimated_flag_propagates() -> None:
    cost = cost_of(Price(), Usage(input_tokens=10, output_tokens=10, estimated=True))
    assert cost.picousd == 0
    assert cost.estimated


def test_usage_addition_and_bad_fields() -> None:
    total = Usage(input_tokens=1, output_tokens=2) + Usage(cache_read_tokens=3, estimated=True)
    assert total == Usage(input_tokens=1, cache_read_tokens=3, output_tokens=2, estimated=True)
    with pytest.raises(ValueError, match="prompt_tokens"):
        usage_from_openai({"prompt_tokens": "many", "completion_tokens": 1})
    assert usage_from_openai({"prompt_tokens": None, "completion_tokens": 3}).output_tokens == 3


def test_fast_mode_price_is_separate() -> None:
    price = _price("anthropic/claude-opus-4-7", "anthropic")
    fast = price.mode("fast")
    assert fast is not None and fast.input == 30_000_000
    assert price.mode("turbo") is None
    assert price.input == 5_000_000  # cost_of never switches to a mode on its own


def test_cache_writes_reported_in_openai_shape_are_billed_at_the_write_rate() -> None:
    """Translating adapters report Anthropic cache creation as prompt_tokens_details.cache_write_tokens."""
    usage = usage_from_openai({"prompt_tokens": 3000, "completion_tokens": 100,
                               "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 1500}})
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (500, 1000, 1500)
    assert usage.to_openai()["prompt_tokens"] == 3000
    assert usage_from_openai(usage.to_openai()) == usage
    # Claude Sonnet-style rates: $3 in, $15 out, $0.30 cache read, $3.75 cache write per 1M.
    price = Price(input=3_000_000, output=15_000_000, cache_read=300_000, cache_write=3_750_000)
    assert cost_of(price, usage).usd_str == "0.008925"  # (500*3 + 1000*0.3 + 1500*3.75 + 100*15) / 1M


def test_cost_parts_name_each_rate_and_sum_to_the_cost() -> None:
    price = Price(input=2_000_000, output=8_000_000, cache_read=500_000)  # micro-USD per 1M tokens
    usage = Usage(input_tokens=1000, cache_read_tokens=4000, cache_write_tokens=100, output_tokens=300,
                  reasoning_tokens=100)
    parts = cost_parts(price, usage)
    assert parts["input"] == 1000 * 2_000_000 and parts["cached input"] == 4000 * 500_000
    assert parts["cache write"] == 100 * 2_000_000  # no cache-write rate: the input rate
    assert parts["output"] == 200 * 8_000_000 and parts["reasoning"] == 100 * 8_000_000
    assert sum(parts.values()) == cost_of(price, usage).picousd


def test_the_console_prices_each_part_of_a_logged_request() -> None:
    from interlock.console.requests import cost_rows

    price = Price(input=2_000_000, output=8_000_000)
    row = {"input_tokens": 10, "output_tokens": 5, "cache_read_tokens": None, "cost_picousd": 10 * 2_000_000 + 5 * 8_000_000}
    rows, note = cost_rows(row, price)
    assert rows == [("input", "10", "$0.000020"), ("output", "5", "$0.000040")] and note == ""
    rows, note = cost_rows({**row, "cost_picousd": 1}, price)
    assert "current price" in note
    rows, note = cost_rows(row, None)
    assert [r[2] for r in rows] == ["—", "—"] and "No catalog price" in note
    assert cost_rows({"status": 502}, price) == ([], "")
