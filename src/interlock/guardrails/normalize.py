"""Text normalisation for the injection detector: one canonical form for look-alike spellings."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f"))
# Cyrillic and Greek letters that look like Latin ones (lower case; NFKC and casefold run first).
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ɡ": "g", "һ": "h", "ӏ": "l", "ο": "o", "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "β": "b", "η": "n", "μ": "u", "ω": "w", "ς": "s", "σ": "o", "γ": "y",
    "ı": "i", "ℓ": "l",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "|": "l", "!": "i"})
_HAS_LEET = re.compile(r"[a-z][013457@$|!]+[a-z]|\b[013457@$][a-z]{2}")
_SPACED = re.compile(r"\b(?:[a-z][ .\-_*]){3,}[a-z]\b")
_SPACES = re.compile(r"\s+")
_B64 = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}[ :]?){10,}")
_TEXTUAL = re.compile(r"^[\x20-\x7e\s\u00c0-\u024f]+$")


def normalize(text: str) -> str:
    """NFKC, zero-width characters dropped, case folded, look-alikes mapped, whitespace collapsed."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
        text = text.casefold().translate(_CONFUSABLES)
    else:
        text = text.lower()
    return _SPACES.sub(" ", text)


def variants(norm: str) -> list[str]:
    """Extra views of normalised text worth scanning: leetspeak mapped, s p a c e d letters joined."""
    out = []
    if _HAS_LEET.search(norm):
        out.append(norm.translate(_LEET))
    if _SPACED.search(norm):
        out.append(_SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group()), norm))
    return out


def decoded_payloads(text: str) -> list[str]:
    """Base64, hex and rot13 payloads inside the raw text, decoded to normalised text."""
    out = []
    for m in _B64.finditer(text):
        chunk = m.group()
        if chunk.isalpha() and (chunk.islower() or chunk.isupper()):
            continue
        try:
            raw = base64.b64decode(chunk.replace("-", "+").replace("_", "/") + "=" * (-len(chunk) % 4))
        except (binascii.Error, ValueError):
            continue
        _keep_text(raw, out)
    if len(out) < 4:
        for m in _HEX.finditer(text):
            try:
                _keep_text(bytes.fromhex(re.sub(r"[ :]", "", m.group())), out)
            except ValueError:
                continue
    return out


def rot13(norm: str) -> str:
    return codecs.encode(norm, "rot13")


def _keep_text(raw: bytes, out: list[str]) -> None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    if len(decoded) >= 8 and _TEXTUAL.match(decoded) and sum(c.isalpha() for c in decoded) > len(decoded) / 2:
        out.append(normalize(decoded))
