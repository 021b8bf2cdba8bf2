"""Strings that match simple regular expressions (JSON Schema ``pattern``).

Schemas in tool definitions use short patterns: ``^[A-Z]{3}$``, ``^\\d{4}-\\d{2}$``,
``^(red|green)$``, ``^[a-z0-9_]+$``. This generator covers that subset:
literals, escapes (``\\d \\w \\s`` and escaped punctuation), ``.``, character
classes with ranges and negation, groups with alternation, and the quantifiers
``? * + {n} {n,} {n,m}`` (lazy ``?`` suffixes accepted). Anchors are honoured
by generating a full match. Anything outside the subset raises
:class:`UnsupportedPattern` so the caller can fall back instead of emitting a
string that does not match.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

_DIGITS = string.digits
_WORD = string.ascii_letters + string.digits + "_"
_SPACE = " "
_PRINTABLE = string.ascii_letters + string.digits + " -_.,"


class UnsupportedPattern(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class _Lit:
    text: str


@dataclass(frozen=True, slots=True)
class _Set:
    chars: str


@dataclass(frozen=True, slots=True)
class _Seq:
    items: list[Node]


@dataclass(frozen=True, slots=True)
class _Alt:
    branches: list[Node]


@dataclass(frozen=True, slots=True)
class _Rep:
    node: Node
    lo: int
    hi: int


Node = _Lit | _Set | _Seq | _Alt | _Rep


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.i = 0

    def parse(self) -> Node:
        node = self._alt()
        if self.i != len(self.s):
            raise UnsupportedPattern(f"unexpected {self.s[self.i]!r} at {self.i}")
        return node

    def _peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def _alt(self) -> Node:
        branches = [self._seq()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._seq())
        return branches[0] if len(branches) == 1 else _Alt(branches)

    def _seq(self) -> Node:
        items: list[Node] = []
        while (c := self._peek()) is not None and c not in "|)":
            atom = self._atom()
            items.append(self._quantified(atom))
        return _Seq(items)

    def _quantified(self, atom: Node) -> Node:
        c = self._peek()
        lo, hi = 1, 1
        if c == "?":
            lo, hi = 0, 1
        elif c == "*":
            lo, hi = 0, 4
        elif c == "+":
            lo, hi = 1, 5
        elif c == "{":
            end = self.s.find("}", self.i)
            body = self.s[self.i + 1 : end] if end > 0 else ""
            parts = body.split(",")
            if end < 0 or not 1 <= len(parts) <= 2 or not parts[0].strip().isdigit():
                return atom
            lo = int(parts[0])
            if len(parts) == 1:
                hi = lo
            elif parts[1].strip() == "":
                hi = lo + 4
            elif parts[1].strip().isdigit():
                hi = int(parts[1])
            else:
                raise UnsupportedPattern(f"bad quantifier {{{body}}}")
            self.i = end
        else:
            return atom
        self.i += 1
        if self._peek() in ("?", "+"):  # lazy / possessive suffix: same strings
            self.i += 1
        return _Rep(atom, lo, hi)

    def _atom(self) -> Node:
        c = self.s[self.i]
        self.i += 1
        if c == "(":
            if self.s.startswith("?:", self.i):
                self.i += 2
            elif self._peek() == "?":
                raise UnsupportedPattern("lookarounds and named groups are not supported")
            node = self._alt()
            if self._peek() != ")":
                raise UnsupportedPattern("unbalanced parenthesis")
            self.i += 1
            return node
        if c == "[":
            return _Set(self._class())
        if c == "\\":
            return self._escape(in_class=False)
        if c == ".":
            return _Set(_PRINTABLE)
        if c in "^$":
            return _Seq([])
        return _Lit(c)

    def _escape(self, *, in_class: bool) -> Node:
        if self.i >= len(self.s):
            raise UnsupportedPattern("trailing backslash")
        c = self.s[self.i]
        self.i += 1
        table = {"d": _DIGITS, "w": _WORD, "s": _SPACE, "D": string.ascii_letters, "W": "-.,", "S": _WORD}
        if c in table:
            return _Set(table[c])
        if c in "bB" and not in_class:
            return _Seq([])
        if c in "nrtf":
            return _Lit({"n": "\n", "r": "\r", "t": "\t", "f": "\f"}[c])
        if c.isalnum():
            raise UnsupportedPattern(f"escape \\{c} is not supported")
        return _Lit(c)

    def _class(self) -> str:
        negate = self._peek() == "^"
        if negate:
            self.i += 1
        chars: list[str] = []
        first = True
        while True:
            c = self._peek()
            if c is None:
                raise UnsupportedPattern("unterminated character class")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            self.i += 1
            if c == "\\":
                node = self._escape(in_class=True)
                chars.extend(node.text if isinstance(node, _Lit) else node.chars if isinstance(node, _Set) else "")
                continue
            if self._peek() == "-" and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                end = self.s[self.i + 1]
                self.i += 2
                if ord(end) < ord(c):
                    raise UnsupportedPattern(f"bad range {c}-{end}")
                chars.extend(chr(x) for x in range(ord(c), ord(end) + 1))
            else:
                chars.append(c)
        if negate:
            pool = [x for x in _PRINTABLE if x not in chars]
            if not pool:
                raise UnsupportedPattern("negated class excludes every printable character")
            return "".join(pool)
        return "".join(dict.fromkeys(chars))


def _emit(node: Node, rng: random.Random, out: list[str]) -> None:
    if isinstance(node, _Lit):
        out.append(node.text)
    elif isinstance(node, _Set):
        out.append(rng.choice(node.chars))
    elif isinstance(node, _Seq):
        for child in node.items:
            _emit(child, rng, out)
    elif isinstance(node, _Alt):
        _emit(rng.choice(node.branches), rng, out)
    else:
        for _ in range(rng.randint(node.lo, node.hi)):
            _emit(node.node, rng, out)


def generate_matching(pattern: str, rng: random.Random) -> str:
    """A string that ``re.search(pattern, s)`` matches (a full match of the pattern)."""
    node = _Parser(pattern).parse()
    out: list[str] = []
    _emit(node, rng, out)
    return "".join(out)
