"""The learned prompt-injection classifier: a linear head over a small sentence encoder's features.

Features, per window of the text: the mean-pooled outputs of two of all-MiniLM-L6-v2's layers (see
``encoder.py``), and for the direct head the rule-based detector's score. Two logistic-regression
heads, trained by ``scripts/train_injection_head.py`` on the train split only: ``direct`` for the
user's own turns, ``indirect`` for data the model reads (tool results, retrieved documents, e-mails).
A text's probability is the highest over its windows.

The head file names the model it was trained on (package, version, sha256 of ``model.safetensors``):
a head is refused for any other model, since its weights would mean nothing there.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from interlock.guardrails.encoder import shared_encoder
from interlock.guardrails.modelfiles import ModelUnavailable, file_sha256, model_dir

HEAD_PATH = Path(__file__).with_name("injection_head.json")
HEAD_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Head:
    """``P(injection) = sigmoid(weights . features + rule_weight * rule_score + bias)``; ``threshold`` is the
    probability chosen on train (cross-validated) at which the head flags on its own."""

    weights: npt.NDArray[np.float32]
    rule_weight: float
    bias: float
    threshold: float
    #: Tokens per window and between window starts, as in training.
    window: int
    stride: int

    @classmethod
    def parse(cls, raw: Any, size: int, where: str) -> Head:
        try:
            weights = np.asarray(raw["weights"], dtype=np.float32)
            head = cls(weights, float(raw["rule_weight"]), float(raw["bias"]), float(raw["threshold"]),
                       int(raw["window"]), int(raw["stride"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailable(f"{where}: malformed head ({exc!r})") from None
        if weights.shape != (size,) or not np.isfinite(weights).all() or not 0.0 < head.threshold < 1.0 \
                or not 2 < head.stride + 2 <= head.window:
            raise ModelUnavailable(f"{where}: {weights.shape} weights, threshold {head.threshold}, window "
                                   f"{head.window}, stride {head.stride}; expected ({size},) finite weights, "
                                   "a threshold in (0, 1) and 0 < stride <= window - 2")
        return head


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class InjectionClassifier:
    """Loads the encoder and the heads once (about 0.25 s; +135 MB resident per worker, 225 MB at the peak
    while loading); ``probability`` is synchronous, CPU-bound work on one core: ~10 ms for a short prompt,
    ~100 ms per 256-token window of a long text (at most 8 windows)."""

    def __init__(self, head_path: Path | None = None, model: Path | None = None) -> None:
        head_path = head_path or HEAD_PATH
        try:
            meta = json.loads(head_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"cannot read the injection classifier's head {head_path}: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != HEAD_FORMAT:
            raise ModelUnavailable(f"{head_path}: not a head of format {HEAD_FORMAT}")
        directory = model or model_dir()
        trained_on = meta.get("model") or {}
        want = trained_on.get("sha256")
        try:
            have = file_sha256(directory / "model.safetensors")
        except OSError as exc:
            raise ModelUnavailable(f"cannot read the classifier's model: {exc}") from None
        if want != have:
            raise ModelUnavailable(
                f"{head_path} was trained on {trained_on.get('package')}=={trained_on.get('version')} "
                f"(model.safetensors sha256 {want}), but {directory / 'model.safetensors'} has sha256 {have}: "
                f"install that version, or retrain with scripts/train_injection_head.py")
        self.encoder = shared_encoder(directory)
        try:
            self.layers = tuple(int(n) for n in meta["layers"])
        except (KeyError, TypeError, ValueError):
            raise ModelUnavailable(f"{head_path}: no layers list") from None
        size = len(self.layers) * self.encoder.hidden
        heads = meta.get("heads") or {}
        self.direct = Head.parse(heads.get("direct"), size, f"{head_path}: heads.direct")
        self.indirect = Head.parse(heads.get("indirect"), size, f"{head_path}: heads.indirect")
        self.meta = meta

    def probability(self, text: str, rule_score: float, indirect: bool = False) -> float:
        """P(injection) of ``text`` (the highest over its windows), given the rules' score of it."""
        head = self.indirect if indirect else self.direct
        feats = self.encoder.features(text, self.layers, head.window, head.stride)
        logits = feats @ head.weights + (head.rule_weight * rule_score + head.bias)
        z = float(logits.max())
        return 1.0 / (1.0 + math.exp(-z)) if z >= -700 else 0.0

    def score(self, text: str, rule_score: float, indirect: bool, aligned_to: float) -> float:
        """The probability, moved on the logit scale so that the head's own threshold falls on
        ``aligned_to`` (the detector's default threshold): one configured threshold then moves rules and
        classifier together."""
        head = self.indirect if indirect else self.direct
        p = self.probability(text, rule_score, indirect)
        if p <= 0.0 or p >= 1.0:
            return p
        z = _logit(p) - _logit(head.threshold) + _logit(aligned_to)
        return 1.0 / (1.0 + math.exp(-z)) if z >= -700 else 0.0
