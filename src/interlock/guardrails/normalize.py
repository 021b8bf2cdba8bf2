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
    "\u0430": "a", "\u0432": "b", "\u0435": "e", "\u0451": "e", "\u043a": "k", "\u043c": "m", "\u043d": "h", "\u043e": "o", "\u0440": "p", "\u0441": "c",
    "\u0442": "t", "\u0443": "y", "\u0445": "x", "\u0455": "s", "\u0456": "i", "\u0457": "i", "\u0458": "j", "\u0501": "d", "\u051b": "q", "\u051d": "w",
    "\u0261": "g", "\u04bb": "h", "\u04cf": "l", "\u03bf": "o", "\u03b1": "a", "\u03b5": "e", "\u03b9": "i", "\u03ba": "k", "\u03bd": "v", "\u03c1": "p",
    "\u03c4": "t", "\u03c5": "u", "\u03c7": "x", "\u03b2": "b", "\u03b7": "n", "\u03bc": "u", "\u03c9": "w", "\u03c2": "s", "\u03c3": "o", "\u03b3": "y",
    "\u0131": "i", "\u2113": "l",
    # Upper case, mapped before lower() (Greek capital nu looks like N, its lower case like v).
    "\u0391": "a", "\u0392": "b", "\u0395": "e", "\u0396": "z", "\u0397": "h", "\u0399": "i", "\u039a": "k", "\u039c": "m", "\u039d": "n", "\u039f": "o",
    "\u03a1": "p", "\u03a4": "t", "\u03a5": "y", "\u03a7": "x", "\u0410": "a", "\u0412": "b", "\u0415": "e", "\u041a": "k", "\u041c": "m", "\u041d": "h",
    "\u041e": "o", "\u0420": "p", "\u0421": "c", "\u0422": "t", "\u0423": "y", "\u0425": "x", "\u0406": "i", "\u0408": "j", "\u0405": "s",
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

def _classes(groups: dict[bytes, bytes]) -> bytes:
    """A bytes.translate table sending each byte of a group to the group's class byte, others to a space."""
    table = bytearray(b" " * 256)
    for members, cls in groups.items():
        for b in members:
            table[b] = cls[0]
    return bytes(table)


# Letters -> "a", leetspeak digits and symbols -> "1": leetspeak shows as "a1a" or "a11a".
_LEET_CLASSES = _classes({b"abcdefghijklmnopqrstuvwxyz": b"a", b"013457@$": b"1"})
# Base64 alphabet -> "a": a payload shows as 16 "a" in a row.
_B64_CLASSES = _classes({b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=": b"a"})
_ROT13 = bytes.maketrans(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", b"nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM"
)
# A run of 16+ base64 characters.
_B64 = re.compile(rb"[A-Za-z0-9+/_\-]{16,}={0,2}")
_LONG = 16  # bytes: shorter runs are not worth decoding
_RUN = b"a" * _LONG
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_TEXTUAL = re.compile(r"^[\x20-\x7e\s\u00c0-\u024f]+$")


def normalize(text: str) -> str:
    """NFKC, zero-width characters dropped, lower case, Cyrillic and Greek look-alikes mapped to Latin."""
    if text.isascii():
        return text.lower()
    if len(text.encode("cp1252", "ignore")) == len(text):
        # Western text (Latin-1 plus the typographic quotes, dashes and ellipsis of cp1252): of what the two
        # scans look for, only a no-break space and a soft hyphen occur there; an encode and two substring
        # searches cost a quarter of two class-led scans (and far less than max(text), which walks the
        # string in Python objects).
        if "\u00a0" in text:
            text = unicodedata.normalize("NFKC", text)
        if "\u00ad" in text:
            text = text.replace("\u00ad", "")
        return text.lower()
    if _NEEDS_NFKC.search(text):
        text = unicodedata.normalize("NFKC", text)
    if _NEEDS_MAPPING.search(text):
        text = _NEEDS_MAPPING.sub(_map_char, text)
    return text.lower()


def _map_char(m: re.Match[str]) -> str:
    ch = m.group()
    return _CONFUSABLES.get(ch, ch)


def leet_likely(norm: bytes) -> bool:
    """Leetspeak puts digits inside words: two places where a letter, a digit and a letter meet."""
    shape = norm.translate(_LEET_CLASSES)
    return shape.count(b"a1a") + shape.count(b"a11a") >= 2


def leet_map(norm: bytes) -> bytes:
    """The text with common leetspeak digits and symbols mapped to letters."""
    return norm.translate(_LEET)


def rot13(norm: bytes) -> bytes:
    return norm.translate(_ROT13)


#: A few words that open an attack, rot13-encoded: the rot13 view is scanned only when one occurs.
ROT13_HINTS = tuple(rot13(w) for w in (b"ignore", b"instruction", b"prompt", b"password"))


def has_payload_run(raw: bytes) -> bool:
    """A run of 16 base64 characters: where :func:`decoded_payloads` begins to look."""
    return raw.translate(_B64_CLASSES).find(_RUN) >= 0


def decoded_payloads(raw: bytes) -> list[str]:
    """Base64 and hex payloads inside the text (UTF-8 encoded), decoded and normalised."""
    out: list[str] = []
    shape = raw.translate(_B64_CLASSES)
    at = shape.find(_RUN)
    while at >= 0:
        end = shape.find(b" ", at + _LONG)
        end = len(raw) if end < 0 else end
        for m in _B64.finditer(raw, at, end):
            _decode(m.group(), out)
        at = shape.find(_RUN, end)
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
