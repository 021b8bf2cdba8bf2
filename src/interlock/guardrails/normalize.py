"""Text normalisation for the injection detector: one canonical form for look-alike spellings.

Every step is gated by a cheap check, so plain ASCII prose costs one `lower()`.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

_ZERO_WIDTH = dict.fromkeys("\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f", "")
# Cyrillic and Greek letters that look like Latin ones; zero-width characters map to nothing.
_CONFUSABLES = _ZERO_WIDTH | {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ɡ": "g", "һ": "h", "ӏ": "l", "ο": "o", "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "β": "b", "η": "n", "μ": "u", "ω": "w", "ς": "s", "σ": "o", "γ": "y",
    "ı": "i", "ℓ": "l",
    # Upper case, mapped before lower() (Greek capital nu looks like N, its lower case like v).
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h",
    "О": "o", "Р": "p", "С": "c", "Т": "t", "У": "y", "Х": "x", "І": "i", "Ј": "j", "Ѕ": "s",
}
# Zero-width characters, Greek and Cyrillic letters: mapped only when one occurs.
_NEEDS_MAPPING = re.compile("[\u00ad\u034f\u0370-\u04ff\u0500-\u052f\u180e\u200b-\u200f\u2060-\u2064\ufeff]")
# What NFKC changes that matters here: odd spaces, fullwidth letters and digits, ligatures, enclosed and
# mathematical letters (fullwidth punctuation, common in Chinese text, does not matter).
_NEEDS_NFKC = re.compile(
    "[\u00a0\u2000-\u200a\u202f\u205f\u2460-\u24ff\u3000\ufb00-\ufb06\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
    "\U0001d400-\U0001d7ff\U0001f130-\U0001f189]"
)
_LEET = bytes.maketrans(b"013457@$!|", b"oieastasil")
_LEET_GATE = re.compile(rb"[013457@$][a-z]")
_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyz")
_ROT13 = bytes.maketrans(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", b"nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM"
)
# A token of 16+ base64 characters after a separator (starting on the separator is cheaper to scan for).
_B64 = re.compile(rb"[A-Za-z0-9+/_\-]{16,}={0,2}")
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_TEXTUAL = re.compile(r"^[\x20-\x7e\s\u00c0-\u024f]+$")


def normalize(text: str) -> str:
    """NFKC, zero-width characters dropped, lower case, Cyrillic and Greek look-alikes mapped to Latin."""
    if text.isascii():
        return text.lower()
    if _NEEDS_NFKC.search(text):
        text = unicodedata.normalize("NFKC", text)
    if _NEEDS_MAPPING.search(text):
        text = _NEEDS_MAPPING.sub(_map_char, text)
    return text.lower()


def _map_char(m: re.Match[str]) -> str:
    ch = m.group()
    return _CONFUSABLES.get(ch, ch)


def leet(norm: bytes) -> bytes | None:
    """The text with common leetspeak digits and symbols mapped to letters, when it has any."""
    # Leetspeak puts digits inside words: two places where a letter, a digit and a letter meet.
    inside = 0
    for m in _LEET_GATE.finditer(norm):
        at = m.start()
        if at and norm[at - 1] in _LETTERS:
            inside += 1
            if inside == 2:
                return norm.translate(_LEET)
    return None


def rot13(norm: bytes) -> bytes:
    return norm.translate(_ROT13)


def decoded_payloads(raw: bytes) -> list[str]:
    """Base64 and hex payloads inside the text (UTF-8 encoded), decoded and normalised."""
    out: list[str] = []
    for token in [w for w in raw.split() if len(w) >= 16]:
        for m in _B64.finditer(token):
            _decode(m.group(), out)
    return out


def _decode(chunk: bytes, out: list[str]) -> None:
    if chunk.isalpha() and (chunk.islower() or chunk.isupper()):
        return
    try:
        if len(chunk) % 2 == 0 and _HEXDIGITS.issuperset(chunk):
            data = bytes.fromhex(chunk.decode())
        else:
            data = base64.b64decode(chunk.replace(b"-", b"+").replace(b"_", b"/") + b"=" * (-len(chunk) % 4))
    except (binascii.Error, ValueError):
        return
    _keep_text(data, out)


def _keep_text(raw: bytes, out: list[str]) -> None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    if len(decoded) >= 8 and _TEXTUAL.match(decoded) and sum(c.isalpha() for c in decoded) > len(decoded) / 2:
        out.append(normalize(decoded))
