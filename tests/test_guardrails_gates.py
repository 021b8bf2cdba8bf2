"""The guardrails' gates (guardrails/gates.py and its C, _gates.c): each C mask equals its Python reference
on every text, and a scan that skips the steps whose gate is clear finds exactly what a scan running them
all finds (the DLP finders; the injection detector's views)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.guardrails import dlp, gates, injection, secrets
from interlock.guardrails.dlp import CustomPattern, DlpDetector
from interlock.guardrails.gates import ALL, LONG_TOKEN, PAYLOAD, dlp_mask_py, views_mask_py
from interlock.guardrails.injection import InjectionDetector
from interlock.guardrails.normalize import ROT13_HINTS, decoded_payloads, has_payload_run, normalize

try:
    from interlock.guardrails import _gates
except ImportError:  # a dev install builds it (a C compiler is on every test machine): its absence is a failure
    _gates = None

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "guardrails"

#: Characters where the gates turn: the run characters and their neighbours, colons, "@", the key classes'
#: edges, letters of the credential words in both cases, and characters that are not ASCII (one "?" each),
#: among them the Kelvin sign and dotted I, whose lower case is ASCII or longer.
TRICKY = "0123456789 -.()/:@_+=?,;'\"\n\tabcdegknoprstwyzABCDEGKNOPRSTWYZ\u00e9\u0130\u212a\u00a0\U0001f600"
#: Pieces that make every trigger, and near misses of each.
PIECES = ["pass", "PASS", "Pwd", "secret", "SECRET", "token", "TOKEN", "key", "KEY", "credential", "CREDENTIAL",
          "credentia", "hooks.slack.com", "hooks.slack.co", "Hooks.slack.com", "PRIVATE KEY", "private key",
          "PRIVATE  KEY", "::", ":a:", ":abcd:", ":abcde:", "@", "1234567", "123456", "1.2.3", "1.2.3.4", "1...",
          "12.", "(555) 123-4567", "4111 1111 1111 1111", "192.168.0.1", "2001:db8::1", "a" * 15, "a" * 16,
          "sk-", "AKIA", "eyJ", "=", ": ", "p\u00e9ss", "\u212aey", "k\u00e9y"]


def c_mask(text: str) -> int:
    if _gates is None:
        pytest.fail("interlock.guardrails._gates was not built (pip install -e . builds it with gcc)")
    return _gates.dlp_mask(text)


def assert_same(text: str) -> None:
    assert c_mask(text) == dlp_mask_py(text), (text[:200], c_mask(text), dlp_mask_py(text))


def data_texts() -> Iterator[str]:
    for path in sorted((DATA / "pii").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)["text"]
    for path in sorted((DATA / "pi").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            yield json.loads(line)["text"]


def ungated(detector: DlpDetector, text: str, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The scan as it was before the gates: every finder runs (the Slack webhook finder only where the long
    token gate sends the text to the vendor keys' finder instead, which knows the webhook's prefix too)."""
    raw = text.encode("ascii", "replace")
    mask = (ALL & ~LONG_TOKEN) | (LONG_TOKEN if secrets.has_long_token(raw) else 0)
    with monkeypatch.context() as m:
        m.setattr(dlp, "dlp_mask", lambda _text: mask)
        return list(detector.scan(text))


def test_the_detector_uses_the_c_mask() -> None:
    c_mask("")
    assert gates.dlp_mask is _gates.dlp_mask  # type: ignore[union-attr]


def test_keywords_are_the_python_ones() -> None:
    assert _gates is not None
    assert tuple(w.decode("ascii") for w in secrets.KEYWORDS) == _gates.KEYWORDS


def test_bad_arguments_raise() -> None:
    for bad in (b"password", None, 42, ["key"]):
        with pytest.raises(TypeError):
            c_mask(bad)  # type: ignore[arg-type]

    class Text(str):
        pass

    assert c_mask(Text("password: hunter2hunter2")) == dlp_mask_py("password: hunter2hunter2") != 0


def test_edge_texts() -> None:
    texts = ["", "?", "@", ":", "::", ":::::", ":1234:", ":12345:", "a" * 15, "a" * 16, "a" * 15 + "\u00e9" + "a",
             "123456", "1234567", "123 456 7", "1.2.3", "1.2.3.4", "1..2.", "1...2", "a1.2.3.4b", "12345 67",
             "12345x67", "PRIVATE KEY", "PRIVATE KE", "-----BEGIN RSA PRIVATE KEY-----", "hooks.slack.com",
             "https://hooks.slack.com/services/T000/B000/XXXX", "pAsS", "apikey", "\u212aey", "pw d", "credentia",
             "x" * 5000 + "password", "1" * 10_000, ":" + "\U0001f600" * 4 + ":", "\u0130" * 20 + "token"]
    for text in texts:
        assert_same(text)
    for piece in PIECES:  # every piece alone, at the start, in the middle and at the end of other text
        for text in (piece, piece + " tail", "head " + piece, "x" + piece + "x", "\u00e9" + piece + "\U0001f600"):
            assert_same(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet=TRICKY, max_size=12), st.sampled_from(PIECES)), max_size=30))
def test_generated_texts(parts: list[str]) -> None:
    assert_same("".join(parts))


