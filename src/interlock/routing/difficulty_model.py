"""The difficulty router's scorer: per prompt, a score in [0, 1] that the strong model is needed.

Label. Each training prompt has an outcome cell (weak right?, strong right?): (T,T), (T,F), (F,T) or (F,F).
Sending a prompt to the strong model gains quality only in (F,T) and loses it in (T,F), so prompts are ranked by
the expected gain ``P(F,T) - P(T,F)`` (= P(strong right) - P(weak right)), not by P(weak wrong): a prompt both
models fail ((F,F), 14% of MMLU) is not worth the strong model's price. ``score = (1 + gain) / 2``, clipped to
[0, 1], so 0.5 means "no expected gain". Labels are single greedy runs, so one prompt's cell is noisy; on MMLU
the subject carries most of the signal (scoring held-out train folds by their true subject's mean gain gives
APGR 0.68, and no within-subject feature tried correlates with the residual), so the multiple-choice head is fitted to each
prompt's subject mean gain (shrunk towards the overall mean), which cross-validated better than the
prompt's own cell (APGR 0.665 against 0.646 for a multinomial logistic regression on the cells).

Model. Two linear heads, chosen by the prompt's shape (the gateway does not know the benchmark):
* ``choice``, multiple-choice prompts (at least three option lines ``A.``-``D.``, MMLU's shape): ridge
  regression on word unigrams and bigrams (lower-cased; a number becomes ``<num>`` plus ``<numK>`` for its K
  digits), valued ``(1 + log tf) * idf`` with the document's ``1 + log tf`` vector L2-normalised over all
  of its terms (known or not, so pruning the vocabulary leaves the other values alone), and the dense
  features below at a small weight.
* ``open``, every other prompt (GSM8K word problems, chat): dense features only. On GSM8K's 654 train
  prompts the words overfit; length, fractions, percentages and number words carry what signal there is.
  The training script also tries each head without the costliest dense features (``COSTLY`` there); a
  feature a head has no weight for is not computed (``_Head.skip``).
Dense features (``dense_features``): log1p of lengths (characters, words, the stem before the options) and of
counts: numbers, distinct numbers, decimals, long numbers, %, $, fractions, number words, sentences,
question marks, math symbols, upper-case words (NOT, EXCEPT), lines, commas, long words, option lengths.
A head's ``kind`` is ``linear`` (its output is the gain), ``multinomial`` (logits of (F,F), (F,T), (T,F)
against (T,T)), ``pair`` (logits of strong right and weak right) or ``blend``: a linear and a multinomial
head on the same features, their gains standardised and averaged (``blend`` holds the resulting
coefficients); scripts/train_router.py picks kind,
regularisation and feature weights per head by 5-fold cross-validated APGR on the train split only.
Standardisation and idf are folded into the stored weights, so inference is a sparse dot product in pure
Python; a head without terms precomputes weight times log1p per count at load and sums lookups, and takes an
ASCII prompt's counts from one C pass (``_difficulty_counts.c``, built by ``pip install``; where it was not
built, :func:`_dense_counts`, which is its reference and gives the same counts) (its latency: bench/router.py
and docs/guides/difficulty-routing.md).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import operator
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from itertools import compress
from pathlib import Path
from typing import Any

import ahocorasick


def _c_sums() -> Callable[[str, int, bytes], list[float] | None] | None:
    """The C evaluation of a table head on an ASCII prompt (``_difficulty_counts.c``, built by ``pip install``;
    optional: an install without a C compiler has none and counts with :func:`_dense_counts`, the reference,
    which tests/test_difficulty_counts.py compares it with)."""
    try:
        from interlock.routing._difficulty_counts import ascii_sums
    except ImportError:  # pragma: no cover - exercised by tests that remove it
        return None
    return ascii_sums


_ascii_sums = _c_sums()

WEIGHTS_PATH = Path(__file__).resolve().parent / "difficulty_weights.json"
FORMAT = 1
#: Characters of a prompt that are read (the start and the end of longer ones): bounds the cost of a huge prompt.
MAX_CHARS = 40_000

_TOKEN = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)*|[^\w\s]")
_OPTION = re.compile(r"^\s*([A-D])[.)]\s?(.*)$", re.M)
_SENTENCE_END = re.compile(r"[.?!](?:\s|$)")
_MATH = re.compile("[=+\\-*/^<>\u2264\u2265\u221a\u2211\u222b\u03c0\u00d7\u00f7]")
_FRACTION_WORDS = frozenset(["half", "halves", "third", "thirds", "quarter", "quarters", "fourth", "fourths", "fifth",
                             "fifths", "sixth", "sixths", "eighth", "eighths", "tenth", "tenths"])
_NUMBER_WORDS = frozenset(w + p for p in ("", "s") for w in [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen",
    "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million", "half", "twice", "double", "triple",
    "third", "quarter", "fourth", "fifth", "dozen"])
#: Patterns that start with a character class (``[0-9][0-9]*``, not ``[0-9]+``): the regex engine then skips
#: ahead to the next byte of that class instead of trying a match at every position (a third of the cost).
_SLASH_FRACTION = re.compile(r"\d\d*/\d+")
#: The ASCII fast path works on the text's bytes: this table lower-cases A-Z and turns every byte but a letter
#: into a space, so the lower-cased letter runs (what :func:`tokens` cuts as words) are ``translate().split()``.
_LETTER_RUNS = bytes(c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 else 32 for c in range(256))
_DIGITS = b"0123456789"
#: Whitespace as str.split() sees it (str.isspace) to b" ", every other byte to b"x": a word starts at each b" x".
_WORD_MARKS = bytes(32 if chr(c).isspace() else 120 for c in range(256))
_NUMBER_ASCII = re.compile(r"[0-9][0-9]*(?:[.,][0-9]+)*")  # tokens()' numbers, in ASCII text


def _counted_automaton() -> ahocorasick.Automaton:
    """Aho-Corasick over the letter runs: each counted word, space-delimited, and the prefix " percent", each
    with its (number word, fraction word, percent) increments."""
    automaton = ahocorasick.Automaton()
    for word in _NUMBER_WORDS | _FRACTION_WORDS:
        automaton.add_word(f" {word} ", (int(word in _NUMBER_WORDS), int(word in _FRACTION_WORDS), 0))
    automaton.add_word(" percent", (0, 0, 1))
    automaton.make_automaton()
    return automaton


_COUNTED_AUTOMATON = _counted_automaton()
_UPPER_WORD = re.compile(r"[A-Z](?<!\w.)[A-Z]{2,}(?!\w)")


class _Log1p(dict[int, float]):
    """log1p of a count: looked up for small counts (``map`` over a lookup is cheaper than calls), else computed."""

    def __missing__(self, count: int) -> float:
        return math.log1p(count)


_LOG1P = _Log1p((i, math.log1p(i)) for i in range(1024))


class ScorerUnavailable(Exception):
    """The weights file is missing or malformed (the message names the file and the problem)."""


def _clip(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    half = MAX_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def is_choice(text: str) -> bool:
    """A multiple-choice prompt: at least three distinct option letters A-D at the start of lines."""
    # Three matches need three line starts; most prompts have fewer, and counting is cheaper than the regex.
    return "\n" in text and text.count("\n") >= 2 and len({m.group(1) for m in _OPTION.finditer(text)}) >= 3


def tokens(text: str) -> list[str]:
    """Lower-cased words, numbers and single punctuation marks."""
    return _TOKEN.findall(text.lower())


def terms(text: str, toks: list[str] | None = None) -> dict[str, int]:
    """Term frequencies: word unigrams and bigrams (numbers as ``<num>``, plus ``<numK>`` unigrams)."""
    tf: dict[str, int] = {}
    words: list[str] = []
    for t in tokens(text) if toks is None else toks:
        if t[0].isdigit():
            shadow = f"<num{min(len(t), 6)}>"
            tf[shadow] = tf.get(shadow, 0) + 1
            t = "<num>"
        words.append(t)
        tf[t] = tf.get(t, 0) + 1
    for a, b in itertools.pairwise(words):
        k = f"{a} {b}"
        tf[k] = tf.get(k, 0) + 1
    return tf


DENSE_NAMES = ("log_chars", "log_words", "log_stem_chars", "nums", "distinct_nums", "decimals", "big_nums",
               "max_digits", "percent", "dollar", "fraction", "number_words", "sentences", "questions", "math",
               "upper_words", "lines", "commas", "long_words", "option_mean", "option_max", "option_spread")


def dense_features(text: str, toks: list[str] | None = None, choice: bool | None = None) -> dict[str, float]:
    """The hand-written features, each log1p of a count or length (see the module docstring)."""
    return dict(zip(DENSE_NAMES, _dense_values(text, toks, choice), strict=True))


def _dense_values(text: str, toks: list[str] | None, choice: bool | None,
                  skip: frozenset[str] = frozenset()) -> list[float]:
    """:func:`dense_features`' values in ``DENSE_NAMES`` order: log1p of :func:`_dense_counts`, then the
    option lengths' features (0.0 without options)."""
    counts, options = _dense_counts(text, toks, choice, skip)
    values = list(map(_LOG1P.__getitem__, counts))
    if options:
        log = math.log1p
        lengths = [len(o) for o in options]
        values += (log(sum(lengths) / len(lengths)), log(max(lengths)), log(max(lengths)) - log(min(lengths)))
    else:
        values += (0.0, 0.0, 0.0)
    return values


