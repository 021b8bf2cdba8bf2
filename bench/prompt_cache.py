"""Measurement: automatic Anthropic cache breakpoints over a 20-turn conversation.

One conversation (a ~2,400-token system prompt, three tools, 20 user turns,
each answered by the simulator) is sent twice to Claude Sonnet 4.5, translated
by the Anthropic adapter exactly as the gateway sends it: once as the caller
wrote it (no ``cache_control``), once through
``interlock.cache.breakpoints.place_breakpoints``. Both runs carry the same
answers, so only the markers differ.

The figures are the usage the in-process simulator's Anthropic wire reports
(``SimulatorTransport``). Its cache follows Anthropic's rules
(``simulator/anthropic_cache.py``): nothing is cached without a marker; a
marker writes the prefix up to it; a later request reads the longest written
prefix found at a block boundary up to 20 blocks before one of its markers.
``AnthropicRules`` below re-derives, independently and by block count only,
which requests must read and which must write; the bench asserts the
simulator agrees request by request.

Costs use the catalog's prices (``cost_of``). Run:

    PYTHONPATH=src .venv/bin/python bench/prompt_cache.py
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson

from interlock.cache.breakpoints import place_breakpoints
from interlock.catalog import load_catalog
from interlock.core.pricing import Price, Usage, cost_of
from interlock.core.vendor import Timeouts
from interlock.simulator.settings import SimulatorSettings
from interlock.simulator.transport import SimulatorTransport
from interlock.vendors.anthropic.chat import encode_request

MODEL = "anthropic/claude-sonnet-4-5"
VENDOR_MODEL = "claude-sonnet-4-5"
TURNS = 20
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
    """Which requests read and write under Anthropic's rules: explicit markers, 20-block lookback.

    It works on block hashes only (every marked prefix here is far above the
    1,024-token minimum), so it checks the simulator's logic, not its token counts.
    """

    def __init__(self) -> None:
        self.written: set[bytes] = set()

    def reads_and_writes(self, sent: dict[str, Any]) -> tuple[bool, bool]:
        items = blocks(sent)
        digest = hashlib.blake2b(digest_size=16)
        keys: list[bytes] = []
        for block in items:
            content = {k: v for k, v in block.items() if k != "cache_control"}  # markers are not content
            digest.update(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
            keys.append(digest.copy().digest())
        marks = [i for i, block in enumerate(items) if "cache_control" in block]
        hits = [k for m in marks for k in range(m, max(-1, m - LOOKBACK - 1), -1) if keys[k] in self.written]
        read = max(hits, default=-1)
        self.written.update(keys[m] for m in marks)
        return read >= 0, bool(marks) and marks[-1] > read


async def run(auto: bool, answers: list[str], price: Price) -> tuple[float, float, float]:
    """``(cache-read share, cache-write share, cost)`` of the conversation as the simulator bills it."""
    sim = SimulatorTransport(SimulatorSettings(time_scale=0, seed=1), load_catalog())
    rules = AnthropicRules()
    history: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    fresh = read = write = write_1h = out = 0
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
        got = (usage["cache_read_input_tokens"] > 0, usage["cache_creation_input_tokens"] > 0)
        assert got == rules.reads_and_writes(sent), f"turn {turn}: simulator (read, write) {got} disagrees"
        fresh += usage["input_tokens"]
        read += usage["cache_read_input_tokens"]
        write += usage["cache_creation_input_tokens"]
        write_1h += usage["cache_creation"]["ephemeral_1h_input_tokens"]
        out += usage["output_tokens"]
    prompt = fresh + read + write
    cost = cost_of(price, Usage(input_tokens=fresh, cache_read_tokens=read, cache_write_tokens=write,
                                cache_write_1h_tokens=write_1h, output_tokens=out)).usd
    return read / prompt, write / prompt, cost


async def main() -> None:
    model = load_catalog().get(MODEL)
    assert model is not None and model.reference_route.price is not None
    price = model.reference_route.price
    answers: list[str] = []
    plain = await run(False, answers, price)
    auto = await run(True, answers, price)
    print(f"{TURNS}-turn conversation, {MODEL} on the simulator's Anthropic wire, at catalog prices "
          f"(input ${price.input / 1e6 if price.input else 0:g}/M, cache read "
          f"${price.cache_read / 1e6 if price.cache_read else 0:g}/M, write "
          f"${price.cache_write / 1e6 if price.cache_write else 0:g}/M)\n")
    print("| breakpoints | cache-read share of input | cache-write share | total cost |")
    print("|---|---:|---:|---:|")
    for label, (read, write, cost) in (("none (as sent)", plain), ("automatic", auto)):
        print(f"| {label} | {read:.1%} | {write:.1%} | ${cost:.4f} |")
    print(f"\nautomatic breakpoints: {1 - auto[2] / plain[2]:.0%} cheaper")


if __name__ == "__main__":
    asyncio.run(main())