def test_guardrail_data_sets() -> None:
    count = 0
    for text in data_texts():
        assert_same(text)
        count += 1
    assert count > 2500


@pytest.mark.parametrize("reference", [False, True], ids=["c", "python"])
def test_gated_scan_finds_what_every_finder_finds(reference: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if reference:
        monkeypatch.setattr(dlp, "dlp_mask", dlp_mask_py)
    detector = DlpDetector()
    texts = list(data_texts()) + [p + " " + q for p in PIECES for q in ("hunter2hunter2", "=\"s3cr3t-V4lue\"")]
    flagged = 0
    for text in texts:
        found = detector.scan(text)
        assert found == ungated(detector, text, monkeypatch), text[:200]
        flagged += bool(found)
    assert flagged > 300  # the data sets' PII and secrets are found, so the comparison covers finders at work


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet=TRICKY, max_size=12), st.sampled_from(PIECES)), max_size=30))
def test_gated_scan_on_generated_texts(parts: list[str]) -> None:
    text = "".join(parts)
    detector = DlpDetector()
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert detector.scan(text) == ungated(detector, text, monkeypatch)


def test_custom_patterns_run_whatever_the_gates() -> None:
    detector = DlpDetector(custom=[CustomPattern("TICKET", r"TCK-[0-9]{3}")])
    assert gates.dlp_mask("see TCK-123") == 0
    assert [(f.type, f.start, f.end) for f in detector.scan("see TCK-123")] == [("TICKET", 4, 11)]


# --- the injection detector's views ---

#: Pieces of leetspeak, rot13 hints (and near misses) and base64/hex payloads.
VIEW_PIECES = ["1gn0r3", "h3ll0", "a1", "1a", "a11a", "a1a1a", "4ll", "pr0mpt", "$y$t3m", "vtaber", "vafgehpgvba",
               "cebzcg", "cnffjbeq", "cebzc", "VTABER", "aGVsbG8gd29ybGQ=", "aGVsbG8gd29ybGQgaGVsbG8=",
               "69676e6f726520616c6c", "a" * 15, "A" * 16, "ab+/_-=", "\u00e9", "\u0456gnore", "\uff49gnore"]


def views_args(text: str) -> tuple[bytes, bytes]:
    """The normalised and raw text as ``InjectionDetector.check`` makes them."""
    raw = text.encode("utf-8", "surrogatepass")
    norm = raw.lower() if len(raw) == len(text) else normalize(text).encode("utf-8", "surrogatepass")
    return norm, raw


def c_views(norm: bytes, raw: bytes) -> int:
    if _gates is None:
        pytest.fail("interlock.guardrails._gates was not built (pip install -e . builds it with gcc)")
    return _gates.views_mask(norm, raw)


def assert_same_views(text: str) -> None:
    norm, raw = views_args(text)
    assert c_views(norm, raw) == views_mask_py(norm, raw), text[:200]
    if not has_payload_run(raw):  # the payload gate is a necessary condition of a decoded payload
        assert decoded_payloads(raw) == []


def test_the_injection_detector_uses_the_c_views() -> None:
    c_views(b"", b"")
    assert gates.views_mask is _gates.views_mask  # type: ignore[union-attr]
    assert tuple(h.decode("ascii") for h in ROT13_HINTS) == _gates.HINTS  # type: ignore[union-attr]


def test_views_bad_arguments_raise() -> None:
    for args in ((), (b"x",), ("x", b"x"), (b"x", "x"), (b"x", b"x", b"x"), (bytearray(b"x"), b"x")):
        with pytest.raises(TypeError):
            _gates.views_mask(*args)  # type: ignore[union-attr]


def test_views_edge_texts() -> None:
    for text in ["", "a", "a1a", "a1a1a", "a1aa1a", "a11a", "a11a11a", "a1aa11a", "x" * 20 + "a1a b2b",
                 "a" * 15 + " " + "a" * 15, "a" * 16, "=" * 16, "vtabe", "xvtaberx", "cnffjbeq" * 3]:
        assert_same_views(text)
    for piece in VIEW_PIECES:
        for text in (piece, piece + " tail", "head " + piece, "x" + piece + "x", piece + " " + piece):
            assert_same_views(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet=TRICKY + "13457$!|ABCDEFabcdefghiv=", max_size=12),
                          st.sampled_from(VIEW_PIECES)), max_size=30))
def test_views_generated_texts(parts: list[str]) -> None:
    assert_same_views("".join(parts))


def test_views_guardrail_data_sets() -> None:
    for text in data_texts():
        assert_same_views(text)


def test_gated_injection_check_is_the_ungated_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector with the C views equals the code before the gates, which always decoded payloads."""
    detector = InjectionDetector()
    texts = list(data_texts()) + [" ".join(VIEW_PIECES[i:i + 4]) for i in range(len(VIEW_PIECES))]
    gated = [(detector.check(t), detector.check(t, indirect=True)) for t in texts]
    monkeypatch.setattr(injection, "views_mask", lambda norm, raw: views_mask_py(norm, raw) | PAYLOAD)
    assert gated == [(detector.check(t), detector.check(t, indirect=True)) for t in texts]
    assert sum(g.flagged for g, _ in gated) > 300  # the data sets' injections are flagged: the views are at work
