"""Trains the difficulty router's scorer on the train split and writes its weights file.

    PYTHONPATH=src .venv/bin/python scripts/train_router.py [--data ../shared/routing] [--out PATH]

Reads only ``{mmlu,gsm8k,mt-bench}.train.jsonl`` (the dev split is for bench/router.py). Deterministic: one
thread, fixed folds, deterministic solvers (lbfgs, sparse_cg), weights rounded to DIGITS decimals, sorted
keys, so the same data give the byte-identical file (``make train-router``). Needs the ``dev`` extra (numpy,
scipy, scikit-learn). About 5 minutes on one core.

The model is src/interlock/routing/difficulty_model.py's (see its docstring): a ``choice`` head for
multiple-choice prompts (fitted on MMLU train) and an ``open`` head for the rest (fitted on GSM8K train;
MT-Bench's 37 train prompts have judge scores, not outcomes, and only enter the score quantiles, where the
MMLU and GSM8K prompts count with their cross-validated scores, as new prompts would be scored). For each
head, GRID's configurations (kind: ridge on the gain, ``linear``, with MMLU's target mixing the prompt's
subject mean gain; multinomial logistic regression over the four cells; strong/weak logistic pair;
regularisation; weights of the word and dense features) are compared by the APGR of 5-fold cross-validated
predictions on train (folds stratified by outcome cell, identical prompts kept in one fold; RouteLLM's
metric, bench/router_metrics.py), and the best is fitted on all of the head's train rows. Ties go to the
configuration listed first.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import hashlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedGroupKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

import router_metrics as rm  # noqa: E402
from interlock.routing.difficulty_model import (  # noqa: E402
    FORMAT,
    WEIGHTS_PATH,
    DifficultyScorer,
    dense_features,
    is_choice,
    terms,
)

DEFAULT_DATA = ROOT.parent / "shared" / "routing"
BENCHMARKS = ("mmlu", "gsm8k", "mt-bench")
SEED, FOLDS = 20240626, 5
MIN_DF = 2
MAX_TERMS = 30_000  # the most frequent terms of the head's train prompts (bounds the file's size)
DIGITS = 4  # decimals kept of each weight
ATTRIBUTION = (
    "Contains data derived from RouteLLM (https://github.com/lm-sys/RouteLLM, commit 0b64fdafe049), "
    "(c) the RouteLLM authors and contributors, licensed under the Apache License 2.0. "
    "Modifications: converted to JSONL, decontaminated prompts dropped, split into train/dev/hidden sets. "
    "Paper: I. Ong, A. Almahairi, V. Wu, W.-L. Chiang, T. Wu, J. E. Gonzalez, M. W. Kadous, I. Stoica, "
    "\"RouteLLM: Learning to Route LLMs with Preference Data\", arXiv:2406.18665."
)
NAME = "interlock-difficulty-1 (text features, trained on RouteLLM MMLU+GSM8K+MT-Bench train)"
# Shrinkage of a subject's mean gain towards the overall mean, in prompts (a subject has ~120 train prompts).
SHRINK = 20


@dataclass(frozen=True)
class Config:
    """One point of the grid. ``kind`` as in the model; ``reg``: C of a logistic regression or alpha of the ridge
    (``linear``); ``words``/``dense``: the weights of the word and the dense features; ``mix``: for ``linear``,
    the target's share of the prompt's subject mean gain (the rest is the prompt's own gain, s - w)."""

    kind: str
    reg: float
    words: float
    dense: float = 1.0
    mix: float = 0.0
    blend: float = 0.0  # "blend": the multinomial's share (C = BLEND_C) of the standardised average
    drop: tuple[str, ...] = ()  # dense features left out (the scorer then does not compute them)

    def __str__(self) -> str:
        return (f"{self.kind:11s} {'C' if self.kind in ('multinomial', 'pair') else 'alpha'}={self.reg:<5g} "
                f"words={self.words:<4g} dense={self.dense:<4g} subject-mix={self.mix:<4g}"
                + (f" multinomial-share={self.blend:g}" if self.kind == "blend" else "")
                + (f" without {','.join(self.drop)}" if self.drop else ""))


BLEND_C = 1.0
#: The dense features that cost the scorer most per request (regex passes and a Python loop over the words,
#: bench/pipeline.py --instructions): the open head is also tried without them.
COSTLY = ("long_words", "math", "sentences", "upper_words")
GRID: dict[str, list[Config]] = {
    "choice": [Config("multinomial", c, 1.0, 0.1) for c in (0.5, 1.0)]
    + [Config("linear", a, 1.0, d, m) for a in (1.0, 3.0) for d in (0.0, 0.1) for m in (1.0, 0.75)]
    + [Config("blend", 3.0, 1.0, 0.1, 1.0, b) for b in (0.25, 0.5, 0.75)],
    "open": [Config(k, c, w, drop=d) for k in ("multinomial", "pair") for c in (0.03, 0.1, 0.3) for w in (0.0, 0.5)
             for d in ((), COSTLY)]
    + [Config("linear", a, w, drop=d) for a in (10.0, 100.0) for w in (0.0, 0.5) for d in ((), COSTLY)],
}
HEAD_BENCHMARK = {"choice": "mmlu", "open": "gsm8k"}


@dataclass
class Row:
    text: str
    benchmark: str
    weak: float
    strong: float
    cell: int  # 0 (F,F), 1 (F,T), 2 (T,F), 3 (T,T); -1 for MT-Bench
    subject: str
    tf: dict[str, int]
    dense: dict[str, float]


def load(data: Path) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    files: dict[str, Any] = {}
    for bench in BENCHMARKS:
        path = data / f"{bench}.train.jsonl"
        raw = path.read_bytes()
        lines = [ln for ln in raw.decode("utf-8").split("\n") if ln.strip()]  # not splitlines(): U+2028 in text
        files[path.name] = {"rows": len(lines), "sha256": hashlib.sha256(raw).hexdigest()}
        for line in lines:
            r = json.loads(line)
            if bench == "mt-bench":
                weak, strong, cell = float(r["weak_score"]), float(r["strong_score"]), -1
            else:
                weak, strong = float(r["weak_correct"]), float(r["strong_correct"])
                cell = int(weak) * 2 + int(strong)
            rows.append(Row(r["prompt"], bench, weak, strong, cell, r["subject"], terms(r["prompt"]),
                            dense_features(r["prompt"])))
    return rows, files


class Design:
    """The head's features: vocabulary and idf from the fitting rows, dense features standardised."""

    def __init__(self, rows: list[Row], word_weight: float, dense_weight: float, drop: tuple[str, ...] = ()) -> None:
        df: dict[str, int] = {}
        for r in rows:
            for t in r.tf:
                df[t] = df.get(t, 0) + 1
        kept = sorted((t for t, c in df.items() if c >= MIN_DF), key=lambda t: (-df[t], t))[:MAX_TERMS]
        self.vocab = {t: j for j, t in enumerate(sorted(kept))} if word_weight > 0 else {}
        n = len(rows)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in sorted(self.vocab)]) * word_weight
        self.dense_names = sorted(k for k in rows[0].dense if k not in drop)
        d = self.raw_dense(rows)
        self.mean, self.scale = d.mean(axis=0), d.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        self.scale /= dense_weight if dense_weight > 0 else 1.0
        self.dense_on = dense_weight > 0

    def raw_dense(self, rows: list[Row]) -> np.ndarray:
        return np.array([[r.dense[k] for k in self.dense_names] for r in rows])

    def matrix(self, rows: list[Row]) -> sp.csr_matrix:
        ri, ci, vals = [], [], []
        for i, r in enumerate(rows):
            norm = math.sqrt(sum((1 + math.log(c)) ** 2 for c in r.tf.values())) or 1.0
            for t, c in r.tf.items():
                j = self.vocab.get(t)
                if j is not None:
                    ri.append(i)
                    ci.append(j)
                    vals.append((1 + math.log(c)) / norm * self.idf[j])
        words = sp.csr_matrix((vals, (ri, ci)), shape=(len(rows), len(self.vocab)))
        dense = (self.raw_dense(rows) - self.mean) / self.scale * self.dense_on
        return sp.hstack([words, sp.csr_matrix(dense)]).tocsr()


