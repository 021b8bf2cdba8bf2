"""Prices, normalised usage and exact cost.

Money is integers all the way down: a price is micro-USD per 1M tokens, so
``tokens * price`` is an exact count of pico-USD (1e-12 USD). Floats appear only
at the edge (``Cost.usd``) because JSON consumers want a number; ledgers, budgets
and sums use ``Cost.picousd`` so that adding a million small requests never
drifts.

Every vendor reports usage differently (OpenAI's ``prompt_tokens`` *includes*
cached tokens, Anthropic's ``input_tokens`` *excludes* them, Gemini splits
thoughts from candidates...). The ``usage_from_*`` parsers map each vendor's
object onto one :class:`Usage` whose input buckets are disjoint, so
:func:`cost_of` is one sum of (bucket x rate) with no vendor special cases.
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


def cost_of(price: Price, usage: Usage) -> Cost:
    """Exact cost of ``usage`` at ``price``.

    Long-context tiers are chosen by the whole prompt size. Cache reads, cache
    writes and input audio fall back to the input rate when the vendor lists no
    rate of their own; reasoning and output audio fall back to the output rate.
    Unknown input/output rates count as zero, so an unpriced private model costs
    nothing rather than failing the request.
    """
    p = price.for_prompt(usage.prompt_tokens)
    inp = p.input or 0
    # Anthropic's 1-hour cache writes cost twice the input rate (5-minute ones: the catalog's cache_write,
    # 1.25x); no catalog lists the 1-hour rate, and only Anthropic reports such writes.
    write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    out = p.output or 0
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    out_audio = min(usage.output_audio_tokens, usage.output_tokens - reasoning)
    plain_out = usage.output_tokens - reasoning - out_audio
    total = (
        usage.input_tokens * inp
        + usage.cache_read_tokens * _or(p.cache_read, inp)
        + (usage.cache_write_tokens - write_1h) * _or(p.cache_write, inp)
        + write_1h * 2 * inp
        + usage.input_audio_tokens * _or(p.input_audio, inp)
        + plain_out * out
        + reasoning * _or(p.reasoning, out)
        + out_audio * _or(p.output_audio, out)
        + usage.citation_tokens * (p.citation or 0)
        # request is per 1,000 requests: micro-USD/1k -> pico-USD is x 1e6 / 1e3.
        + usage.requests * (p.request or 0) * 1000
    )
    return Cost(total, usage.estimated)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


# --------------------------------------------------------------------------- vendor usage parsers


def _int(obj: Mapping[str, Any] | None, key: str) -> int:
    """A non-negative int field, tolerating absent keys, nulls and float-typed counts."""
    if not obj:
        return 0
    value = obj.get(key)
    if type(value) is int:  # the usual case (bool is not int here)
        return value if value > 0 else 0
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return max(int(value), 0)
    raise ValueError(f"usage field {key!r} is not a number: {value!r}")


def _obj(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if not obj:
        return None
    value = obj.get(key)
    if type(value) is dict:  # what JSON parsing gives; the ABC check below is slower
        return value
    return value if isinstance(value, Mapping) else None


def usage_from_openai(usage: Mapping[str, Any]) -> Usage:
    """Parse an OpenAI usage object (Chat Completions or Responses API shape).

    Chat Completions: ``prompt_tokens`` INCLUDES ``prompt_tokens_details.cached_tokens``
    and ``.audio_tokens``; ``completion_tokens`` includes reasoning and audio
    tokens. The Responses API uses ``input_tokens``/``output_tokens`` with the
    same inclusive semantics. Also used for OpenAI-compatible vendors (Groq,
    xAI, DeepSeek, Together, Fireworks, OpenRouter, Perplexity...); DeepSeek's
    ``prompt_cache_hit_tokens`` and Perplexity's ``citation_tokens`` /
    ``num_search_queries`` are understood too. For a stream, pass the ``usage``
    of the final chunk (sent when ``stream_options.include_usage`` is set).
    """
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt = _int(usage, "prompt_tokens")
        completion = _int(usage, "completion_tokens")
        pdet = _obj(usage, "prompt_tokens_details")
        cdet = _obj(usage, "completion_tokens_details")
    else:
        prompt = _int(usage, "input_tokens")
        completion = _int(usage, "output_tokens")
        pdet = _obj(usage, "input_tokens_details")
        cdet = _obj(usage, "output_tokens_details")
    cached = _int(pdet, "cached_tokens") or _int(usage, "prompt_cache_hit_tokens")
    cached = min(cached, prompt)
    # Not OpenAI's own field: interlock's translating adapters (Anthropic, Bedrock) report
    # cache writes here, inside prompt_tokens, so they are billed at the cache-write rate.
    written = min(_int(pdet, "cache_write_tokens"), prompt - cached)
    in_audio = min(_int(pdet, "audio_tokens"), prompt - cached - written)
    reasoning = min(_int(cdet, "reasoning_tokens"), completion)
    out_audio = min(_int(cdet, "audio_tokens"), completion - reasoning)
    # Positional, in field order (input, cache read, cache write, output, reasoning, input audio,
    # output audio, estimated, citations, requests, 1-hour cache writes): measurably cheaper on the hot path.
    return Usage(prompt - cached - written - in_audio, cached, written, completion, reasoning, in_audio, out_audio,
                 False, _int(usage, "citation_tokens"), _int(usage, "num_search_queries"),
                 min(_int(pdet, "cache_write_1h_tokens"), written) if written else 0)


def usage_from_anthropic(*usages: Mapping[str, Any]) -> Usage:
    """Parse Anthropic Messages usage: ``input_tokens`` EXCLUDES cache reads and writes.

    ``cache_creation_input_tokens`` and ``cache_read_input_tokens`` are separate
    buckets (``cache_creation.ephemeral_1h_input_tokens`` is the 1-hour part of the writes); ``output_tokens`` includes extended-thinking tokens (Anthropic does
    not report the thinking part separately). For a stream pass every usage seen
    in order, e.g. ``message_start.message.usage`` then ``message_delta.usage``:
    the counts are cumulative, so later non-null values win.
    """
    merged: dict[str, Any] = {}
    for usage in usages:
        merged.update({k: v for k, v in usage.items() if v is not None})
    server_tools = _obj(merged, "server_tool_use")
    written = _int(merged, "cache_creation_input_tokens")
    return Usage(
        input_tokens=_int(merged, "input_tokens"),
        cache_read_tokens=_int(merged, "cache_read_input_tokens"),
        cache_write_tokens=written,
        output_tokens=_int(merged, "output_tokens"),
        requests=_int(server_tools, "web_search_requests"),
        # ``cache_creation`` splits the writes by lifetime; the 1-hour ones cost more.
        cache_write_1h_tokens=min(_int(_obj(merged, "cache_creation"), "ephemeral_1h_input_tokens"), written),
    )


def _modality_count(details: Any, modality: str) -> int:
    if not isinstance(details, list):
        return 0
    return sum(
        _int(item, "tokenCount")
        for item in details
        if isinstance(item, Mapping) and str(item.get("modality", "")).upper() == modality
    )


def usage_from_gemini(usage_metadata: Mapping[str, Any]) -> Usage:
    """Parse Gemini / Vertex ``usageMetadata``.

    ``promptTokenCount`` INCLUDES ``cachedContentTokenCount``; tokens the model
    spent in tool use (``toolUsePromptTokenCount``, e.g. grounding) are billed as
    input. ``thoughtsTokenCount`` is NOT part of ``candidatesTokenCount`` and is
    billed as output. Audio prompt tokens (``promptTokensDetails`` with modality
    AUDIO, minus the cached audio in ``cacheTokensDetails``) are billed at the
    audio input rate.
    """
    prompt = _int(usage_metadata, "promptTokenCount")
    cached = min(_int(usage_metadata, "cachedContentTokenCount"), prompt)
    audio = _modality_count(usage_metadata.get("promptTokensDetails"), "AUDIO")
    cached_audio = _modality_count(usage_metadata.get("cacheTokensDetails"), "AUDIO")
    uncached_audio = min(max(audio - cached_audio, 0), prompt - cached)
    tool_prompt = _int(usage_metadata, "toolUsePromptTokenCount")
    thoughts = _int(usage_metadata, "thoughtsTokenCount")
    candidates = _int(usage_metadata, "candidatesTokenCount")
    out_audio = _modality_count(usage_metadata.get("candidatesTokensDetails"), "AUDIO")
    return Usage(
        input_tokens=prompt - cached - uncached_audio + tool_prompt,
        cache_read_tokens=cached,
        input_audio_tokens=uncached_audio,
        output_tokens=candidates + thoughts,
        reasoning_tokens=thoughts,
        output_audio_tokens=min(out_audio, candidates),
    )


def usage_from_bedrock(usage: Mapping[str, Any]) -> Usage:
    """Parse Bedrock Converse / ConverseStream ``usage``.

    ``inputTokens`` EXCLUDES ``cacheReadInputTokens`` and ``cacheWriteInputTokens``
    (``totalTokens`` is the sum of all four). Should a response ever report the
    inclusive form (``totalTokens == inputTokens + outputTokens`` while cache
    counts are non-zero), the cache counts are subtracted instead, so neither
    reading double-counts.
    """
    inp = _int(usage, "inputTokens")
    out = _int(usage, "outputTokens")
    read = _int(usage, "cacheReadInputTokens")
    write = _int(usage, "cacheWriteInputTokens")
    total = usage.get("totalTokens")
    if (read or write) and isinstance(total, int) and total == inp + out and inp >= read + write:
        inp -= read + write
    return Usage(input_tokens=inp, cache_read_tokens=read, cache_write_tokens=write, output_tokens=out)


def usage_from_cohere(usage: Mapping[str, Any]) -> Usage:
    """Parse Cohere v2 chat ``usage``.

    ``billed_units`` holds what Cohere charges for; ``tokens`` also counts the
    prompt template Cohere adds, so it is used only when ``billed_units`` is
    absent. Cohere bills cached prompt tokens at the full input rate, so
    ``cached_tokens`` stays inside ``input_tokens``.
    """
    billed = _obj(usage, "billed_units")
    tokens = _obj(usage, "tokens")
    source = billed if billed and ("input_tokens" in billed or "output_tokens" in billed) else tokens
    return Usage(input_tokens=_int(source, "input_tokens"), output_tokens=_int(source, "output_tokens"))
