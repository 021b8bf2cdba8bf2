"""Secret recognizers: vendor key shapes, private-key blocks, JWTs, and keyword-adjacent credentials."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

import orjson

from interlock.guardrails.findings import (
    ANTHROPIC_KEY,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    GENERIC_SECRET,
    GITHUB_TOKEN,
    GOOGLE_API_KEY,
    JWT,
    OPENAI_KEY,
    PRIVATE_KEY,
    SLACK_TOKEN,
    SLACK_WEBHOOK,
    STRIPE_KEY,
    Finding,
)
from interlock.guardrails.validators import shannon_entropy

# (type, literal prefixes for the prefilter, pattern). A key must not continue a longer word.
_VENDOR: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    (ANTHROPIC_KEY, ("sk-ant-",), re.compile(r"(?<![\w-])sk-ant-[A-Za-z0-9_\-]{32,}")),
    (OPENAI_KEY, ("sk-",), re.compile(
        r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}(?![\w-])")),
    (AWS_ACCESS_KEY, ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
     re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])")),
    (GITHUB_TOKEN, ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), re.compile(
        r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})(?![\w-])")),
    (SLACK_WEBHOOK, ("hooks.slack.com",), re.compile(
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+\-]{20,}")),
    (SLACK_TOKEN, ("xox", "xapp-"), re.compile(
        r"(?<![\w-])(?:xox[abposr]-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,})")),
    (STRIPE_KEY, ("_live_", "_test_"), re.compile(
        r"(?<![\w-])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}(?![\w-])")),
    (GOOGLE_API_KEY, ("AIza",), re.compile(r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}")),
)
_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----|\Z)"
)
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")

# Credential words, searched in the lower-cased text; the assignment and value must follow the word
# (possibly after the rest of an identifier: CLIENT_SECRET_KEY, dbPassword).
_KEYWORDS = ("passw", "passphrase", "pass", "pwd", "secret", "token", "api_key", "apikey", "api-key",
             "access_key", "auth_key", "private_key", "credential")
_ASSIGNED = re.compile(
    r"[A-Za-z0-9_\-]{0,40}[\"']?\s{0,5}(?::=|=>|:|=)\s{0,5}"
    r"(?:\"(?P<dq>[^\"\n]{4,200})\"|'(?P<sq>[^'\n]{4,200})'|`(?P<bq>[^`\n]{4,200})`|(?P<bare>[^\s\"'`,;)]{6,200}))"
)
# The value must not look like code, a template or a word that names a placeholder.
_NOT_A_VALUE = re.compile(
    r"^(?:[$%{<@#&/\[].*|.*[()+].*|.*:|https?://.*|new[ \-].*|(?i:true|false|null|none|nil|undefined|required"
    r"|optional|string|password|secret|token|\*+|x+|\.+|your[_\- ].*|process\.env.*|os\.environ.*|env\(.*))$"
)
GENERIC_ENTROPY_MIN = 2.5
_ENTROPY_FULL = 4.0


def find_vendor_keys(text: str) -> Iterator[Finding]:
    for kind, prefixes, pattern in _VENDOR:
        if any(p in text for p in prefixes):
            for m in pattern.finditer(text):
                yield Finding(kind, m.start(), m.end(), 1.0)


def find_aws_secrets(text: str, lower: str) -> Iterator[Finding]:
    """A 40-character secret key counts only near an access key id or the words AWS + secret."""
    if "aws" not in lower and not any(p in text for p in ("AKIA", "ASIA", "A3T")):
        return
    for m in _AWS_SECRET.finditer(text):
        value = m.group()
        window = lower[max(0, m.start() - 200): m.end() + 200]
        near = ("aws" in window and "secret" in window) or any(p in window for p in ("akia", "asia", "a3t"))
        if near and any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            yield Finding(AWS_SECRET_KEY, m.start(), m.end(), 0.9)


def find_private_keys(text: str) -> Iterator[Finding]:
    if "PRIVATE KEY" in text:
        for m in _PEM.finditer(text):
            yield Finding(PRIVATE_KEY, m.start(), m.end(), 1.0)


def find_jwts(text: str) -> Iterator[Finding]:
    if "eyJ" not in text:
        return
    for m in _JWT.finditer(text):
        header = m.group().split(".", 1)[0]
        try:
            decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            continue
        if isinstance(decoded, dict) and "alg" in decoded:
            yield Finding(JWT, m.start(), m.end(), 1.0)


def find_assigned_secrets(text: str, lower: str, min_entropy: float = GENERIC_ENTROPY_MIN) -> Iterator[Finding]:
    """Values assigned to a credential-named key whose characters are varied enough to be a secret."""
    seen: set[int] = set()
    for word in _KEYWORDS:
        at = lower.find(word)
        while at >= 0:
            end = at + len(word)
            # "pass" alone only as its own word part: not "passport", "bypass".
            if word != "pass" or not (lower[end: end + 1].isalpha() or lower[at - 1: at].isalpha()):
                m = _ASSIGNED.match(text, end)
                if m is not None and m.start(m.lastgroup or "bare") not in seen:
                    finding = _assigned(m, min_entropy)
                    if finding is not None:
                        seen.add(finding.start)
                        yield finding
            at = lower.find(word, end)


def _assigned(m: re.Match[str], min_entropy: float) -> Finding | None:
    group = m.lastgroup or "bare"
    value = m.group(group)
    if value is None or value.isdigit() or _NOT_A_VALUE.match(value.strip()):
        return None
    entropy = shannon_entropy(value)
    if entropy < min_entropy:
        return None
    return Finding(GENERIC_SECRET, m.start(group), m.end(group), min(1.0, 0.5 + entropy / _ENTROPY_FULL / 2))