#: The features of ``DENSE_NAMES`` that are counts (log1p of an int); the option features follow them.
N_COUNTS = len(DENSE_NAMES) - 3


def _dense_counts(text: str, toks: list[str] | None, choice: bool | None,
                  skip: frozenset[str] = frozenset()) -> tuple[tuple[int, ...], list[str]]:
    """The counts behind the first ``N_COUNTS`` dense features, and the prompt's options (none unless ``choice``).

    This runs on every request of a difficulty policy, so it counts in as few passes as it can: without
    ``toks`` (the open head needs no terms), an ASCII text's letter runs come from one byte translation, which
    one Aho-Corasick pass scans for the counted words; its words are counted from a second translation, its
    numbers by a regex run only when a digit is present; no per-word object is made but the numbers.
    The costliest counts are left at 0 when they are in ``skip`` (features the head has no weight for)."""
    if choice is None:
        choice = is_choice(text)
    options = [m.group(2) for m in _OPTION.finditer(text)][-4:] if choice else []
    stem = text
    if options:
        cut = text.rfind("\nA")
        stem = text[:cut] if cut >= 0 else text
    distinct = decimals = big = longest = 0
    if toks is None and text.isascii():
        raw = text.encode("ascii")
        # The letter runs, space-separated and lower-cased: one automaton pass finds every counted word (as
        # " word ") and every run that starts with "percent" (as " percent"), the words never made.
        number_words = fraction = percent = 0
        for _, (is_number, is_fraction, is_percent) in _COUNTED_AUTOMATON.iter(
                " " + raw.translate(_LETTER_RUNS).decode("ascii") + " "):
            number_words += is_number
            fraction += is_fraction
            percent += is_percent
        # Counted without making the words (str.split() of a long prompt makes an object per word).
        n_words = (b" " + raw.translate(_WORD_MARKS)).count(b" x") if "long_words" in skip else -1
        n_numbers = 0
        if len(raw.translate(None, _DIGITS)) != len(raw):
            # On the str: a str's `in` is cheap, bytes' formats a TypeError first (see above).
            n_numbers, distinct, decimals, big, longest = _number_counts(_NUMBER_ASCII.findall(text))
    else:
        numbers: list[str] = []
        percent = fraction = number_words = 0
        for t in tokens(text) if toks is None else toks:
            if t[0].isdigit():  # a number token is digits only: never one of the words below
                numbers.append(t)
                continue
            if t in _NUMBER_WORDS:
                number_words += 1
            if t in _FRACTION_WORDS:
                fraction += 1
            if t[0] == "p" and t.startswith("percent"):
                percent += 1
        if numbers:
            n_numbers, distinct, decimals, big, longest = _number_counts(numbers)
        else:
            n_numbers = 0
        n_words = -1
    words = text.split() if n_words < 0 else []
    return (
        len(text),
        len(words) if n_words < 0 else n_words,
        len(stem),
        n_numbers,
        distinct,
        decimals,
        big,
        longest,
        # `in` before count(): count() parses its arguments, `in` does not, and most of these are absent.
        (text.count("%") if "%" in text else 0) + percent,
        text.count("$") if "$" in text else 0,
        fraction + (len(_SLASH_FRACTION.findall(text)) if "/" in text else 0),
        number_words,
        0 if "sentences" in skip else len(_SENTENCE_END.findall(stem)),
        stem.count("?") if "?" in stem else 0,
        0 if "math" in skip else len(_MATH.findall(text)),
        # All lower case (and some letter): no upper-case word, without the regex.
        0 if "upper_words" in skip or stem.islower() else len(_UPPER_WORD.findall(stem)),
        text.count("\n") if "lines" not in skip and "\n" in text else 0,
        text.count(",") if "," in text else 0,
        0 if "long_words" in skip else len([w for w in words if len(w) > 7]),
    ), options


