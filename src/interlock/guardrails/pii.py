"""Personal data recognizers: payment cards, IBANs, US SSNs, e-mail and IP addresses, phone numbers."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

import phonenumbers

from interlock.guardrails.findings import (
    CREDIT_CARD,
    EMAIL_ADDRESS,
    IBAN_CODE,
    IP_ADDRESS,
    PHONE_NUMBER,
    US_SSN,
    Finding,
)
from interlock.guardrails.validators import IBAN_LENGTHS, iban_valid, luhn, ssn_valid

# Plain 13-19 digits, or groups of four (and Amex/Diners 4-6-5/4-6-4) joined by one repeated separator.
# Not inside a longer run of digits, and not part of a decimal or a dashed code.
_CARD = re.compile(
    r"(?<![\d.,\-/])(?:\d{13,19}"
    r"|\d{4}(?P<s>[ \-])\d{4}(?P=s)\d{4}(?P=s)\d{1,4}(?:(?P=s)\d{1,3})?"
    r"|\d{4}(?P<a>[ \-])\d{6}(?P=a)\d{4,5})"
    r"(?!\d|[.,\-/]\d)"
)
# Leading digits that issuers use, per length (13: old Visa; 14: Diners; 15: Amex, UATP).
_CARD_FIRST = {13: "4", 14: "3", 15: "123", 16: "23456", 17: "456", 18: "456", 19: "2456"}
_SSN = re.compile(r"(?<![\d.\-/])(\d{3})([\- .])(\d{2})\2(\d{4})(?!\d|[.\-/]\d)")
_IBAN = re.compile(
    r"\b[A-Z]{2}\d{2}(?:(?:[ \-]?[A-Z0-9]{4}){2,8}(?:[ \-]?[A-Z0-9]{1,3})?|[A-Z0-9]{11,30})\b"
)
_IBAN_REACH = 36
# Byte classes for finding runs of at least four digits, possibly with separators: every numeric entity
# has one.
_NUM_CLASSES = bytes(48 if 48 <= b <= 57 else 45 if b in b" -.()/:" else 32 for b in range(256))
_SHAPE_DIGITS = re.compile(rb"0[0\-]{2,}0")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4})(?:/\d{1,3})?(?![\w:]|\.\d)"
)
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-'")
_EMAIL_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?:xn--[A-Za-z0-9\-]{2,59}|[A-Za-z]{2,24})(?![\w\-])"
)
_PHONE = re.compile(
    r"(?<![\w+\-.])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d{2,5}(?:[ .\-]?\d{2,5}){1,4}(?!\w|[.\-]\d)"
)
_PHONE_SHAPE = re.compile(r"\d{3}([ .\-])\d{3}\1\d{4}$")
_PHONE_CONTEXT = re.compile(r"phone|tel\b|telefon|call|mobile|cell|fax|whatsapp|sms|contact|dial|ruf|handy", re.I)


def find_cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        if digits[0] not in _CARD_FIRST.get(len(digits), "") or len(set(digits)) < 2:
            continue
        if luhn(digits):
            yield Finding(CREDIT_CARD, m.start(), m.end(), 0.95 if m.lastindex else 0.9)


def find_ssns(text: str) -> Iterator[Finding]:
    for m in _SSN.finditer(text):
        if ssn_valid(m.group(1), m.group(3), m.group(4)):
            yield Finding(US_SSN, m.start(), m.end(), 0.85 if m.group(2) == "-" else 0.6)


def find_ibans(text: str) -> Iterator[Finding]:
    for m in _IBAN.finditer(text):
        raw = m.group()
        want = IBAN_LENGTHS.get(raw[:2])
        if want is None:
            continue
        # Cut a greedy match back to the country's length (a word may follow the number).
        count = 0
        for i, ch in enumerate(raw):
            if ch.isalnum():
                count += 1
                if count == want:
                    raw = raw[: i + 1]
                    break
        compact = raw.replace(" ", "").replace("-", "")
        if iban_valid(compact):
            yield Finding(IBAN_CODE, m.start(), m.start() + len(raw), 1.0)


def find_emails(text: str) -> Iterator[Finding]:
    at = text.find("@")
    while at > 0:
        start = at
        while start > 0 and (text[start - 1] in _EMAIL_LOCAL or text[start - 1].isalnum()):
            start -= 1
        while start < at and text[start] in ".'":
            start += 1
        m = _EMAIL_DOMAIN.match(text, at + 1)
        if m and start < at and at - start <= 64:
            yield Finding(EMAIL_ADDRESS, start, m.end(), 1.0)
        at = text.find("@", at + 1)


def _digit_runs(raw: bytes) -> Iterator[tuple[int, int]]:
    """Spans of the runs of ASCII digits with separators, found in the byte-class form of the text
    (digits -> "0", separators -> "-"): a pattern that starts with a literal is found by a fast search."""
    for b in _SHAPE_DIGITS.finditer(raw.translate(_NUM_CLASSES)):
        yield b.span()


def find_numeric(text: str, region: str, raw: bytes | None = None) -> Iterator[Finding]:
    """Cards, IBANs, SSNs, IPv4 addresses and phone numbers. One scan finds the runs of digits (with
    separators); a run's digit count and dots decide which patterns run, on the run and one character
    either side (IBANs: a window that reaches back to the country code). `raw`: the text encoded one
    byte per character (ASCII, anything else replaced)."""
    seen: set[tuple[str, int]] = set()
    n = len(text)
    for run_start, run_end in _digit_runs(text.encode("ascii", "replace") if raw is None else raw):
        run = text[run_start:run_end]
        digits = sum(map(str.isdigit, run))
        dots = run.count(".")
        if digits < 7 and dots < 3:
            continue
        lo = max(0, run_start - 1)
        part = text[lo: run_end + 1]
        found: list[Finding] = []
        if digits >= 12:
            found += find_cards(part)
        if digits >= 9:
            found += find_ssns(part)
        if dots >= 3:
            found += (Finding(IP_ADDRESS, i.start(), i.end(), 0.9) for i in _IPV4.finditer(part) if _valid_ip(i.group()))
        if digits <= 15:
            found += find_phones(part, region, text, lo)
        if digits >= 8:
            wlo = max(0, run_start - _IBAN_REACH)
            found += (Finding(f.type, f.start + wlo - lo, f.end + wlo - lo, f.score)
                      for f in find_ibans(text[wlo: min(n, run_end + _IBAN_REACH)]))
        for f in found:
            key = (f.type, f.start + lo)
            if key not in seen:
                seen.add(key)
                yield Finding(f.type, f.start + lo, f.end + lo, f.score)


def find_ipv6(text: str) -> Iterator[Finding]:
    """IPv6 candidates only around places where two colons come within five characters of each other."""
    at = text.find(":")
    done = 0
    while at >= 0:
        if at >= done and ":" in text[at + 1: at + 6]:
            lo, done = max(0, at - 40, done), min(len(text), at + 48)
            for m in _IPV6.finditer(text, lo, done):
                cand = m.group()
                if any(ch.isdigit() for ch in cand) and _valid_ip(cand):
                    yield Finding(IP_ADDRESS, m.start(), m.end(), 0.9)
            at = text.find(":", done)
        else:
            at = text.find(":", at + 1)


def _valid_ip(cand: str) -> bool:
    try:
        if "/" in cand:
            ipaddress.ip_network(cand, strict=False)
        else:
            ipaddress.ip_address(cand)
    except ValueError:
        return False
    return True


def find_phones(text: str, region: str, context: str | None = None, offset: int = 0) -> Iterator[Finding]:
    """Numbers phonenumbers calls valid for the region, or international with +. Only shaped candidates
    (+country, (area), the region's 3-3-4 grouping) or ones after a word like "phone" are parsed."""
    for m in _PHONE.finditer(text):
        cand = m.group()
        ndigits = sum(ch.isdigit() for ch in cand)
        if not 7 <= ndigits <= 15:
            continue
        shaped = cand[0] in "+(" or _PHONE_SHAPE.match(cand) is not None
        whole, at = (text, m.start()) if context is None else (context, m.start() + offset)
        if not shaped and not _PHONE_CONTEXT.search(whole, max(0, at - 40), at):
            continue
        try:
            number = phonenumbers.parse(cand, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            yield Finding(PHONE_NUMBER, m.start(), m.end(), 0.75 if shaped else 0.6)
