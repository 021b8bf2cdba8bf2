"""What a simulated model answers: choices, tool calls, structured output, reasoning and usage.

Everything here is format-neutral and deterministic for a given request: the
content RNG is seeded from the request (``seed`` included), so the same
request gives the same answer through every wire format and in both
streaming and non-streaming modes. Token counts come from the catalog's
counters, so usage matches what the cost engine would compute.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from interlock.core.model import Model
from interlock.simulator.anthropic_cache import BreakpointCache, block_ends, min_cacheable_tokens
from interlock.simulator.cache import PrefixCache, cached_amount
from interlock.simulator.catalog_view import count_chat
from interlock.simulator.content import (
    PieceCounter,
    answer_pieces,
    apply_stop,
    chop,
    thinking_text,
    topic_words,
)
from interlock.simulator.jsonschema_gen import SchemaError, generate
from interlock.simulator.latency import sample_lognormal
from interlock.simulator.logprobs import piece_logprobs
from interlock.simulator.request import SimRequest, ToolDef
from interlock.vendors.simulator import simulator_logprobs

Finish = Literal["stop", "length", "tool_calls"]

AUTO_TOOL_PROBABILITY = 0.8
PARALLEL_PROBABILITY = 0.35
DEFAULT_MAX_OUTPUT = 4096
_EFFORT_RANGES = {"minimal": (0, 64), "low": (64, 512), "medium": (192, 1536), "high": (768, 6144)}
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text
    argument_pieces: list[str]


@dataclass(slots=True)
class Choice:
    index: int
    pieces: list[str]
    tool_calls: list[ToolCall]
    finish: Finish
    output_tokens: int  # visible text + tool calls
    reasoning_tokens: int = 0
    thinking: list[str] = field(default_factory=list)
    signature: str = ""
    stop_sequence: str | None = None
    #: Per piece, the log-probability entries of the tokens it completes (None: not requested).
    logprobs: list[list[dict[str, Any]]] | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int  # includes reasoning tokens, like OpenAI
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0  # all cache writes, 1-hour ones included
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Generation:
    choices: list[Choice]
    usage: Usage
    response_seed: int


def random_id(rng: random.Random, size: int = 24) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(size))


def build_generation(
    req: SimRequest,
    model: Model,
    counter: PieceCounter,
    cache: PrefixCache | None,
    block_cache: BreakpointCache | None = None,
) -> Generation:
    """Answer ``req``; ``cache`` caches automatically (OpenAI, Gemini), ``block_cache`` by markers (Anthropic)."""
    seed = req.content_seed()
    prompt_tokens = count_chat(req.count_request, model) + req.extra_prompt_tokens
    cached = write = write_1h = 0
    caching = "prompt_caching" in model.capabilities
    if caching and req.cache_units is not None and block_cache is not None:
        blocks, ends = block_ends(req.cache_units, lambda fragment: count_chat(fragment, model), prompt_tokens)
        used = block_cache.lookup_and_store(model.id, blocks, ends, min_tokens=min_cacheable_tokens(model.id))
        cached, write, write_1h = used.read, used.write, used.write_1h
    elif caching and req.cache_units is None and cache is not None:
        unit_tokens = [counter.text(text) + 4 for _, text in req.segments]
        matched = cache.lookup_and_store(model.id, [u for u, _ in req.segments], unit_tokens)
        cached = min(cached_amount(matched), prompt_tokens)
    limit = req.max_tokens if req.max_tokens is not None else (model.max_output or DEFAULT_MAX_OUTPUT)
    topics = topic_words(req.prompt_text)
    choices = [_choice(req, model, counter, random.Random(seed + i), i, limit, topics) for i in range(req.n)]
    if req.logprobs and simulator_logprobs(model.id):
        for choice in choices:
            choice.logprobs = piece_logprobs(model, choice.pieces, req.top_logprobs, seed + choice.index)
    completion = sum(c.output_tokens + c.reasoning_tokens for c in choices)
    usage = Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        reasoning_tokens=sum(c.reasoning_tokens for c in choices),
        cached_tokens=cached,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
    )
    return Generation(choices=choices, usage=usage, response_seed=seed)


def reasoning_tokens_for(req: SimRequest, model: Model, rng: random.Random) -> int:
    """Hidden or visible thinking spent before answering.

    Models with the catalog capability ``reasoning`` think by default, except
    Anthropic's, which think only when the request enables thinking.
    """
    if "reasoning" not in model.capabilities or req.reasoning == "off":
        return 0
    effort = req.reasoning
    if effort is None:
        if model.lab == "anthropic" and req.thinking_budget is None:
            return 0
        effort = "medium"
    lo, hi = _EFFORT_RANGES[effort]
    tokens = rng.randint(lo, hi)
    if req.thinking_budget is not None:
        tokens = min(tokens, req.thinking_budget) if req.thinking_budget > 0 else 0
    return tokens


def _choice(
    req: SimRequest,
    model: Model,
    counter: PieceCounter,
    rng: random.Random,
    index: int,
    limit: int,
    topics: list[str],
) -> Choice:
    reasoning = min(reasoning_tokens_for(req, model, rng), limit)
    thinking: list[str] = []
    signature = ""
    if reasoning and req.show_thinking:
        thinking = thinking_text(rng, topics, reasoning, counter)
        reasoning = counter.text("".join(thinking))
        signature = random_id(rng, 96)
    room = limit - reasoning
    if room <= 0:  # all of max_tokens went to reasoning: an empty, truncated answer (as vendors do)
        return Choice(index, [], [], "length", 0, reasoning, thinking, signature)
    chosen = _tools_to_call(req, rng)
    if chosen:
        calls = [_tool_call(tool, rng) for tool in chosen]
        tokens = sum(counter.text(c.name + c.arguments) + 3 for c in calls)
        if tokens <= room:
            return Choice(index, [], calls, "tool_calls", tokens, reasoning, thinking, signature)
    if req.response_schema is not None or req.json_mode:
        return _structured(req, counter, rng, index, room, reasoning, thinking, signature)
    target = max(8, round(sample_lognormal(140, 520, rng)))
    pieces, cut = answer_pieces(rng, topics, target, room, counter)
    finish: Finish = "length" if cut else "stop"
    pieces, matched = apply_stop(pieces, req.stop)
    if matched is not None:
        finish = "stop"
    tokens = counter.text("".join(pieces))
    return Choice(index, pieces, [], finish, tokens, reasoning, thinking, signature, matched)


def _tools_to_call(req: SimRequest, rng: random.Random) -> list[ToolDef]:
    if not req.tools or req.tool_choice == "none":
        return []
    if isinstance(req.tool_choice, tuple):
        named = [t for t in req.tools if t.name == req.tool_choice[1]]
        return named[:1]
    if req.tool_choice == "auto" and (req.last_role != "user" or rng.random() >= AUTO_TOOL_PROBABILITY):
        return []
    count = 1
    if req.parallel_tool_calls and rng.random() < PARALLEL_PROBABILITY:
        count = rng.randint(2, 3)
    if count <= len(req.tools):
        return rng.sample(req.tools, count)
    return [rng.choice(req.tools) for _ in range(count)]  # the same tool twice, e.g. two cities


def _tool_call(tool: ToolDef, rng: random.Random) -> ToolCall:
    schema = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
    try:
        args = generate(schema, rng)
    except SchemaError:
        args = {}
    text = orjson.dumps(args).decode()
    return ToolCall(id=random_id(rng), name=tool.name, arguments=text, argument_pieces=chop(text, rng))


def _structured(
    req: SimRequest,
    counter: PieceCounter,
    rng: random.Random,
    index: int,
    room: int,
    reasoning: int,
    thinking: list[str],
    signature: str,
) -> Choice:
    if req.response_schema is not None:
        try:
            value = generate(req.response_schema, rng)
        except SchemaError:
            value = {}
    else:
        topics = topic_words(req.prompt_text)
        pieces, _ = answer_pieces(rng, topics, 30, 60, counter)
        value = {"answer": "".join(pieces).strip(), "confidence": round(rng.uniform(0.6, 0.99), 2)}
    text = orjson.dumps(value).decode()
    pieces = chop(text, rng, 2, 6)
    tokens = counter.text(text)
    if tokens <= room:
        return Choice(index, pieces, [], "stop", tokens, reasoning, thinking, signature)
    kept: list[str] = []
    while pieces and counter.text("".join([*kept, pieces[0]])) <= room:
        kept.append(pieces.pop(0))
    return Choice(index, kept, [], "length", counter.text("".join(kept)), reasoning, thinking, signature)