def _number_counts(numbers: list[str]) -> tuple[int, int, int, int, int]:
    """Of a non-empty list of numbers: how many, distinct, with a decimal point, of four digits or more, and
    the most digits (C loops: ``map`` rather than generators)."""
    digits = list(map(len, numbers))
    return (len(numbers), len(set(numbers)), sum(map(str.__contains__, numbers, itertools.repeat("."))),
            sum(map((3).__lt__, digits)), max(digits))


class _Weighted(dict[int, complex]):
    """A count feature's weights times log1p of the count, by the count (looked up for small counts, else
    computed). A head of one or two outputs keeps both products in one complex number, whose sums add the real
    and the imaginary parts separately, each exactly as a float sum would: one lookup per feature, not one per
    feature and output, and a sum of these equals the dot products term for term."""

    __slots__ = ("weights",)

    def __init__(self, weights: tuple[float, float]) -> None:
        super().__init__((i, complex(weights[0] * _LOG1P[i], weights[1] * _LOG1P[i])) for i in range(1024))
        self.weights = weights

    def __missing__(self, count: int) -> complex:
        log = math.log1p(count)
        return complex(self.weights[0] * log, self.weights[1] * log)


@dataclass(frozen=True, slots=True)
class _Head:
    kind: str  # "linear" (the gain), "multinomial" (logits of FF, FT, TF against TT), "pair" (strong/weak right)
    bias: tuple[float, ...]  # or "blend": the linear gain, then the multinomial's three logits
    dense: dict[str, tuple[float, ...]]
    terms: dict[str, tuple[float, ...]]
    blend: tuple[float, ...] = ()  # "blend": gain = a * linear gain + b * (P(F,T) - P(T,F)) + c
    #: Per output, the dense weights in ``DENSE_NAMES`` order (0.0 where a feature has none), so that
    #: :meth:`gain` sums the products in C (``sum(map(mul, ...))``, in the same order as a loop would).
    dense_cols: tuple[tuple[float, ...], ...] = ()
    #: Dense features without a weight: not computed.
    skip: frozenset[str] = frozenset()
    #: A head without terms and of one or two outputs: per count feature (in :func:`_dense_counts`' order),
    #: its weights times log1p by count (:class:`_Weighted`), and the biases as the sum's start. A prompt
    #: without options is scored from its non-zero counts alone: the same products summed in the same order
    #: as the dot product (a zero count, or a feature without weights, adds exactly 0.0).
    count_tables: tuple[_Weighted, ...] = ()
    count_start: complex = 0j
    #: ``skip``'s counts that :func:`_dense_counts` leaves at 0, as bits by position (for the C counts).
    skip_mask: int = 0
    #: The count tables' weights for the C evaluation: the biases, then each count's two weights, as doubles.
    packed: bytes = b""

    def gain(self, text: str, choice: bool | None = None) -> float:
        if choice is None:
            choice = is_choice(text)
        toks = None
        if self.count_tables and not choice:
            # A one-output head reads z[0] only.
            sums = _ascii_sums(text, self.skip_mask, self.packed) if _ascii_sums is not None else None
            if sums is not None:
                z = sums
            else:  # not ASCII, or the C module was not built: the same sums, from the tables
                counts = _dense_counts(text, None, False, self.skip)[0]
                # dict.__getitem__, not operator.getitem: a dict subclass's subscript slot goes through a method call.
                total = sum(map(dict.__getitem__, compress(self.count_tables, counts), filter(None, counts)),
                            self.count_start)
                z = [total.real, total.imag]
        else:
            toks = tokens(text) if self.terms else None
            values = _dense_values(text, toks, choice, self.skip)
            mul = operator.mul
            z = [sum(map(mul, col, values), bias) for col, bias in zip(self.dense_cols, self.bias, strict=True)]
        k = len(z)
        if toks is not None:
            tf = terms(text, toks)
            log = math.log
            norm = math.sqrt(sum(1.0 if c == 1 else (1.0 + log(c)) ** 2 for c in tf.values())) or 1.0
            get = self.terms.get
            if k == 1:
                acc = 0.0
                for term, c in tf.items():
                    w = get(term)
                    if w is not None:
                        acc += w[0] if c == 1 else w[0] * (1.0 + log(c))
                z[0] += acc / norm
            else:
                for term, c in tf.items():
                    w = get(term)
                    if w is not None:
                        v = (1.0 if c == 1 else 1.0 + log(c)) / norm
                        for i in range(k):
                            z[i] += w[i] * v
        if self.kind == "linear":
            return min(1.0, max(-1.0, z[0]))
        if self.kind == "pair":
            strong, weak = z
            exp = math.exp  # two logistic sigmoids, inlined: this is the open head's every request
            return ((1.0 / (1.0 + exp(-strong)) if strong >= 0 else exp(strong) / (1.0 + exp(strong)))
                    - (1.0 / (1.0 + exp(-weak)) if weak >= 0 else exp(weak) / (1.0 + exp(weak))))
        if self.kind == "blend":
            lin, cells, offset = self.blend
            return min(1.0, max(-1.0, lin * z[0] + cells * _cells_gain(z[1:]) + offset))
        return _cells_gain(z)


