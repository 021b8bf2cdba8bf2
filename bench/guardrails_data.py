"""Loading the guardrails data (../shared/guardrails) and the metrics bench/guardrails.py prints."""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "guardrails"
PI_SOURCES = ("deepset", "notinject", "bipia_email", "garak", "gandalf_ignore_instructions", "gpteacher_benign")
# Indirect-injection data: the text is an e-mail the model reads, not the caller's prompt.
INDIRECT_SOURCES = frozenset({"bipia_email"})

# Presidio entity types and the detector's types they correspond to.
PRESIDIO_TYPES = ("CREDIT_CARD", "IBAN_CODE", "US_SSN", "EMAIL_ADDRESS", "IP_ADDRESS")

# Nosey Parker rule names (entity types) per secret subtype the detector has a shape for.
NOSEYPARKER_TYPES: dict[str, tuple[str, ...]] = {
    "OPENAI_KEY": ("OpenAI API Key",),
    "ANTHROPIC_KEY": ("Anthropic API Key",),
    "AWS_ACCESS_KEY": ("AWS API Key", "AWS API Credentials"),
    "AWS_SECRET_KEY": ("AWS Secret Access Key",),
    "GITHUB_TOKEN": ("GitHub Personal Access Token", "GitHub OAuth Access Token", "GitHub App Token",
                     "GitHub Refresh Token", "GitHub Personal Access Token (fine-grained permissions)"),
    "SLACK_TOKEN": ("Slack Bot Token", "Slack Legacy Bot Token", "Slack User Token", "Slack App Token",
                    "Slack Legacy Token", "Slack Legacy Workspace Token"),
    "SLACK_WEBHOOK": ("Slack Webhook",),
    "STRIPE_KEY": ("Stripe API Key", "Stripe API Test Key"),
    "GOOGLE_API_KEY": ("Google API Key",),
    "PRIVATE_KEY": ("PEM-Encoded Private Key",),
    "JWT": ("JSON Web Token (base64url-encoded)",),
}
VENDOR_KEY_TYPES = ("OPENAI_KEY", "ANTHROPIC_KEY", "AWS_ACCESS_KEY", "GITHUB_TOKEN", "SLACK_TOKEN",
                    "SLACK_WEBHOOK", "STRIPE_KEY", "GOOGLE_API_KEY")


@dataclass
class PiRow:
    text: str
    injection: bool
    source: str


def load_pi(data: Path, split: str) -> list[PiRow]:
    rows = []
    for source in PI_SOURCES:
        path = data / "pi" / f"{source}.{split}.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rows.append(PiRow(r["text"], r["label"] == "injection", source))
    return rows


def load_pii(data: Path, name: str, split: str) -> list[dict[str, Any]]:
    with gzip.open(data / "pii" / f"{name}.{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, truth: bool, predicted: bool) -> None:
        if truth and predicted:
            self.tp += 1
        elif truth:
            self.fn += 1
        elif predicted:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)

    @property
    def fpr(self) -> float | None:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None

    @property
    def accuracy(self) -> float | None:
        n = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / n if n else None


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


#: The speed mixes: label, with injections, ASCII only.
SPEED_MIXES = (("benign prompts + PII", False, False), ("benign ASCII prompts + PII", False, True),
               ("half injections (dev mix) + PII", True, False))


def speed_mix(data: Path, injections: bool, ascii_only: bool = False) -> list[str]:
    """64 prompts of 1-8 KiB: dev prompts (benign only, unless `injections`) joined, each with one
    labelled PII row in it."""
    rng = random.Random(18)
    pool = [r.text for r in load_pi(data, "dev") if (injections or not r.injection) and r.text.isascii() >= ascii_only]
    pii = [str(r["text"]) for r in load_pii(data, "pii_presidio", "dev") if r["entities"] and r["text"].isascii()]
    prompts = []
    for i in range(64):
        size = 1024 * (1 + i % 8)
        parts = [rng.choice(pii)]
        while sum(map(len, parts)) < size:
            parts.append(rng.choice(pool))
        rng.shuffle(parts)
        prompts.append("\n\n".join(parts)[:size])
    return prompts
