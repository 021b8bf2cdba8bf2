"""Prices, normalised usage and exact cost: the money model every layer shares.

Money is integers all the way down: a price is micro-USD per 1M tokens, so
``tokens * price`` is an exact count of pico-USD (1e-12 USD). Floats appear only
at the edge (``Cost.usd``) because JSON consumers want a number; ledgers, budgets
and sums use ``Cost.picousd`` so that adding a million small requests never
drifts. A :class:`Usage` has disjoint input buckets (each vendor's usage parser
maps onto it), so :func:`cost_of` is one sum of (bucket x rate) with no vendor
special cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

#: 1 USD in micro-USD (the unit of a price, per 1M tokens).
MICRO = 1_000_000
#: 1 USD in pico-USD (the unit of a cost). tokens x micro-USD/1M = pico-USD.
PICO = 1_000_000_000_000

PRICE_FIELDS: tuple[str, ...] = (
    "input",
    "output",
    "cache_read",
    "cache_write",
    "reasoning",
    "input_audio",
    "output_audio",
    "citation",
)


def usd_to_micro(value: Any, *, what: str = "price") -> int:
    """Convert a USD-per-1M amount (str, int, float or Decimal) to exact micro-USD.

    Floats go through ``repr`` (shortest round-trip form), so ``0.4`` becomes
    400_000 and not 399_999. A value within 1e-6 micro-USD of a whole number is
    a binary-float artefact in the source (``0.049999999999999996``) and is
    snapped to it; anything genuinely finer than 1 micro-USD per 1M tokens is
    refused rather than silently rounded.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError as exc:
        raise ValueError(f"{what}: not a number: {value!r}") from exc
    if not dec.is_finite() or dec < 0:
        raise ValueError(f"{what}: must be a finite, non-negative number, got {value!r}")
    micro = dec * MICRO
    whole = micro.to_integral_value()
    if abs(micro - whole) > Decimal("0.000001"):
        raise ValueError(f"{what}: {value!r} USD/1M is finer than 1 micro-USD per 1M tokens")
    return int(whole)


def micro_to_usd_str(micro: int, per: int = MICRO) -> str:
    """Render ``micro`` micro-USD divided by ``per`` as an exact plain decimal string.

    ``per=MICRO`` gives USD per 1M tokens; ``per=MICRO * MICRO`` gives USD per
    token (what OpenRouter-style listings show, e.g. ``"0.0000004"``).
    """
    return _decimal_str(Decimal(micro) / Decimal(per))


