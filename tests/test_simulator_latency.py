"""Latency sampling: distributions checked statistically over many draws, no wall-clock sleeps."""

from __future__ import annotations

import random
import statistics

import orjson
import pytest

from interlock.catalog import load_catalog
from interlock.simulator.engine import Engine
from interlock.simulator.latency import (
    DEFAULT_PROFILES,
    LatencyProfile,
    default_profile,
    model_class,
    sample_latency,
)
from interlock.simulator.settings import SimulatorSettings


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("name", sorted(DEFAULT_PROFILES))
def test_sampled_percentiles_match_the_profile(name: str) -> None:
    profile = DEFAULT_PROFILES[name]
    rng = random.Random(2024)
    draws = [sample_latency(profile, rng) for _ in range(20_000)]
    ttfts = [d[0] for d in draws]
    speeds = [d[1] for d in draws]
    assert _quantile(ttfts, 0.5) == pytest.approx(profile.ttft_p50, rel=0.05)
    assert _quantile(ttfts, 0.95) == pytest.approx(profile.ttft_p95, rel=0.08)
    assert _quantile(speeds, 0.5) == pytest.approx(profile.tps_p50, rel=0.05)
    assert _quantile(speeds, 0.95) == pytest.approx(profile.tps_p95, rel=0.08)
    assert min(ttfts) > 0 and min(speeds) > 0


def test_sampling_is_reproducible_per_seed() -> None:
    profile = DEFAULT_PROFILES["small"]
    a = [sample_latency(profile, random.Random(5)) for _ in range(3)]
    b = [sample_latency(profile, random.Random(5)) for _ in range(3)]
    assert a == b
    rng = random.Random(5)
    assert len({sample_latency(profile, rng) for _ in range(10)}) == 10


def test_invalid_profiles_are_rejected() -> None:
    with pytest.raises(ValueError, match="ttft_p95"):
        LatencyProfile(ttft_p50=1.0, ttft_p95=0.5, tps_p50=10, tps_p95=20)
    with pytest.raises(ValueError, match="tps_p50"):
        LatencyProfile(ttft_p50=1.0, ttft_p95=1.5, tps_p50=0, tps_p95=20)


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("openai/gpt-4.1-nano", "tiny"),
        ("openai/gpt-4.1-mini", "small"),
        ("openai/gpt-4.1", "standard"),
        ("openai/o3", "reasoning"),
        ("openai/o4-mini", "reasoning_small"),
        ("anthropic/claude-opus-4-1", "reasoning_large"),
        ("google/gemini-2.0-flash-lite", "tiny"),
        ("mistral/mistral-large-latest", "large"),
        ("google/gemini-2.5-pro", "reasoning"),  # "mini" inside "gemini" is not a size marker
        ("google/gemini-2.0-flash", "small"),
        ("openai/o1-pro", "reasoning_large"),  # by output price
    ],
)
def test_model_classes_from_catalog_facts(model_id: str, expected: str) -> None:
    model = load_catalog().get(model_id)
    assert model is not None
    assert model_class(model) == expected


def test_class_ordering_is_sensible() -> None:
    p = DEFAULT_PROFILES
    assert p["tiny"].ttft_p50 < p["small"].ttft_p50 < p["standard"].ttft_p50 < p["large"].ttft_p50
    assert p["tiny"].tps_p50 > p["small"].tps_p50 > p["standard"].tps_p50 > p["large"].tps_p50
    mini = default_profile(load_catalog().get("openai/gpt-4.1-mini"))  # type: ignore[arg-type]
    assert 0.4 <= mini.ttft_p50 <= 0.8 and 80 <= mini.tps_p50 <= 175


def _first_bytes(model: str, n: int, **extra: object) -> list[float]:
    engine = Engine(SimulatorSettings(seed=3))
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2000, "stream": True, **extra})
    out = []
    for _ in range(n):
        plan = engine.plan("POST", "/v1/chat/completions", "", {}, body)
        assert plan.first_byte_at is not None
        out.append(plan.first_byte_at)
    return out


def test_engine_ttft_follows_the_model_profile() -> None:
    firsts = _first_bytes("openai/gpt-4.1-mini", 600)
    assert statistics.median(firsts) == pytest.approx(DEFAULT_PROFILES["small"].ttft_p50, rel=0.12)


def test_reasoning_effort_delays_the_first_visible_token() -> None:
    low = statistics.median(_first_bytes("openai/o4-mini", 200, reasoning_effort="low"))
    high = statistics.median(_first_bytes("openai/o4-mini", 200, reasoning_effort="high"))
    assert high > low * 2


def test_config_latency_override() -> None:
    settings = SimulatorSettings.from_config(
        {"seed": 1, "latency": {"openai/*": {"ttft_p50": 3, "ttft_p95": 3.5, "tps_p50": 10, "tps_p95": 12}}}
    )
    engine = Engine(settings)
    body = orjson.dumps({"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 30})
    plans = [engine.plan("POST", "/v1/chat/completions", "", {}, body) for _ in range(200)]
    # non-streaming: the body arrives after ttft + tokens / tps
    assert statistics.median(p.first_byte_at or 0 for p in plans) > 3 + 1.5
