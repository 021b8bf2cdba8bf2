"""The difficulty router's scorer (interlock.routing.difficulty_model) and the router metrics (bench/router_metrics.py)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from interlock.routing import difficulty_model
from interlock.routing.difficulty_model import (
    WEIGHTS_PATH,
    DifficultyScorer,
    ScorerUnavailable,
    shared_scorer,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "routing"
sys.path.insert(0, str(ROOT / "bench"))

import router_metrics as rm  # noqa: E402

MMLU_PROMPT = (
    "Which of the following is NOT a property of a group?\nA. closure\nB. associativity\nC. commutativity\n"
    "D. existence of inverses\nAnswer:"
)
GSM8K_PROMPT = ("Tom has 3/4 of a pizza and eats 25% of it. His sister gets twice what is left. "
                "How much pizza, in slices of 1/8, does his sister get?")


def test_weights_load_offline_and_score_in_unit_interval() -> None:
    scorer = DifficultyScorer.load()
    assert scorer.name.startswith("interlock-difficulty-1")
    assert len(scorer.quantiles) == 101
    assert list(scorer.quantiles) == sorted(scorer.quantiles)
    assert 0.0 <= scorer.quantiles[0] <= scorer.quantiles[-1] <= 1.0
    for text in (MMLU_PROMPT, GSM8K_PROMPT, "Write a haiku about autumn.", "x" * 100_000):
        assert 0.0 <= scorer.score(text) <= 1.0
    assert difficulty_model.is_choice(MMLU_PROMPT) and not difficulty_model.is_choice(GSM8K_PROMPT)
    assert shared_scorer() is shared_scorer()


def test_deterministic() -> None:
    a, b = DifficultyScorer.load(), DifficultyScorer.load(WEIGHTS_PATH)
    for text in (MMLU_PROMPT, GSM8K_PROMPT):
        assert a.score(text) == a.score(text) == b.score(text)


@pytest.mark.parametrize("text", ["", " ", "\n\n", "\u2028", "\x00", "😀" * 500, "日本語の質問は何ですか\uff1f",
                                  "مرحبا بالعالم", "A.\nB.\nC.\nD.", "\ud800", "ǅ" * 10, "1" * 5000])
def test_empty_and_unicode_input(text: str) -> None:
    s = shared_scorer().score(text)
    assert 0.0 <= s <= 1.0 and math.isfinite(s)


EDGE_TEXTS = [
    "", "In two sentences, what does an LLM gateway do?", "2half half2 xhalf halfx Two-thirds, PERCENT percentage",
    "1,000.50 1.2.3 a.5 .5 _5 12345678 $3 50% 3/4", "NASA ABCd ABC_ _ABC ABC1 (ABC) AB ABCD EFG", "A\nBCD\nEFGH",
    "Which is NOT true?\nA. one\nB. two\nC. three\nD. four", "tabs\tand\x0bvertical\x0cfeeds.  End! Really?",
    " \x1cfile\x1dgroup\x1erecord\x1funit\r\nend \x00 x ", "7 8.0 9,5 10..11 12,,13 1.2.3.4 0042 3/4/5 5/ /6",
    MMLU_PROMPT, GSM8K_PROMPT,
]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_ascii_fast_path_counts_as_the_token_path(text: str) -> None:
    """The open head skips cutting tokens on ASCII text (two regexes and C loops count what it needs); the
    features must be the ones the token path (the choice head's, and the training script's) gives."""
    assert text.isascii()
    toks = difficulty_model.tokens(text)
    # Without long_words (the shipped open head's case), the words are counted, not made.
    for skip in (frozenset(), frozenset({"long_words"})):
        for choice in (False, True):
            fast = difficulty_model._dense_values(text, None, choice, skip)
            assert fast == difficulty_model._dense_values(text, toks, choice, skip)
    assert difficulty_model._dense_counts(text, None, False, frozenset({"long_words"}))[0][1] == len(text.split())


def test_ascii_fast_path_on_the_dev_prompts() -> None:
    checked = 0
    for name in ("mmlu", "gsm8k", "mt-bench"):
        for line in filter(None, (DATA / f"{name}.dev.jsonl").read_text().split("\n")):
            text = json.loads(line)["prompt"]
            if text.isascii():
                toks = difficulty_model.tokens(text)
                assert difficulty_model._dense_values(text, None, None) == \
                    difficulty_model._dense_values(text, toks, None), text[:80]
                checked += 1
    assert checked > 1000


@pytest.mark.parametrize("text", [*EDGE_TEXTS[4:6], "ÉABC ABCÉ xABC", "ABC", "", "DEF-GHI jKLM"])
def test_upper_word_regex_matches_the_word_boundary_one(text: str) -> None:
    import re

    assert difficulty_model._UPPER_WORD.findall(text) == re.findall(r"\b[A-Z]{3,}\b", text)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ScorerUnavailable, match=r"nope\.json.*missing"):
        DifficultyScorer.load(path)


@pytest.mark.parametrize(("content", "problem"), [
    ("{", "cannot read"),
    ("[]", "malformed"),
    (json.dumps({"format": 99}), "format 99"),
    (json.dumps({"format": 1, "name": "x"}), "malformed.*heads"),
])
def test_malformed_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "weights.json"
    path.write_text(content)
    with pytest.raises(ScorerUnavailable, match=rf"weights\.json.*{problem}"):
        DifficultyScorer.load(path)


@pytest.mark.parametrize("bias", [[0.0] * 7, ["0.5"], [float("nan")], [None]])
def test_bad_vector_is_malformed(tmp_path: Path, bias: list[object]) -> None:
    raw = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    raw["heads"]["open"]["bias"] = bias
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ScorerUnavailable, match=r"open\.bias"):
        DifficultyScorer.load(path)


# Metrics. Five prompts, cells (weak, strong): (T,T), (F,T), (F,T), (F,F), (T,F): r_w = 0.4, r_s = 0.6.
WEAK = [1.0, 0.0, 0.0, 0.0, 1.0]
STRONG = [1.0, 1.0, 1.0, 0.0, 0.0]


def test_curve_and_apgr_by_hand() -> None:
    # Decile edges of [0, .1, .2, .8, .9]: 0, .04, .08, .12, .16, .2, .44, .68, .82, .86, .9 (last compared with >).
    points = rm.curve([0.2, 0.9, 0.8, 0.1, 0.0], WEAK, STRONG)
    assert [round(p.strong_share, 6) for p in points] == [1, .8, .8, .6, .6, .6, .4, .4, .2, .2, 0]
    assert [round(p.quality, 6) for p in points] == [.6, .8, .8, .8, .8, .8, .8, .8, .6, .6, .4]
    assert [round(p.pgr, 6) for p in points] == [1, 2, 2, 2, 2, 2, 2, 2, 1, 1, 0]
    # Trapezoids over the shares 0, .2, .4, .6, .8, 1: .1 + .14 + .16 + .16 + .14 = .7; (.7 - .4) / (.6 - .4).
    assert rm.apgr(points, 0.4, 0.6) == pytest.approx(1.5)
    # np.interp(.5, qualities by share, shares): between (0, .4) and (.2, .6).
    assert rm.cpt(points, 0.4, 0.6, 0.5) == pytest.approx(0.1)
    assert rm.cpt(points, 0.4, 0.6, 0.8) == pytest.approx(0.16)


def test_constant_scores_and_random_give_one_half() -> None:
    s = rm.evaluate([0.3] * 5, WEAK, STRONG)  # 100% strong at every edge but the last: a straight line
    assert s.apgr == pytest.approx(0.5)
    weak = [float(i % 3 == 0) for i in range(3000)]
    strong = [float(i % 2 == 0) for i in range(3000)]
    rand = rm.summarize(rm.random_curve(weak, strong), weak, strong)
    assert rand.apgr == pytest.approx(0.5, abs=0.03)
    assert rand.cpt50 == pytest.approx(0.5, abs=0.05)


def test_oracle_beats_all_weak_order() -> None:
    gain = [s - w for w, s in zip(WEAK, STRONG, strict=True)]
    best = rm.evaluate(gain, WEAK, STRONG).apgr
    worst = rm.evaluate([-g for g in gain], WEAK, STRONG).apgr
    assert best > 1.0 > 0.5 > worst


def _dev(benchmark: str) -> list[dict[str, object]]:
    path = DATA / f"{benchmark}.dev.jsonl"
    # The routing data lives beside the repository on every machine (the brief): missing is a failure, not a skip.
    assert path.exists(), f"{path} not present"
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()]


@pytest.mark.parametrize("benchmark", ["mmlu", "gsm8k"])
def test_beats_random_and_length_on_dev(benchmark: str) -> None:
    rows = _dev(benchmark)
    weak = [float(bool(r["weak_correct"])) for r in rows]
    strong = [float(bool(r["strong_correct"])) for r in rows]
    scorer = shared_scorer()
    shipped = rm.evaluate([scorer.score(str(r["prompt"])) for r in rows], weak, strong)
    length = rm.evaluate([float(len(str(r["prompt"]))) for r in rows], weak, strong)
    rand = rm.summarize(rm.random_curve(weak, strong), weak, strong)
    assert shipped.apgr > rand.apgr + 0.05
    assert shipped.apgr > length.apgr
    assert shipped.cpt50 < rand.cpt50 and shipped.cpt50 < length.cpt50


def test_features_without_weight_are_not_computed_and_change_nothing() -> None:
    """A head computes no dense feature it has no weight for (the costliest are regex passes); its gains are
    the ones computing them gives."""
    import dataclasses

    scorer = shared_scorer()
    for head in (scorer._choice, scorer._open):
        assert head.skip == frozenset(difficulty_model.DENSE_NAMES) - set(head.dense)
        full = dataclasses.replace(head, skip=frozenset(), skip_mask=0)
        for text in [*EDGE_TEXTS, "Ünïcödé NASA math: 3 + 4 = 7. Really? Yes!", "x " * 3000]:
            choice = difficulty_model.is_choice(text)
            assert head.gain(text, choice) == full.gain(text, choice)


def test_count_tables_score_as_the_dot_product() -> None:
    """The open head scores a prompt without options from weight-times-log1p tables by count; its gains must be
    exactly (not nearly) the dot product's, on the dev prompts, long prompts (counts past the tables) and edges."""
    import dataclasses

    head = shared_scorer()._open
    assert head.count_tables, "the shipped open head has no terms: it must take the table path"
    plain = dataclasses.replace(head, count_tables=())
    texts = [*EDGE_TEXTS, "x " * 3000, "7 " * 2000, "Ünïcödé 3 + 4 = 7?", "half " * 1500 + "25% of $3"]
    for name in ("gsm8k", "mt-bench"):
        texts += [json.loads(line)["prompt"] for line in
                  filter(None, (DATA / f"{name}.dev.jsonl").read_text().split("\n"))]
    for text in texts:
        if not difficulty_model.is_choice(text):
            assert head.gain(text, False) == plain.gain(text, False), text[:80]