def _decimal_str(dec: Decimal) -> str:
    # Dividing by a power of ten is exact in Decimal; format without exponent
    # and strip trailing zeros so "0.160000" renders as "0.16".
    text = format(dec, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Rates that apply to the whole request once the prompt exceeds ``above`` tokens.

    Long-context pricing (Gemini and Claude above 200k, GPT-5.4 above 272k) bills
    *every* token of such a request at the higher rate, not just the excess.
    Fields left ``None`` keep the base rate.
    """

    above: int
    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    input_audio: int | None = None
    output_audio: int | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """Rates in integer micro-USD per 1M tokens; ``None`` means unknown / not offered.

    ``request`` is micro-USD per 1,000 requests (Perplexity-style search fees).
    ``modes`` holds alternative rate cards selected by a request option (e.g.
    Anthropic's ``fast`` mode); cost_of never applies them implicitly.
    """

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    input_audio: int | None = None
    output_audio: int | None = None
    citation: int | None = None
    request: int | None = None
    tiers: tuple[PriceTier, ...] = ()
    modes: tuple[tuple[str, Price], ...] = ()

    @property
    def known(self) -> bool:
        """True when both the input and output rates are known."""
        return self.input is not None and self.output is not None

    def mode(self, name: str) -> Price | None:
        for mode_name, price in self.modes:
            if mode_name == name:
                return price
        return None

    def for_prompt(self, prompt_tokens: int) -> Price:
        """The effective rate card for a request whose prompt has ``prompt_tokens`` tokens."""
        chosen: PriceTier | None = None
        for tier in self.tiers:
            if prompt_tokens > tier.above and (chosen is None or tier.above > chosen.above):
                chosen = tier
        if chosen is None:
            return self
        updates = {
            f.name: getattr(chosen, f.name)
            for f in fields(PriceTier)
            if f.name != "above" and getattr(chosen, f.name) is not None
        }
        return replace(self, tiers=(), **updates)

    def blended(self) -> int | None:
        """A single comparable figure (3 parts input to 1 part output), for ranking routes."""
        if self.input is None or self.output is None:
            return None
        return (3 * self.input + self.output) // 4

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form (the packaged catalog's price schema): unknown fields omitted."""
        out: dict[str, Any] = {
            name: getattr(self, name)
            for name in (*PRICE_FIELDS, "request")
            if getattr(self, name) is not None
        }
        if self.tiers:
            out["tiers"] = [
                {f.name: getattr(t, f.name) for f in fields(PriceTier) if getattr(t, f.name) is not None}
                for t in self.tiers
            ]
        if self.modes:
            out["modes"] = {name: price.to_json() for name, price in self.modes}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Price:
        """Inverse of :meth:`to_json` (trusted, already-integer input)."""
        tiers = tuple(PriceTier(**t) for t in data.get("tiers", ()))
        modes = tuple((name, cls.from_json(p)) for name, p in sorted(data.get("modes", {}).items()))
        return cls(
            **{name: data.get(name) for name in (*PRICE_FIELDS, "request")},
            tiers=tiers,
            modes=modes,
        )


# Not frozen: a frozen dataclass costs more to build (its __init__ goes through object.__setattr__),
# and one is built per request.
# Treat instances as immutable values all the same (``+`` returns a new one).
@dataclass(slots=True)
class Usage:
    """Token usage normalised across vendors.

    Input buckets are disjoint: ``input_tokens`` (uncached text input billed at
    the input rate), ``cache_read_tokens``, ``cache_write_tokens`` and
    ``input_audio_tokens`` add up to the whole prompt. ``output_tokens`` is *all*
    output; ``reasoning_tokens`` and ``output_audio_tokens`` are parts of it.
    ``estimated`` marks counts interlock computed itself (vendor sent none).
    """

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    estimated: bool = False
    citation_tokens: int = 0
    requests: int = 0
    #: The part of ``cache_write_tokens`` written with Anthropic's 1-hour lifetime (billed at 2x input).
    cache_write_1h_tokens: int = 0

    def __init__(self, input_tokens: int = 0, cache_read_tokens: int = 0, cache_write_tokens: int = 0,
                 output_tokens: int = 0, reasoning_tokens: int = 0, input_audio_tokens: int = 0,
                 output_audio_tokens: int = 0, estimated: bool = False, citation_tokens: int = 0, requests: int = 0,
                 cache_write_1h_tokens: int = 0) -> None:
        """Written out: the compiled build compiles a dataclass's own __init__, not the generated one."""
        self.input_tokens = input_tokens
        self.cache_read_tokens = cache_read_tokens
        self.cache_write_tokens = cache_write_tokens
        self.output_tokens = output_tokens
        self.reasoning_tokens = reasoning_tokens
        self.input_audio_tokens = input_audio_tokens
        self.output_audio_tokens = output_audio_tokens
        self.estimated = estimated
        self.citation_tokens = citation_tokens
        self.requests = requests
        self.cache_write_1h_tokens = cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt, OpenAI semantics (cached and cache-written tokens included)."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.input_audio_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        values: dict[str, Any] = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(Usage)
            if f.name != "estimated"
        }
        return Usage(**values, estimated=self.estimated or other.estimated)

    def to_openai(self) -> dict[str, Any]:
        """Render as an OpenAI chat-completions ``usage`` object: the canonical usage translating adapters emit.

        ``prompt_tokens`` includes cache reads and writes, each also named in the details;
        ``cache_write_tokens`` and ``cache_write_1h_tokens`` are interlock's additions.
        """
        prompt_details: dict[str, int] = {"cached_tokens": self.cache_read_tokens,
                                          "audio_tokens": self.input_audio_tokens}
        if self.cache_write_tokens:
            # Not an OpenAI field (OpenAI has no cache writes); it keeps Anthropic/Bedrock
            # cache creation visible, and priced at its own rate, through the canonical shape.
            prompt_details["cache_write_tokens"] = self.cache_write_tokens
            if self.cache_write_1h_tokens:
                prompt_details["cache_write_1h_tokens"] = self.cache_write_1h_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": self.output_audio_tokens,
            },
        }


