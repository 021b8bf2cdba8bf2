"""The difficulty scorer's C counts (routing/_difficulty_counts.c) against their Python reference
(``difficulty_model._dense_counts``): the same 19 counts for every ASCII text, None for any other."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.routing import difficulty_model
from interlock.routing.difficulty_model import DENSE_NAMES, N_COUNTS, SKIPPABLE, shared_scorer, skip_mask

try:
    from interlock.routing import _difficulty_counts
except ImportError:  # a dev install builds it (a C compiler is on every test machine): its absence is a failure
    _difficulty_counts = None

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "routing"
NAMES = DENSE_NAMES[:N_COUNTS]

#: Bytes where the counts' rules turn: every ASCII whitespace kind (str.isspace), separators, signs, the regexes'
#: classes and their neighbours ("_" is a word character, "\x7f" and NUL are not anything).
TRICKY = (" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00\x7f.,;:!?/%$=+-*^<>_()[]'\"@#&|~`\\{}"
          "0123456789aehlnoprtuvwxAEHLNOPRTUVWXZ")
#: Pieces that make the counted words, numbers and fractions in all their forms.
PIECES = ["one", "Ones", "TWO", "half", "HALVES", "halfs", "percent", "Percentage", "percen", "third", "thirds",
          "quarters", "eighths", "thousands", "dozen", "double", "xone", "onex", "1/2", "1/2/3", "3.5", "1,000",
          "1,2/3", "10..11", "1.", ".5", "0042", "12345678", "NOT", "EXCEPT", "ABC", "AB", "ABCd", "_ABC", "ABC1",
          "ends.", "why?", "wow!", "= 4", "a+b", "\r\n", " ", "\t", "longerword", "x"]


def c_counts(text: str, skip: int = 0) -> tuple[int, ...] | None:
    if _difficulty_counts is None:
        pytest.fail("interlock.routing._difficulty_counts was not built (pip install -e . builds it with gcc)")
    return _difficulty_counts.ascii_counts(text, skip)


def python_counts(text: str, skip: frozenset[str] = frozenset()) -> tuple[int, ...]:
    return difficulty_model._dense_counts(text, None, False, skip)[0]


def assert_same(text: str, skip: frozenset[str] = frozenset()) -> None:
    got, want = c_counts(text, skip_mask(skip)), python_counts(text, skip)
    assert got is not None
    assert got == want, (text[:120], [(n, g, w) for n, g, w in zip(NAMES, got, want, strict=True) if g != w])


def test_the_scorer_uses_the_c_counts() -> None:
    c_counts("")
    assert difficulty_model._ascii_sums is not None


def test_word_lists_are_the_python_ones() -> None:
    assert _difficulty_counts is not None
    numbers = set(_difficulty_counts.NUMBER_WORDS)
    assert numbers | {w + "s" for w in numbers} == difficulty_model._NUMBER_WORDS
    assert set(_difficulty_counts.FRACTION_WORDS) == difficulty_model._FRACTION_WORDS


def test_every_ascii_routing_prompt() -> None:
    checked = 0
    for path in sorted(DATA.glob("*.jsonl")):
        for line in filter(None, path.read_text().split("\n")):
            text = json.loads(line)["prompt"]
            if text.isascii():
                assert_same(text)
                checked += 1
    assert checked > 9000


@pytest.mark.parametrize("text", [
    "", " ", "x", "1", "1/2", "1/2/3", "1/2/3/4", "1//2", "/2", "2/", "a1/2b", "1,2/3", "1.5/2.5", "3/4/5 5/ /6",
    "1,000.50 1.2.3 a.5 .5 _5 12345678 $3 50% 3/4", "7 8.0 9,5 10..11 12,,13 1.2.3.4 0042", "1.", "1,", "1.,2",
    "NASA ABCd ABC_ _ABC ABC1 (ABC) AB ABCD EFG", "A\nBCD\nEFGH", "ABC", "xABC ABCx aBCD", "ABC.DEF",
    "Ends. Two! Three? ...", ".", "a.\n", "a .\t", "one. two.\x1c", "percent PERCENTAGE percen xpercent",
    "half-half, HALF; halves: halfs", "one\x00two\x7fthree", "twenty-one 21", " \x1cfile\x1dgroup\x1erecord\x1funit ",
    "=+-*/^<>", "a" * 7 + " " + "b" * 8 + "\t" + "c" * 9, "\n" * 5, ",,,", "%$?%$?",
])
def test_edges(text: str) -> None:
    assert_same(text)
    for name in SKIPPABLE:
        assert_same(text, frozenset({name}))
    assert_same(text, frozenset(SKIPPABLE))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(alphabet=TRICKY, max_size=6)), max_size=40),
       st.sets(st.sampled_from(SKIPPABLE)))
def test_generated_texts(parts: list[str], skip: set[str]) -> None:
    assert_same("".join(parts), frozenset(skip))


def test_many_numbers_and_long_texts() -> None:
    """Past the C code's stack buffers (64 numbers): its grown span list and its heap hash set."""
    rng = random.Random(26)
    for size in (63, 64, 65, 129, 1000, 8000):
        numbers = [str(rng.randrange(10 ** rng.randrange(1, 7))) + rng.choice(["", ".5", ",25", "/7", "%"])
                   for _ in range(size)]
        assert_same(" ".join(numbers))
        assert_same(",".join(numbers[: size // 2]) + " " + " ".join(numbers))
    assert_same("one two three four " * 2000)
    assert_same("x" * 40_000)


def test_non_ascii_and_bad_arguments() -> None:
    assert c_counts("héllo 1/2") is None
    assert c_counts("\u2028") is None
    assert _difficulty_counts is not None
    with pytest.raises(TypeError):
        _difficulty_counts.ascii_counts(b"bytes", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _difficulty_counts.ascii_counts("text")  # type: ignore[call-arg]
    with pytest.raises(OverflowError):
        _difficulty_counts.ascii_counts("text", 1 << 100)
    packed = shared_scorer()._open.packed
    assert _difficulty_counts.ascii_sums("héllo", 0, packed) is None
    for weights in (b"", packed[:-1], packed + b"\0" * 8, bytearray(packed)):
        with pytest.raises(ValueError):
            _difficulty_counts.ascii_sums("text", 0, weights)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _difficulty_counts.ascii_sums(1, 0, packed)  # type: ignore[arg-type]


def table_sums(head: difficulty_model._Head, counts: tuple[int, ...]) -> list[float]:
    """The Python path's outputs from counts: the bias, then each non-zero count's table entry, added in order."""
    total = head.count_start
    for table, count in zip(head.count_tables, counts, strict=True):
        if count:
            total += table[count]
    return [total.real, total.imag]


def test_c_sums_are_the_tables_sums() -> None:
    """The C evaluation of the open head equals the table path bit for bit: on every ASCII routing prompt and on
    counts past the 1,024-entry tables (computed, not looked up, on both sides)."""
    head = shared_scorer()._open
    texts = ["x " * 3000, "7 " * 2000, "half " * 1500 + "25% of $3", "1/2 " * 1100 + "?" * 1500, ""]
    for path in sorted(DATA.glob("*.jsonl")):
        texts += [json.loads(line)["prompt"] for line in filter(None, path.read_text().split("\n"))]
    checked = 0
    for text in texts:
        if not text.isascii():
            continue
        got = _difficulty_counts.ascii_sums(text, head.skip_mask, head.packed) if _difficulty_counts else None
        assert got == table_sums(head, python_counts(text, head.skip)), text[:80]
        checked += 1
    assert checked > 9000


def test_scores_with_and_without_the_c_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The open head's gains are the same (bit for bit) on the Python path."""
    head = shared_scorer()._open
    texts = [json.loads(line)["prompt"] for line in
             filter(None, (DATA / "gsm8k.dev.jsonl").read_text().split("\n"))]
    texts += ["In two sentences, what does an LLM gateway do?", "Ünïcödé 3 + 4 = 7?", ""]
    fast = [head.gain(text, False) for text in texts]
    monkeypatch.setattr(difficulty_model, "_ascii_sums", None)
    assert [head.gain(text, False) for text in texts] == fast
    # A head's skip mask matches its skipped features (a head built without it would count what it skips).
    assert head.skip_mask == skip_mask(head.skip)
    full = dataclasses.replace(head, skip=frozenset(), skip_mask=0)
    assert [full.gain(text, False) for text in texts] == fast


def test_an_install_without_the_extension_scores_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extension is optional (setup.py): its import failing leaves the scorer on its Python path."""
    import sys

    monkeypatch.setitem(sys.modules, "interlock.routing._difficulty_counts", None)  # import raises ImportError
    assert difficulty_model._c_sums() is None