def test_score_clamps_and_dispatches_as_gain() -> None:
    scorer = shared_scorer()
    for text in [*EDGE_TEXTS, "x" * 100_000, "\n\n"]:
        assert scorer.score(text) == min(1.0, max(0.0, (1.0 + scorer.gain(text)) / 2.0))


def test_threshold_phrase_is_memoised_within_a_bound() -> None:
    from interlock.core import trace
    from interlock.core.trace import DifficultyDecision

    assert DifficultyDecision(0.4623, 0.5716, 0.3, "weak").sentence() == \
        "difficulty 0.46 < threshold 0.57 (strong_share 0.30): weak tier"
    assert DifficultyDecision(0.9, 0.555, None, "strong").sentence() == "difficulty 0.90 >= threshold 0.56: strong tier"
    for i in range(600):  # a console replay may try any number of thresholds
        DifficultyDecision(0.5, i / 600, None, "weak").sentence()
    assert trace._threshold_phrase.cache_info().currsize <= 256
    assert DifficultyDecision(0.5, 599 / 600, None, "weak").sentence() == "difficulty 0.50 < threshold 1.00: weak tier"


def test_two_decimals_formats_as_the_format_spec() -> None:
    """The route reason's score comes from a table: it must read as ``f"{x:.2f}"`` for any float, at and
    around every rounding midpoint, the exact ties of binary fractions (0.125) and outside [0, 1]."""
    import random

    from interlock.core.trace import two_decimals

    rng = random.Random(25)
    xs = [rng.random() for _ in range(20_000)] + [0.0, -0.0, 1.0, 0.125, 0.375, 0.625, 0.875, 1e-300, 5e-324,
                                                   -0.001, 1.004, 1.006, 2.5, -3.0, math.inf, -math.inf, math.nan]
    for k in range(101):
        mid = (k + 0.5) / 100
        x = mid
        for _ in range(4):
            x = math.nextafter(x, -math.inf)
        for _ in range(9):
            xs.append(x)
            x = math.nextafter(x, math.inf)
        xs += [k / 100, math.nextafter(k / 100, 0.0), math.nextafter(k / 100, 2.0)]
    for x in xs:
        assert two_decimals(x) == f"{x:.2f}", repr(x)


def test_the_reason_after_the_score_is_memoised_within_a_bound() -> None:
    from interlock.core.policy import DifficultyRule
    from interlock.routing import difficulty

    for i in range(600):
        rule = DifficultyRule(("a",), ("b",), i / 600, 0.3)
        decision = difficulty.decide(rule, {"messages": [{"role": "user", "content": "hi"}]}, None, 0.5)
        reason = difficulty.sentence(decision, "first in priority order", 1, 2)
        assert reason == decision.sentence() + "; the only capable target in the tier, then 1 of the other tier"
    assert difficulty._after_score.cache_info().currsize <= 256
