"""The difficulty strategy end to end: a real gateway, the official SDKs, prompts from the routing data's dev split.

Three OpenAI-compatible vendor instances: ``mock-weak`` and ``mock-strong`` on the mock vendor, and
``dead-strong`` that refuses connections (for failover). The easy and hard prompts are the dev prompts the
shipped scorer ranks lowest among those both models answered and highest among those only the strong model
answered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from interlock.config import load_settings
from interlock.configfile import ConfigError
from interlock.routing.difficulty import calibrate, prompt_text, shared_scorer, threshold_for_share
from interlock.routing.policies import load_policies
from interlock.vendors.registry import VENDOR_TABLE
from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, free_port, start_gateway
from tests.mock_openai import MockVendor

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "routing"


def _rows(*names: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in names:
        with (DATA / name).open(encoding="utf-8") as f:
            out.extend(json.loads(line) for line in f if line.strip())
    return out


@pytest.fixture(scope="module")
def prompts() -> dict[str, str]:
    scorer = shared_scorer()
    rows = _rows("mmlu.dev.jsonl", "gsm8k.dev.jsonl")
    both = [r["prompt"] for r in rows if r["weak_correct"] and r["strong_correct"]]
    only_strong = [r["prompt"] for r in rows if not r["weak_correct"] and r["strong_correct"]]
    return {"easy": min(both, key=scorer.score), "hard": max(only_strong, key=scorer.score)}


def _config(mock: MockVendor, dead_port: int) -> str:
    def model(name: str, vendor: str) -> str:
        return (f"    mocklab/{name}:\n      name: {name}\n      context_window: 32768\n"
                f"      capabilities: [streaming]\n      routes:\n"
                f"        {vendor}: {{vendor_model_id: {name}, price: {{input: 1.0, output: 2.0}}}}\n")

    return f"""
vendors:
  mock-weak: {{type: openai, base_url: "{mock.base_url}", api_key: sk-mock}}
  mock-strong: {{type: openai, base_url: "{mock.base_url}", api_key: sk-mock}}
  dead-strong:
    type: openai
    base_url: "http://127.0.0.1:{dead_port}/v1"
    api_key: sk-mock
    timeouts: {{connect: 1, first_byte: 2, idle: 2, total: 4}}
catalog:
  models:
{model("weak", "mock-weak")}{model("strong", "mock-strong")}{model("strong-down", "dead-strong")}
policies:
  smart:
    strategy: difficulty
    tiers:
      weak: [mocklab/weak]
      strong: [mocklab/strong-down, mocklab/strong]
    difficulty: {{strong_share: 0.3}}
    retry: {{attempts: 1}}
  strict:
    strategy: difficulty
    tiers: {{weak: [mocklab/weak], strong: [mocklab/strong-down]}}
    difficulty: {{threshold: 0.5, fallback_across_tiers: false}}
    retry: {{attempts: 1}}
  lenient:
    strategy: difficulty
    tiers: {{weak: [mocklab/weak], strong: [mocklab/strong-down]}}
    difficulty: {{threshold: 0.5}}
    retry: {{attempts: 1}}
