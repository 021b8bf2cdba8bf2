"""Secret recognizers: vendor key shapes, private-key blocks, JWTs, and keyword-adjacent credentials."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

import ahocorasick
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

_SLACK_WEBHOOK = re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+\-]{20,}")
# (type, literal prefixes for the prefilter, searched in the bytes, pattern). A key must not continue
# a longer word.
_VENDOR: tuple[tuple[str, tuple[bytes, ...], re.Pattern[str]], ...] = (
    (ANTHROPIC_KEY, (b"sk-ant-",), re.compile(r"(?<![\w-])sk-ant-[A-Za-z0-9_\-]{32,}")),
    (OPENAI_KEY, (b"sk-",), re.compile(
        r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}(?![\w-])")),
    (AWS_ACCESS_KEY, (b"AKIA", b"ASIA", b"A3T"),
     re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])")),
    (GITHUB_TOKEN, (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_"), re.compile(
        r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})(?![\w-])")),
    (SLACK_WEBHOOK, (b"hooks.slack.com",), _SLACK_WEBHOOK),
    (SLACK_TOKEN, (b"xox", b"xapp-"), re.compile(
        r"(?<![\w-])(?:xox[abposr]-[A-Za-z0-9\-]{10,}|xapp-\d-[A-Za-z0-9\-]{10,})")),
    (STRIPE_KEY, (b"_live_", b"_test_"), re.compile(
        r"(?<![\w-])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}(?![\w-])")),
    (GOOGLE_API_KEY, (b"AIza",), re.compile(r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}")),
)
# Each distinct prefix once, with the vendors it gates.
_VENDOR_OF: dict[bytes, tuple[int, ...]] = {
    p: tuple(i for i, (_, ps, _) in enumerate(_VENDOR) if p in ps) for _, ps, _ in _VENDOR for p in ps
}


def _prefix_automaton() -> ahocorasick.Automaton:
    """Every prefix found in one pass (a substring search per prefix cost several times as much on long
    texts)."""
    automaton = ahocorasick.Automaton()
    for prefix, gated in _VENDOR_OF.items():
        automaton.add_word(prefix.decode("ascii"), gated)
    automaton.make_automaton()
    return automaton


_PREFIXES = _prefix_automaton()
_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----|\Z)"
)
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")
_KEY_CLASSES = bytes(
    97 if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "_-+/") else 32 for b in range(256)
)
_RUN = b"a" * 16
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")

# Credential words, searched in the lower-cased bytes; the assignment and value must follow the word
# (possibly after the rest of an identifier: CLIENT_SECRET_KEY, dbPassword). gates.py and _gates.c
# gate the scan on them (a test compares the lists).
KEYWORDS = (b"pass", b"pwd", b"secret", b"token", b"key", b"credential")
# "key" counts only in api_key, accessKey, auth-key, private_key, client_key, secret_key.
_KEY_OWNERS = (b"api", b"access", b"auth", b"private", b"client", b"secret")
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


def has_long_token(raw: bytes) -> bool:
    """Whether the text (one byte per character) has 16 key characters in a row: every vendor key, JWT header and AWS secret
    does, ordinary prose rarely."""
    return raw.translate(_KEY_CLASSES).find(_RUN) >= 0  # find: bytes' `in` formats a TypeError first


def find_vendor_keys(text: str, raw: bytes) -> Iterator[Finding]:
    """`raw` is the text one byte per character (non-ASCII replaced): the prefix checks search bytes."""
    found: set[int] = set()
    for _, gated in _PREFIXES.iter(raw.decode("ascii", "replace")):
        found.update(gated)
    for i in sorted(found):
        kind, _, pattern = _VENDOR[i]
        for m in pattern.finditer(text):
            yield Finding(kind, m.start(), m.end(), 1.0)


def find_slack_webhooks(text: str, raw: bytes) -> Iterator[Finding]:
    """Webhook URLs: their path segments are shorter than the long-token gate."""
    if raw.find(b"hooks.slack.com") >= 0:
        for m in _SLACK_WEBHOOK.finditer(text):
            yield Finding(SLACK_WEBHOOK, m.start(), m.end(), 1.0)


def find_aws_secrets(text: str, lraw: bytes) -> Iterator[Finding]:
    """A 40-character secret key counts only near an access key id or the words AWS + secret."""
    if lraw.find(b"aws") < 0 and not any(lraw.find(p) >= 0 for p in (b"akia", b"asia", b"a3t")):
        return
    lower = text.lower() if len(text.lower()) == len(text) else text
    for m in _AWS_SECRET.finditer(text):
        value = m.group()
        window = lower[max(0, m.start() - 200): m.end() + 200]
        near = ("aws" in window and "secret" in window) or any(p in window for p in ("akia", "asia", "a3t"))
        if near and any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            yield Finding(AWS_SECRET_KEY, m.start(), m.end(), 0.9)


def find_private_keys(text: str, raw: bytes) -> Iterator[Finding]:
    if raw.find(b"PRIVATE KEY") >= 0:
        for m in _PEM.finditer(text):
            yield Finding(PRIVATE_KEY, m.start(), m.end(), 1.0)


def find_jwts(text: str, raw: bytes) -> Iterator[Finding]:
    if raw.find(b"eyJ") < 0:
        return
    for m in _JWT.finditer(text):
        header = m.group().split(".", 1)[0]
        try:
            decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            continue
        if isinstance(decoded, dict) and "alg" in decoded:
            yield Finding(JWT, m.start(), m.end(), 1.0)


def find_assigned_secrets(text: str, lraw: bytes, min_entropy: float = GENERIC_ENTROPY_MIN) -> Iterator[Finding]:
    """Values assigned to a credential-named key whose characters are varied enough to be a secret.
    `lraw` is the text one byte per character, ASCII letters lower-cased (byte offsets are string offsets)."""
    seen: set[int] = set()
    for word in KEYWORDS:
        at = lraw.find(word)
        while at >= 0:
            end = at + len(word)
            if _credential_word(lraw, word, at, end):
                m = _ASSIGNED.match(text, end)
                if m is not None:
                    if m.start(m.lastgroup or "bare") not in seen:
                        finding = _assigned(m, min_entropy)
                        if finding is not None:
                            seen.add(finding.start)
                            yield finding
                    end = max(end, m.end())
            at = lraw.find(word, end)


def _credential_word(lraw: bytes, word: bytes, at: int, end: int) -> bool:
    if word == b"pass":
        # password, passwd, passphrase anywhere in an identifier; "pass" alone only as its own word.
        # `at > 0` first: compiled (make fast), a bytes slice from -1 to 0 raises SystemError instead of giving b"".
        return lraw.startswith((b"w", b"phrase"), end) or not (
            lraw[end: end + 1].isalpha() or (at > 0 and lraw[at - 1: at].isalpha()))
    if word == b"key":
        before = lraw[max(0, at - 9): at]
        return any(o in before for o in _KEY_OWNERS)
    return True


def _assigned(m: re.Match[str], min_entropy: float) -> Finding | None:
    group = m.lastgroup or "bare"
    value = m.group(group)
    if value is None or value.isdigit() or _NOT_A_VALUE.match(value.strip()):
        return None
    entropy = shannon_entropy(value[:64])
    if entropy < min_entropy:
        return None
    return Finding(GENERIC_SECRET, m.start(group), m.end(group), min(1.0, 0.5 + entropy / _ENTROPY_FULL / 2))