def subject_gains(rows: list[Row]) -> np.ndarray:
    """Per row, the mean gain (s - w) of its subject's rows, shrunk towards the mean of all (SHRINK prompts)."""
    gain = np.array([r.strong - r.weak for r in rows])
    overall = float(gain.mean())
    per: dict[str, list[float]] = {}
    for r, g in zip(rows, gain, strict=True):
        per.setdefault(r.subject, []).append(float(g))
    mean = {k: (sum(v) + SHRINK * overall) / (len(v) + SHRINK) for k, v in per.items()}
    return np.array([mean[r.subject] for r in rows])


Model = LogisticRegression | Ridge


@dataclass
class Fitted:
    design: Design
    models: list[Model]
    blend: tuple[float, float, float] = (0.0, 0.0, 0.0)  # "blend": a, b, c as in the model


def fit(rows: list[Row], cfg: Config) -> Fitted:
    design = Design(rows, cfg.words, cfg.dense, cfg.drop)
    x = design.matrix(rows)
    cells = np.array([r.cell for r in rows])
    models: list[Model]
    if cfg.kind in ("linear", "blend"):
        own = np.array([r.strong - r.weak for r in rows])
        target = cfg.mix * subject_gains(rows) + (1 - cfg.mix) * own if cfg.mix else own
        models = [Ridge(alpha=cfg.reg, solver="sparse_cg", tol=1e-8, max_iter=20000).fit(x, target)]
        if cfg.kind == "blend":
            models.append(LogisticRegression(C=BLEND_C, max_iter=5000).fit(x, cells))
            lin = models[0].predict(x)
            p = models[1].predict_proba(x)
            multi = p[:, 1] - p[:, 2]
            # (1 - share) * z(linear) + share * z(multinomial), put back on the linear gain's scale.
            sl, sm = float(lin.std()), float(multi.std())
            a, b = 1.0 - cfg.blend, cfg.blend * sl / sm
            return Fitted(design, models, (a, b, float(lin.mean()) * (1 - a) - b * float(multi.mean())))
    elif cfg.kind == "multinomial":
        models = [LogisticRegression(C=cfg.reg, max_iter=5000).fit(x, cells)]
    else:
        models = [LogisticRegression(C=cfg.reg, max_iter=5000).fit(x, np.isin(cells, (1, 3))),  # strong right
                  LogisticRegression(C=cfg.reg, max_iter=5000).fit(x, np.isin(cells, (2, 3)))]  # weak right
    return Fitted(design, models)