circuit_breaker: {{min_requests: 1000}}
logging: {{level: full}}
simulator: {{enabled: true, time_scale: 0}}
"""


@pytest.fixture(scope="module")
def gw(mock_vendor: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = start_gateway(tmp_path_factory.mktemp("difficulty"), _config(mock_vendor, free_port()))
    yield gateway
    gateway.stop()


def _client(gw: GatewayProcess, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20,
                         default_headers=headers)


def _ask(client: openai.OpenAI, text: str, model: str = "smart", **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **extra)


def test_easy_and_hard_prompts_go_to_their_tiers_with_the_reason(gw: GatewayProcess,
                                                                  prompts: dict[str, str]) -> None:
    client = _client(gw)
    easy = _ask(client, prompts["easy"])
    assert easy.headers["x-interlock-vendor"] == "mock-weak"
    reason = easy.headers["x-interlock-route-reason"]
    assert reason.startswith("difficulty 0.") and "< threshold" in reason and "(strong_share 0.30): weak tier" in reason
    hard = _ask(client, prompts["hard"])
    # The strong tier's first target refuses connections: failover within the tier answers.
    assert hard.headers["x-interlock-vendor"] == "mock-strong"
    reason = hard.headers["x-interlock-route-reason"]
    assert ">= threshold" in reason and "strong tier" in reason and "answered by mock-strong/strong" in reason
    # The log records the score and the tier of each candidate.
    record = gw.record(hard.headers["x-interlock-request-id"])
    trace = record["routing_trace"]
    trace = json.loads(trace) if isinstance(trace, str) else trace
    assert trace["strategy"] == "difficulty" and trace["difficulty"]["tier"] == "strong"
    assert trace["difficulty"]["score"] >= trace["difficulty"]["threshold"]
    assert {c["target"]: c["tier"] for c in trace["candidates"]} == {
        "mock-weak/weak": "weak", "dead-strong/strong-down": "strong", "mock-strong/strong": "strong"}
    assert [a["vendor"] for a in trace["attempts"]] == ["dead-strong", "mock-strong"]


def test_explain_shows_the_score_threshold_and_tier(gw: GatewayProcess, prompts: dict[str, str]) -> None:
    body = {"model": "smart", "messages": [{"role": "user", "content": prompts["hard"]}]}
    status, explained = gw.call("POST", "/v1/route/explain", body)
    assert status == 200, explained
    d = explained["difficulty"]
    assert d["tier"] == "strong" and d["source"] == "score" and d["strong_share"] == 0.3
    assert 0.0 <= d["threshold"] <= d["score"] <= 1.0
    assert d["threshold"] == pytest.approx(threshold_for_share(shared_scorer().quantiles, 0.3), abs=1e-4)
    # Strong first, then the weak tier as failover (fallback_across_tiers defaults to true).
    assert [(p["target"], p["tier"]) for p in explained["plan"]] == [
        ("dead-strong/strong-down", "strong"), ("mock-strong/strong", "strong"), ("mock-weak/weak", "weak")]
    body["messages"] = [{"role": "user", "content": prompts["easy"]}]
    status, explained = gw.call("POST", "/v1/route/explain", body)
    assert explained["difficulty"]["tier"] == "weak" and explained["plan"][0]["target"] == "mock-weak/weak"


def test_force_headers_override_the_score(gw: GatewayProcess, prompts: dict[str, str]) -> None:
    raw = _ask(_client(gw, **{"x-interlock-route-difficulty": "force-strong"}), prompts["easy"])
    assert raw.headers["x-interlock-vendor"] == "mock-strong"
    assert raw.headers["x-interlock-route-reason"].startswith("difficulty: strong tier forced by the request header")
    raw = _ask(_client(gw, **{"x-interlock-route-difficulty": "Force-Weak"}), prompts["hard"])
    assert raw.headers["x-interlock-vendor"] == "mock-weak"
    raw = _ask(_client(gw, **{"x-interlock-route-difficulty": "auto"}), prompts["easy"])
    assert raw.headers["x-interlock-vendor"] == "mock-weak"
    with pytest.raises(openai.BadRequestError) as info:
        _ask(_client(gw, **{"x-interlock-route-difficulty": "strongest"}), prompts["easy"])
    body: Any = info.value.body
    assert body["param"] == "x-interlock-route-difficulty" and "force-weak, force-strong or auto" in body["message"]


def test_a_failing_tier_fails_over_to_the_other_only_when_allowed(gw: GatewayProcess,
                                                                   prompts: dict[str, str]) -> None:
    forced = _client(gw, **{"x-interlock-route-difficulty": "force-strong"})
    with pytest.raises(openai.APIStatusError) as info:
        _ask(forced, prompts["easy"], model="strict")
    assert info.value.status_code in (502, 503, 504)
    record = gw.record(info.value.response.headers["x-interlock-request-id"])
    trace = record["routing_trace"]
    trace = json.loads(trace) if isinstance(trace, str) else trace
    assert {a["vendor"] for a in trace["attempts"]} == {"dead-strong"}
    weak = next(c for c in trace["candidates"] if c["target"] == "mock-weak/weak")
    assert weak["filtered"] == "weak tier (difficulty chose strong; fallback_across_tiers is false)"
    raw = _ask(forced, prompts["easy"], model="lenient")
    assert raw.headers["x-interlock-vendor"] == "mock-weak"
    assert "answered by mock-weak/weak after dead-strong/strong-down" in raw.headers["x-interlock-route-reason"]


def test_the_models_array_still_works_beside_a_difficulty_policy(gw: GatewayProcess,
                                                                   prompts: dict[str, str]) -> None:
    forced = _client(gw, **{"x-interlock-route-difficulty": "force-strong"})
    raw = _ask(forced, prompts["easy"], model="strict", extra_body={"models": ["mocklab/strong"]})
    assert raw.headers["x-interlock-vendor"] == "mock-strong"
    # A difficulty policy as a fallback model is tiered too.
    raw = _ask(_client(gw), prompts["hard"], model="mocklab/strong-down", extra_body={"models": ["smart"]})
    assert raw.headers["x-interlock-vendor"] == "mock-strong"


def test_anthropic_messages_are_scored_on_the_last_user_turn(gw: GatewayProcess, prompts: dict[str, str]) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, timeout=20)
    raw = client.messages.with_raw_response.create(
        model="smart", max_tokens=50, system="You are terse.",
        messages=[{"role": "user", "content": prompts["hard"]}, {"role": "assistant", "content": "Let me see."},
                  {"role": "user", "content": prompts["easy"]}])
    assert raw.headers["x-interlock-vendor"] == "mock-weak"


# ---------------------------------------------------------------- calibration and the text scored


def test_calibration_hits_the_requested_strong_share_on_held_out_prompts() -> None:
    scorer = shared_scorer()
    held = [scorer.score(r["prompt"]) for r in _rows("mmlu.dev.jsonl", "gsm8k.dev.jsonl", "mt-bench.dev.jsonl")]
    for share in (0.1, 0.3, 0.5, 0.8):
        threshold = threshold_for_share(scorer.quantiles, share)  # calibrated on the training prompts
        got = sum(1 for s in held if s >= threshold) / len(held)
        assert abs(got - share) <= 0.05, (share, got)
    # Calibrated on one half of a sample (the operator's traffic), checked on the other half.
    first, second = held[0::2], held[1::2]
    for share in (0.2, 0.3, 0.6):
        threshold = calibrate(first, share)
        assert abs(sum(1 for s in second if s >= threshold) / len(second) - share) <= 0.05
    assert calibrate([0.1, 0.2, 0.3, 0.4], 0.5) == 0.3 and calibrate([0.1, 0.2], 0.0) > 0.2
    assert calibrate([0.1, 0.2], 1.0) == 0.0


def test_the_text_scored_is_the_last_user_message() -> None:
    assert prompt_text({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "one"},
                                     {"role": "assistant", "content": "two"},
                                     {"role": "user", "content": [{"type": "text", "text": "three"},
                                                                  {"type": "image_url", "image_url": {"url": "x"}},
                                                                  {"type": "text", "text": "four"}]},
                                     {"role": "tool", "content": "result", "tool_call_id": "t"}]}) == "three\nfour"
    assert prompt_text({"messages": [{"role": "system", "content": "only a system prompt"}]}) == ""
    assert prompt_text({"messages": "nonsense"}) == ""
    assert prompt_text({"messages": []}) == "" and prompt_text({"messages": ["x", None]}) == ""
    # The last message the user's (the common case, taken first) and a long one: its end is scored.
    assert prompt_text({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}) == "b"
    long = "x" * 40_000 + "the question?"
    for messages in ([{"role": "user", "content": long}],
                     [{"role": "user", "content": long}, {"role": "assistant", "content": "no"}]):
        assert prompt_text({"messages": messages}) == long[-32_000:]
    assert prompt_text({"messages": [{"role": "user", "content": None}]}) == ""


# ---------------------------------------------------------------- config errors


def _policies(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "interlock.yaml"
    path.write_text("simulator: {enabled: true}\npolicies:\n" + text)
    settings = load_settings(path, vendor_table=VENDOR_TABLE, environ={})
    from interlock.app import build_catalog
    return load_policies(settings, build_catalog(settings))


@pytest.mark.parametrize(("text", "where"), [
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1]}}\n",
     "give exactly one of difficulty.threshold"),
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1]}, "
     "difficulty: {threshold: 0.5, strong_share: 0.3}}\n", "give exactly one of difficulty.threshold"),
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1]}, "
     "difficulty: {threshold: 1.5}}\n", "p.difficulty.threshold: a score threshold is in [0, 1]"),
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1]}, "
     "difficulty: {strong_share: 30}}\n", "p.difficulty.strong_share: a share is in [0, 1]"),
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1], strong: [openai/gpt-4.1]}, "
     "difficulty: {threshold: 0.5}}\n", "in both tiers"),
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1-nano]}, difficulty: {threshold: 0.5}}\n",
     "p.tiers.strong: the strong tier needs a non-empty list of targets"),
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1-nano], strong: [nope/x]}, "
     "difficulty: {threshold: 0.5}}\n", "p.tiers.strong[0]"),
    ("  p: {strategy: difficulty, targets: [openai/gpt-4.1], tiers: {weak: [openai/gpt-4.1-nano], "
     "strong: [openai/gpt-4.1]}, difficulty: {threshold: 0.5}}\n", "lists its targets under tiers.weak"),
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1]}, "
     "tier_strategy: difficulty, difficulty: {threshold: 0.5}}\n", "p.tier_strategy"),
    ("  p: {strategy: difficulty, tiers: {weak: [openai/gpt-4.1-nano], strong: [openai/gpt-4.1], medium: []}, "
     "difficulty: {threshold: 0.5}}\n", "medium"),
    ("  p: {targets: [openai/gpt-4.1], difficulty: {threshold: 0.5}}\n",
     "'difficulty' belongs to the difficulty strategy"),
])
def test_a_bad_difficulty_policy_is_refused_with_its_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        _policies(tmp_path, text)
    assert where in str(info.value)


def test_a_difficulty_policy_parses_with_its_defaults(tmp_path: Path) -> None:
    policies = _policies(tmp_path, """  p:
    strategy: difficulty
    tiers: {weak: [openai/gpt-4.1-nano, {model: openai/gpt-4.1-mini, weight: 2}], strong: [openai/gpt-4.1]}
    tier_strategy: cost
    difficulty: {strong_share: 0.25}
