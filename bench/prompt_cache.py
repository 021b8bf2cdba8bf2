"""Measurement: automatic Anthropic cache breakpoints over a 20-turn conversation.

One conversation (a ~2,600-token system prompt, three tools, 20 user turns,
each answered by the simulator) is sent twice to Claude Sonnet 4.5, translated
by the Anthropic adapter exactly as the gateway sends it: once as the caller
wrote it (no ``cache_control``), once through
``interlock.cache.breakpoints.place_breakpoints``. Both runs carry the same
answers, so only the markers differ. Each request is counted two ways:

* ``simulator``: the usage the in-process simulator's Anthropic wire reports
  (``simulator/cache.py``: it caches any prefix of 1,024+ tokens, markers or
  not, as OpenAI does; a marker only makes a miss report a cache write);
* ``anthropic rules``: Anthropic's documented behaviour, computed here on the
  translated body: nothing is cached without a marker; a marker writes the
  prefix up to it (1.25x input price); a later request reads the longest
  written prefix found at a block boundary up to 20 blocks before one of its
  markers (0.1x).

Costs use the catalog's prices (``cost_of``). Run:

    PYTHONPATH=src .venv/bin/python bench/prompt_cache.py
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from interlock.cache.breakpoints import place_breakpoints
from interlock.catalog import count_tokens, load_catalog
from interlock.core.pricing import Price, Usage, cost_of
from interlock.core.vendor import Timeouts
from interlock.simulator.settings import SimulatorSettings
from interlock.simulator.transport import SimulatorTransport
from interlock.vendors.anthropic.chat import encode_request

MODEL = "anthropic/claude-sonnet-4-5"
VENDOR_MODEL = "claude-sonnet-4-5"
TURNS = 20
MIN_TOKENS = 1024
LOOKBACK = 20
SYSTEM = ("You are the support assistant of Example Corp. Follow the policy below exactly, quote the "
          "relevant section, and never promise refunds outside it. ") * 90
TOOLS = [{"type": "function", "function": {
    "name": name, "description": f"{name.replace('_', ' ').capitalize()} for the customer's account.",
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}}
    for name in ("lookup_order", "refund_order", "escalate_ticket")]
QUESTIONS = [f"Question {i}: my order {1000 + i} arrived late and the box was damaged; what can you do?"
             for i in range(TURNS)]


def body(request: dict[str, Any]) -> dict[str, Any]:
    sent, _drops, _forced = encode_request(request, VENDOR_MODEL, stream=False)
    return sent


def blocks(sent: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's blocks in Anthropic's render order: tools, system, then each message's content."""
    out = list(sent.get("tools") or ())
    out += sent.get("system") or ()
    for message in sent["messages"]:
        content = message["content"]
        out += [{"type": "text", "text": content}] if isinstance(content, str) else content
    return out


class AnthropicRules:
    """Anthropic's prompt cache as documented: explicit breakpoints, 20-block lookback, one lifetime."""

    def __init__(self, tokens: Callable[[str], int]) -> None:
        self.tokens = tokens
        self.written: set[bytes] = set()

    def usage(self, sent: dict[str, Any]) -> tuple[int, int, int]:
        """``(uncached input, cache read, cache write)`` tokens of one request."""
        items = blocks(sent)
        digest = hashlib.blake2b(digest_size=16)
        keys: list[bytes] = []
        ends: list[int] = []
        total = 0
        for block in items:
            content = {k: v for k, v in block.items() if k != "cache_control"}  # markers are not content
            digest.update(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
            keys.append(digest.copy().digest())
            total += self.tokens(orjson.dumps(content).decode())
            ends.append(total)
        marks = [i for i, block in enumerate(items) if "cache_control" in block]
        read = 0
        for mark in marks:
            for k in range(mark, max(-1, mark - LOOKBACK), -1):
                if keys[k] in self.written:
                    read = max(read, ends[k])
                    break
        write = 0
        for mark in marks:
            if ends[mark] >= MIN_TOKENS:
                if keys[mark] not in self.written:
                    write = max(write, ends[mark] - read)
                self.written.add(keys[mark])
        return total - read - write, read, write


async def run(auto: bool, answers: list[str], price: Price) -> dict[str, tuple[float, float, float]]:
    sim = SimulatorTransport(SimulatorSettings(time_scale=0, seed=1), load_catalog())
    model = load_catalog().get(MODEL)
    rules = AnthropicRules(lambda text: count_tokens(text, model))
    history: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    totals = {"simulator": [0, 0, 0, 0], "anthropic rules": [0, 0, 0, 0]}
    for turn, question in enumerate(QUESTIONS):
        history.append({"role": "user", "content": question})
        request: dict[str, Any] = {"model": MODEL, "messages": list(history), "tools": TOOLS, "max_tokens": 300}
        if auto:
            request = place_breakpoints(request)
        sent = body(request)
        resp = await sim.request("POST", "http://simulator.internal/v1/messages",
                                 {"content-type": "application/json", "anthropic-version": "2023-06-01"},
                                 orjson.dumps({**sent, "model": VENDOR_MODEL}), Timeouts())
        data = orjson.loads(await resp.read())
        usage = data["usage"]
        if len(answers) <= turn:
            answers.append("".join(b.get("text", "") for b in data["content"] if b["type"] == "text"))
        history.append({"role": "assistant", "content": answers[turn]})
        out = usage["output_tokens"]
        sim_row = (usage["input_tokens"], usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"], out)
        fresh, read, write = rules.usage(sent)
        for name, row in (("simulator", sim_row), ("anthropic rules", (fresh, read, write, out))):
            for i, value in enumerate(row):
                totals[name][i] += value
    result = {}
    for name, (fresh, read, write, out) in totals.items():
        prompt = fresh + read + write
        cost = cost_of(price, Usage(input_tokens=fresh, cache_read_tokens=read, cache_write_tokens=write,
                                    output_tokens=out)).usd
        result[name] = (read / prompt, write / prompt, cost)
    return result


async def main() -> None:
    model = load_catalog().get(MODEL)
    assert model is not None and model.reference_route.price is not None
    price = model.reference_route.price
    answers: list[str] = []
    plain = await run(False, answers, price)
    auto = await run(True, answers, price)
    print(f"{TURNS}-turn conversation, {MODEL} at catalog prices "
          f"(input ${price.input / 1e6 if price.input else 0:g}/M, cache read "
          f"${price.cache_read / 1e6 if price.cache_read else 0:g}/M, write "
          f"${price.cache_write / 1e6 if price.cache_write else 0:g}/M)\n")
    print("| accounting | breakpoints | cache-read share of input | cache-write share | total cost |")
    print("|---|---|---:|---:|---:|")
    for name in ("anthropic rules", "simulator"):
        for label, figures in (("none (as sent)", plain[name]), ("automatic", auto[name])):
            read, write, cost = figures
            print(f"| {name} | {label} | {read:.1%} | {write:.1%} | ${cost:.4f} |")


if __name__ == "__main__":
    asyncio.run(main())