def gains(fitted: Fitted, rows: list[Row]) -> np.ndarray:
    models = fitted.models
    x = fitted.design.matrix(rows)
    m = models[0]
    if isinstance(m, Ridge):
        lin = m.predict(x)
        if len(models) == 2:
            p = models[1].predict_proba(x)
            a, b, c = fitted.blend
            lin = a * lin + b * (p[:, 1] - p[:, 2]) + c
        return np.clip(lin, -1.0, 1.0)
    if len(models) == 1:
        p = m.predict_proba(x)
        return p[:, 1] - p[:, 2]
    return m.predict_proba(x)[:, 1] - models[1].predict_proba(x)[:, 1]


def cross_validated(rows: list[Row], cfg: Config) -> np.ndarray:
    texts = [r.text for r in rows]
    groups = {t: i for i, t in enumerate(sorted(set(texts)))}
    out = np.zeros(len(rows))
    folds = StratifiedGroupKFold(FOLDS, shuffle=True, random_state=SEED)
    for train, test in folds.split(texts, [r.cell for r in rows], [groups[t] for t in texts]):
        out[test] = gains(fit([rows[i] for i in train], cfg), [rows[i] for i in test])
    return out


def figures(rows: list[Row], scores: Any) -> rm.Summary:
    return rm.evaluate([float(s) for s in scores], [r.weak for r in rows], [r.strong for r in rows])