def _cells_gain(z: list[float]) -> float:
    """P(F,T) - P(T,F) from the logits of (F,F), (F,T), (T,F) against (T,T)."""
    top = max(0.0, *z)
    e = [math.exp(v - top) for v in z]
    return (e[1] - e[2]) / (math.exp(-top) + sum(e))


def _count_tables(dense: dict[str, tuple[float, ...]], terms: object, width: int, bias: tuple[float, ...]
                  ) -> tuple[tuple[_Weighted, ...], complex, bytes]:
    """:attr:`_Head.count_tables`, :attr:`_Head.count_start` and :attr:`_Head.packed` (none for a head with terms
    or of three or more outputs, which take the dot product; a one-output head's imaginary parts are 0.0 and
    unused)."""
    if terms or width > 2:
        return (), 0j, b""
    zero = _Weighted((0.0, 0.0))
    tables = tuple(_Weighted((dense[n][0], dense[n][1] if width == 2 else 0.0)) if n in dense else zero
                   for n in DENSE_NAMES[:N_COUNTS])
    start = complex(bias[0], bias[1] if width == 2 else 0.0)
    packed = struct.pack(f"{2 + 2 * N_COUNTS}d", start.real, start.imag,
                         *itertools.chain.from_iterable(t.weights for t in tables))
    return tables, start, packed


