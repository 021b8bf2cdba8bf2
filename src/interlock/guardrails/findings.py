"""What a detector reports: one typed span of the scanned text."""

from __future__ import annotations

from dataclasses import dataclass

# Entity types of the DLP detector. Secrets carry their own subtype.
CREDIT_CARD = "CREDIT_CARD"
IBAN_CODE = "IBAN_CODE"
US_SSN = "US_SSN"
EMAIL_ADDRESS = "EMAIL_ADDRESS"
PHONE_NUMBER = "PHONE_NUMBER"
IP_ADDRESS = "IP_ADDRESS"

OPENAI_KEY = "OPENAI_KEY"
ANTHROPIC_KEY = "ANTHROPIC_KEY"
AWS_ACCESS_KEY = "AWS_ACCESS_KEY"
AWS_SECRET_KEY = "AWS_SECRET_KEY"
GITHUB_TOKEN = "GITHUB_TOKEN"
SLACK_TOKEN = "SLACK_TOKEN"
SLACK_WEBHOOK = "SLACK_WEBHOOK"
STRIPE_KEY = "STRIPE_KEY"
GOOGLE_API_KEY = "GOOGLE_API_KEY"
PRIVATE_KEY = "PRIVATE_KEY"
JWT = "JWT"
GENERIC_SECRET = "GENERIC_SECRET"

SECRET_TYPES = frozenset({
    OPENAI_KEY, ANTHROPIC_KEY, AWS_ACCESS_KEY, AWS_SECRET_KEY, GITHUB_TOKEN, SLACK_TOKEN, SLACK_WEBHOOK,
    STRIPE_KEY, GOOGLE_API_KEY, PRIVATE_KEY, JWT, GENERIC_SECRET,
})
PII_TYPES = frozenset({CREDIT_CARD, IBAN_CODE, US_SSN, EMAIL_ADDRESS, PHONE_NUMBER, IP_ADDRESS})


def detector_of(entity_type: str) -> str:
    """The detector that reports an entity type: ``secrets`` for a secret, ``pii`` for the rest (operator
    patterns and the NER model's types included)."""
    return "secrets" if entity_type in SECRET_TYPES else "pii"


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected entity: `text[start:end]` is the entity (Python str indices, end exclusive)."""

    type: str
    start: int
    end: int
    score: float

    def __init__(self, type: str, start: int, end: int, score: float) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "score", score)

    @property
    def is_secret(self) -> bool:
        return self.type in SECRET_TYPES

    def overlaps(self, other: Finding) -> bool:
        return self.start < other.end and other.start < self.end