# Not frozen for the same reason as Usage; never mutate one.
@dataclass(slots=True, order=True)
class Cost:
    """An exact amount of money in pico-USD (1e-12 USD)."""

    picousd: int = 0
    estimated: bool = field(default=False, compare=False)

    def __init__(self, picousd: int = 0, estimated: bool = False) -> None:
        """Written out for the compiled build (docs/architecture.md: mypyc leaves a generated __init__ interpreted)."""
        self.picousd = picousd
        self.estimated = estimated

    @property
    def usd(self) -> float:
        """Nearest float, for JSON output only: never sum these."""
        return self.picousd / PICO

    @property
    def usd_str(self) -> str:
        """Exact decimal string in USD, e.g. ``"0.16"``."""
        return _decimal_str(Decimal(self.picousd) / PICO)

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(self.picousd + other.picousd, self.estimated or other.estimated)

    def __radd__(self, other: int) -> Cost:
        # Lets sum(costs) work: sum() starts from the integer 0.
        if other == 0:
            return self
        return NotImplemented


#: The parts of a cost, in the order :func:`_parts` returns them.
COST_PARTS = ("input", "cached input", "cache write", "input audio", "output", "reasoning", "output audio",
              "citations", "requests")


def cost_of(price: Price, usage: Usage) -> Cost:
    """Exact cost of ``usage`` at ``price``: the sum of its parts (:func:`cost_parts`).

    Long-context tiers are chosen by the whole prompt size. Cache reads, cache
    writes and input audio fall back to the input rate when the vendor lists no
    rate of their own; reasoning and output audio fall back to the output rate.
    Unknown input/output rates count as zero, so an unpriced private model costs
    nothing rather than failing the request.
    """
    return Cost(sum(_parts(price, usage)), usage.estimated)


def cost_parts(price: Price, usage: Usage) -> dict[str, int]:
    """What each part of ``usage`` costs at ``price``, in pico-USD (the console's cost breakdown)."""
    return dict(zip(COST_PARTS, _parts(price, usage), strict=True))


def _parts(price: Price, usage: Usage) -> tuple[int, ...]:
    # A tuple, not a dict: cost_of runs on every settled request.
    p = price.for_prompt(usage.prompt_tokens)
    inp = p.input or 0
    # Anthropic's 1-hour cache writes cost twice the input rate (5-minute ones: the catalog's cache_write,
    # 1.25x); no catalog lists the 1-hour rate, and only Anthropic reports such writes.
    write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    out = p.output or 0
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    out_audio = min(usage.output_audio_tokens, usage.output_tokens - reasoning)
    plain_out = usage.output_tokens - reasoning - out_audio
    return (
        usage.input_tokens * inp,
        usage.cache_read_tokens * _or(p.cache_read, inp),
        (usage.cache_write_tokens - write_1h) * _or(p.cache_write, inp) + write_1h * 2 * inp,
        usage.input_audio_tokens * _or(p.input_audio, inp),
        plain_out * out,
        reasoning * _or(p.reasoning, out),
        out_audio * _or(p.output_audio, out),
        usage.citation_tokens * (p.citation or 0),
        # request is per 1,000 requests: micro-USD/1k -> pico-USD is x 1e6 / 1e3.
        usage.requests * (p.request or 0) * 1000,
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