#: The counts :func:`_dense_counts` leaves at 0 when they are in ``skip`` (the others it always computes).
SKIPPABLE = ("sentences", "math", "upper_words", "lines", "long_words")


def skip_mask(skip: frozenset[str]) -> int:
    """``skip``'s counts that :func:`_dense_counts` leaves at 0, as bits by position in ``DENSE_NAMES``."""
    return sum(1 << DENSE_NAMES.index(name) for name in SKIPPABLE if name in skip)


def _finite_number(x: Any) -> bool:
    return type(x) in (float, int) and math.isfinite(x)


class DifficultyScorer:
    """Scores prompts with the committed weights (thread-safe, read-only once loaded)."""

    def __init__(self, name: str, heads: dict[str, _Head], quantiles: tuple[float, ...]) -> None:
        self.name = name
        self._choice = heads["choice"]
        self._open = heads["open"]
        self.quantiles = quantiles

    @classmethod
    def load(cls, path: Path | None = None) -> DifficultyScorer:
        path = WEIGHTS_PATH if path is None else path
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise ScorerUnavailable(f"{path}: the difficulty scorer's weights file is missing "
                                    "(regenerate it with `make train-router`)") from None
        except (OSError, ValueError) as exc:
            raise ScorerUnavailable(f"{path}: cannot read the difficulty scorer's weights: {exc}") from None
        try:
            return cls._parse(raw)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ScorerUnavailable(f"{path}: malformed difficulty scorer weights: {exc!r}") from None

    @classmethod
    def _parse(cls, raw: Any) -> DifficultyScorer:
        if not isinstance(raw, dict):
            raise TypeError("the top level is not an object")
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, this version reads format {FORMAT}")
        heads: dict[str, _Head] = {}
        for name in ("choice", "open"):
            h = raw["heads"][name]
            kind = h["kind"]
            width = {"linear": 1, "multinomial": 3, "pair": 2, "blend": 4}[kind]

            def vec(v: Any, where: str, width: int = width) -> tuple[float, ...]:
                out = tuple(v)
                # float() also takes strings: numbers must be JSON numbers (isfinite fails on anything else).
                if len(out) != width or not all(map(_finite_number, out)):
                    raise ValueError(f"{where}: expected {width} finite numbers")
                return out

            dense = {k: vec(v, f"{name}.dense.{k}") for k, v in h["dense"].items()}
            unknown = set(dense) - set(DENSE_NAMES)
            if unknown:
                raise ValueError(f"{name}.dense: unknown features {sorted(unknown)}")
            bias = vec(h["bias"], f"{name}.bias")
            skip = frozenset(DENSE_NAMES) - set(dense)
            tables, start, packed = _count_tables(dense, h["terms"], width, bias)
            heads[name] = _Head(kind, bias, dense,
                                {k: vec(v, f"{name}.terms") for k, v in h["terms"].items()},
                                vec(h["blend"], f"{name}.blend", 3) if kind == "blend" else (),
                                tuple(tuple(dense[n][i] if n in dense else 0.0 for n in DENSE_NAMES)
                                      for i in range(width)),
                                skip, tables, start, skip_mask(skip), packed)
        quantiles = tuple(float(q) for q in raw["quantiles"])
        if len(quantiles) != 101 or any(b < a for a, b in itertools.pairwise(quantiles)):
            raise ValueError("quantiles: expected 101 non-decreasing numbers")
        return cls(str(raw["name"]), heads, quantiles)

    def gain(self, text: str) -> float:
        """The expected quality gain of the strong model, P(strong right) - P(weak right), in [-1, 1]."""
        if len(text) > MAX_CHARS:
            text = _clip(text)
        if is_choice(text):
            return self._choice.gain(text, True)
        return self._open.gain(text, False)

    def score(self, text: str) -> float:
        """In [0, 1]: (1 + gain) / 2; higher means the strong model is more needed."""
        score = (1.0 + self.gain(text)) / 2.0
        if 0.0 <= score <= 1.0:
            return score
        return 1.0 if score > 1.0 else 0.0


@functools.cache
def shared_scorer() -> DifficultyScorer:
    """The committed scorer, loaded once per process."""
    return DifficultyScorer.load()