""")
    rule = policies["p"].difficulty
    assert rule is not None and rule.tier_strategy == "cost" and rule.fallback_across_tiers
    assert rule.weak == ("openai/gpt-4.1-nano", "openai/gpt-4.1-mini") and rule.strong == ("openai/gpt-4.1",)
    assert rule.strong_share == 0.25
    assert rule.threshold == pytest.approx(threshold_for_share(shared_scorer().quantiles, 0.25))


def test_calibrate_on_recorded_traffic_from_the_cli(gw: GatewayProcess, prompts: dict[str, str]) -> None:
    client = _client(gw)
    for text in (prompts["easy"], prompts["hard"], "What is 2 + 2?", "Prove that there are infinitely many primes."):
        _ask(client, text, model="mocklab/weak")
    gw.record(_ask(client, "One more.", model="mocklab/weak").headers["x-interlock-request-id"])
    env = clean_env(INTERLOCK_HOME=str(gw.home / "state"), INTERLOCK_MASTER_KEY=MASTER_KEY)
    config = gw.home / "interlock.yaml"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "interlock", "policies", "calibrate", *args,
                               "--config", str(config)], capture_output=True, text=True, env=env, timeout=60)

    out = cli("--strong-share", "0.3", "--min-sample", "5")
    assert out.returncode == 0, out.stderr
    assert "recorded requests scored; threshold" in out.stdout and "difficulty: {threshold: " in out.stdout
    few = cli("--strong-share", "0.3", "--min-sample", "100000")
    assert few.returncode == 1 and "at least 100000 are needed" in few.stderr
    bad = cli("--strong-share", "3")
    assert bad.returncode == 2 and "--strong-share" in bad.stderr
    bad = cli("--strong-share", "0.3", "--limit", "0")
    assert bad.returncode == 2 and "--limit" in bad.stderr