def export(fitted: Fitted, kind: str) -> dict[str, Any]:
    """Weights with idf and standardisation folded in, rounded; multinomial logits taken against (T,T)."""
    design, models = fitted.design, fitted.models
    m = models[0]
    if kind == "linear":
        coef, bias = np.atleast_2d(m.coef_), np.atleast_1d(m.intercept_)
    elif kind == "blend":
        mm = models[1]
        coef = np.vstack([np.atleast_2d(m.coef_), mm.coef_[:3] - mm.coef_[3]])
        bias = np.concatenate([np.atleast_1d(m.intercept_), mm.intercept_[:3] - mm.intercept_[3]])
    elif kind == "multinomial":
        coef, bias = m.coef_[:3] - m.coef_[3], m.intercept_[:3] - m.intercept_[3]
    else:
        coef = np.vstack([m.coef_[0] for m in models])
        bias = np.array([m.intercept_[0] for m in models])
    nv = len(design.vocab)
    on = float(design.dense_on)
    words, dense = coef[:, :nv] * design.idf, coef[:, nv:] / design.scale * on
    bias = bias - (coef[:, nv:] * design.mean / design.scale * on).sum(axis=1)

    def r(v: Any) -> list[float]:
        return [round(float(x), DIGITS) + 0.0 for x in v]

    term_weights = {t: r(words[:, j]) for t, j in design.vocab.items()}
    extra = {"blend": [round(v, 6) + 0.0 for v in fitted.blend]} if kind == "blend" else {}
    return {
        **extra,
        "kind": kind,
        "bias": r(bias),
        "dense": {k: w for j, k in enumerate(design.dense_names) if any(w := r(dense[:, j]))},
        "terms": {t: w for t, w in term_weights.items() if any(w)},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    rows, files = load(args.data)
    heads: dict[str, Any] = {}
    chosen: dict[str, Any] = {}
    held_out: dict[int, float] = {}  # row index -> the chosen configuration's cross-validated score
    for head, bench in HEAD_BENCHMARK.items():
        head_rows = [r for r in rows if r.benchmark == bench]
        assert all(is_choice(r.text) == (head == "choice") for r in head_rows), f"{bench} rows of another shape"
        best: tuple[float, Config, np.ndarray] | None = None
        for cfg in GRID[head]:
            t0 = time.monotonic()
            oof = cross_validated(head_rows, cfg)
            s = figures(head_rows, oof)
            print(f"cv {bench:6s} {cfg}  APGR {s.apgr:.3f}  CPT50 {s.cpt50:.1%}  CPT80 {s.cpt80:.1%}  "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
            if best is None or s.apgr > best[0]:
                best = (s.apgr, cfg, oof)
        assert best is not None
        cfg = best[1]
        index = [i for i, r in enumerate(rows) if r.benchmark == bench]
        held_out.update(zip(index, (min(1.0, max(0.0, (1.0 + float(g)) / 2.0)) for g in best[2]), strict=True))
        heads[head] = export(fit(head_rows, cfg), cfg.kind)
        chosen[head] = {"kind": cfg.kind, "reg": cfg.reg, "words": cfg.words, "dense": cfg.dense, "mix": cfg.mix,
                        "cv_apgr": round(best[0], 4), "terms": len(heads[head]["terms"])}
        if cfg.drop:
            chosen[head]["without"] = list(cfg.drop)
        if cfg.kind == "blend":
            chosen[head].update(multinomial_share=cfg.blend, multinomial_C=BLEND_C)
        print(f"chosen for {head}: {chosen[head]}", flush=True)
    weights: dict[str, Any] = {
        "format": FORMAT,
        "name": NAME,
        "label": "gain = P(strong right) - P(weak right) = P(F,T) - P(T,F); score = (1 + gain) / 2",
        "features": {"min_df": MIN_DF, "max_terms": MAX_TERMS, "subject_shrink": SHRINK, "digits": DIGITS, "folds": FOLDS, "seed": SEED,
                     "heads": chosen},
        "heads": heads,
        "quantiles": [0.0] * 101,
        "trained_on": {"files": files, "split": "train", "fitted": "choice: mmlu.train; open: gsm8k.train; "
                       "quantiles: all three train files (mmlu and gsm8k by their 5-fold cross-validated scores)"},
        "attribution": ATTRIBUTION,
    }
    # Quantiles for calibration: a fitted head scores its own train prompts more spread out than new ones, so
    # those prompts count with their cross-validated scores; the rest (MT-Bench) with the shipped scorer's.
    scorer = DifficultyScorer._parse(weights)
    scores = np.array([held_out[i] if i in held_out else scorer.score(r.text) for i, r in enumerate(rows)])
    weights["quantiles"] = [round(float(q), 6) for q in np.percentile(scores, np.arange(101))]
    text = json.dumps(weights, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()) / 1e6:.2f} MB)")
    for bench in ("mmlu", "gsm8k"):
        b = [r for r in rows if r.benchmark == bench]
        s = figures(b, [scorer.score(r.text) for r in b])
        print(f"train (fitted, not held out) {bench}: APGR {s.apgr:.3f} CPT50 {s.cpt50:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
