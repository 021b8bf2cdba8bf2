"""Which of the guardrails' rule steps have anything to do on a text, in one pass that most texts end with.

DLP (:func:`dlp_mask`): which rule finders can find anything.

A clean short text cost the DLP scan about 36,000 instructions in the compiled build, nearly all of it in
some twenty C calls (byte searches, translations, generators; 300-1,500 instructions each) that each
concluded "nothing here". :func:`dlp_mask` answers them at once: one bit per finder, set when that finder's
trigger occurs in the text. Each bit is a necessary condition of its finder finding anything, so a clear bit
skips the finder without changing a result; a set bit only lets the finder run its own exact checks.

Prompt injection (:func:`views_mask`): which extra views of a text the rules read (leetspeak mapped, rot13
decoded, base64/hex payloads decoded), three more such checks, about 10,000 instructions a text.

``_gates.c`` computes each mask in one scan (built by ``pip install``; optional). :func:`dlp_mask_py` and
:func:`views_mask_py` are the reference: ``tests/test_guardrails_gates.py`` compares the C with them, and the
gated scans with the steps run unconditionally.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from interlock.guardrails.normalize import ROT13_HINTS, has_payload_run, leet_likely
from interlock.guardrails.secrets import KEYWORDS, has_long_token

#: 16 key characters in a row (``secrets.has_long_token``): vendor keys, JWTs, AWS secrets.
LONG_TOKEN: Final = 1
#: ``hooks.slack.com``: a Slack webhook (its path segments are shorter than a long token).
SLACK: Final = 2
#: ``PRIVATE KEY``: a PEM block.
PRIVATE_KEY: Final = 4
#: A credential word (``secrets.KEYWORDS``), ASCII letters in any case: a value assigned to it.
ASSIGNED: Final = 8
#: ``@``: an e-mail address.
EMAIL: Final = 16
#: A run of digits and separators (``pii.find_numeric``'s) with 7 digits, or 3 dots and 2 digits.
NUMERIC: Final = 32
#: Two colons at most 5 characters apart: an IPv6 address.
IPV6: Final = 64
ALL: Final = 127

#: The maximal stretches of ``pii.find_numeric``'s run characters; each of its runs lies inside one.
_SEGMENT = re.compile(rb"[0-9 \-.()/:]+")
_SEPARATORS = b" -.()/:"
_COLONS = re.compile(rb":[^:]{0,4}:")


def dlp_mask_py(text: str) -> int:
    """The finders' triggers in ``text`` as a bit mask (the reference of the C function)."""
    raw = text.encode("ascii", "replace")  # one byte per character, as the finders see the text
    lraw = raw.lower()
    mask = 0
    if has_long_token(raw):
        mask |= LONG_TOKEN
    if raw.find(b"hooks.slack.com") >= 0:
        mask |= SLACK
    if raw.find(b"PRIVATE KEY") >= 0:
        mask |= PRIVATE_KEY
    if any(lraw.find(word) >= 0 for word in KEYWORDS):
        mask |= ASSIGNED
    if raw.find(b"@") >= 0:
        mask |= EMAIL
    for m in _SEGMENT.finditer(raw):
        segment = m.group()
        digits = len(segment.translate(None, _SEPARATORS))
        if digits >= 7 or (digits >= 2 and segment.count(b".") >= 3):
            mask |= NUMERIC
            break
    if _COLONS.search(raw) is not None:
        mask |= IPV6
    return mask


#: The injection detector's extra views (``InjectionDetector.check``): leetspeak mapped (two letter-digit-letter
#: places in the lower-cased text), rot13 decoded (a hint word), payloads decoded (a run of 16 base64
#: characters in the text as written).
LEET: Final = 1
ROT13: Final = 2
PAYLOAD: Final = 4


def views_mask_py(norm: bytes, raw: bytes) -> int:
    """Which extra views of a text the injection rules read (the reference of the C function): ``norm`` is
    the normalised text, ``raw`` the text as written, both UTF-8."""
    mask = LEET if leet_likely(norm) else 0
    if any(norm.find(hint) >= 0 for hint in ROT13_HINTS):
        mask |= ROT13
    if has_payload_run(raw):
        mask |= PAYLOAD
    return mask


def _c_masks() -> tuple[Callable[[str], int], Callable[[bytes, bytes], int]] | None:
    try:
        from interlock.guardrails._gates import HINTS as C_HINTS
        from interlock.guardrails._gates import KEYWORDS as C_KEYWORDS
        from interlock.guardrails._gates import dlp_mask as c_dlp_mask
        from interlock.guardrails._gates import views_mask as c_views_mask
    except ImportError:  # pragma: no cover - an install without a C compiler
        return None
    if (tuple(w.decode("ascii") for w in KEYWORDS), tuple(h.decode("ascii") for h in ROT13_HINTS)) != (
            C_KEYWORDS, C_HINTS):  # pragma: no cover - a stale build
        return None
    return c_dlp_mask, c_views_mask


#: The C functions where they were built, else the reference.
_MASKS = _c_masks() or (dlp_mask_py, views_mask_py)
dlp_mask: Callable[[str], int] = _MASKS[0]
views_mask: Callable[[bytes, bytes], int] = _MASKS[1]
