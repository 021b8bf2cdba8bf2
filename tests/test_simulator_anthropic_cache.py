"""The simulator's Anthropic prompt cache: explicit markers, lookback, minimums, lifetimes, usage sums."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from interlock.core.vendor import Timeouts
from interlock.simulator import SimulatorSettings, SimulatorTransport
from interlock.simulator.anthropic_cache import (
    TTL_1H,
    TTL_5M,
    BreakpointCache,
    CacheBlock,
    min_cacheable_tokens,
)

URL = "http://simulator.internal/v1/messages"
SONNET = "anthropic/claude-sonnet-4-5"
OLD_HAIKU = "anthropic/claude-3-5-haiku-20241022"
MARK: dict[str, Any] = {"type": "ephemeral"}
MARK_1H: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}
POLICY = "Refunds are granted within 30 days of delivery for damaged goods, quoting section 4.2. "


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def transport(clock: Clock | None = None, **settings: Any) -> SimulatorTransport:
    return SimulatorTransport(SimulatorSettings(time_scale=0, **settings), clock=clock or Clock())


def system(words: int, mark: dict[str, Any] | None = MARK) -> list[dict[str, Any]]:
    block: dict[str, Any] = {"type": "text", "text": POLICY * (words // 16)}
    return [{**block, "cache_control": mark}] if mark else [block]


def body(model: str = SONNET, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 200, "messages": [{"role": "user", "content": "What can you do?"}], **extra}


async def send(t: SimulatorTransport, payload: dict[str, Any], path: str = URL) -> tuple[int, dict[str, Any]]:
    response = await t.request("POST", path, {"anthropic-version": "2023-06-01"}, orjson.dumps(payload), Timeouts())
    return response.status, orjson.loads(b"".join([c async for c in response.iter_bytes()]))


async def usage(t: SimulatorTransport, payload: dict[str, Any]) -> dict[str, Any]:
    status, data = await send(t, payload)
    assert status == 200, data
    result: dict[str, Any] = data["usage"]
    return result


def prompt(u: dict[str, Any]) -> int:
    return int(u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"])


async def test_no_markers_no_caching_even_on_repeat() -> None:
    t = transport()
    payload = body(system=system(3000, mark=None))
    for _ in range(3):
        u = await usage(t, payload)
        assert u["cache_read_input_tokens"] == u["cache_creation_input_tokens"] == 0
        assert u["input_tokens"] > 2000


async def test_marked_system_prompt_is_written_then_read() -> None:
    t = transport()
    plain = await usage(transport(), body(system=system(3000, mark=None)))
    first = await usage(t, body(system=system(3000)))
    second = await usage(t, body(system=system(3000)))
    written = first["cache_creation_input_tokens"]
    assert written > 2000 and first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == written and second["cache_creation_input_tokens"] == 0
    assert first["cache_creation"] == {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0}
    # input_tokens is what follows the marker; the three add up to the uncached prompt
    assert first["input_tokens"] == second["input_tokens"] > 0
    assert prompt(first) == prompt(second) == plain["input_tokens"]


async def test_a_different_prefix_misses_and_another_model_has_its_own_cache() -> None:
    t = transport()
    await usage(t, body(system=system(3000)))
    changed = system(3000)
    changed[0] = {**changed[0], "text": "Today is Monday. " + changed[0]["text"]}
    assert (await usage(t, body(system=changed)))["cache_read_input_tokens"] == 0
    other = await usage(t, body(model="anthropic/claude-sonnet-4", system=system(3000)))
    assert other["cache_read_input_tokens"] == 0 and other["cache_creation_input_tokens"] > 0


async def test_moving_marker_reads_the_previous_prefix_and_writes_the_new_tail() -> None:
    t = transport()
    plain_t = transport()
    history: list[dict[str, Any]] = []
    previous = 0
    for turn in range(6):
        history.append({"role": "user", "content": f"Turn {turn}: my order {turn} arrived damaged, what now?"})
        marked = [*history[:-1], {"role": "user", "content": [
            {"type": "text", "text": history[-1]["content"], "cache_control": MARK}]}]
        u = await usage(t, body(system=system(3000, mark=None), messages=marked))
        plain = await usage(plain_t, body(system=system(3000, mark=None), messages=history))
        assert prompt(u) == plain["input_tokens"]
        assert u["cache_read_input_tokens"] == previous  # the whole prefix the last turn wrote
        assert u["cache_creation_input_tokens"] > 0 and u["input_tokens"] < 10
        previous = u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
        history.append({"role": "assistant", "content": f"Answer {turn}: a refund is on its way. " * 5})


@pytest.mark.parametrize(("added", "hit"), [(19, True), (20, True), (21, False)])
async def test_lookback_reaches_20_blocks_before_the_marker(added: int, hit: bool) -> None:
    t = transport()
    first = await usage(t, body(messages=[{"role": "user", "content": [
        {"type": "text", "text": POLICY * 200, "cache_control": MARK}]}]))
    later: list[dict[str, Any]] = [{"role": "user", "content": POLICY * 200}]
    for i in range(1, added + 1):  # the marked block is ``added`` blocks after the written prefix
        content: Any = f"Message {i} about order {i}."
        if i == added:
            content = [{"type": "text", "text": content, "cache_control": MARK}]
        later.append({"role": "assistant" if i % 2 else "user", "content": content})
    u = await usage(t, body(messages=later))
    assert u["cache_read_input_tokens"] == (first["cache_creation_input_tokens"] if hit else 0)
    if not hit:  # a miss writes the whole marked prefix again
        assert u["cache_creation_input_tokens"] > first["cache_creation_input_tokens"]


async def test_marker_on_tool_use_and_tool_result_blocks() -> None:
    t = transport()
    tool = {"name": "lookup_order", "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}}}
    messages = [
        {"role": "user", "content": "Where is order 7?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup_order",
                                           "input": {"id": "7"}, "cache_control": MARK}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"}]},
    ]
    payload = body(system=system(3000, mark=None), tools=[tool], messages=messages)
    first = await usage(t, payload)
    assert first["cache_creation_input_tokens"] > 2000
    messages[2] = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                "content": "shipped", "cache_control": MARK}]}
    second = await usage(t, payload)
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert 0 < second["cache_creation_input_tokens"] < 20


async def test_prefix_below_the_model_minimum_is_not_cached() -> None:
    t = transport()
    short = body(system=system(500))  # a few hundred tokens: under Sonnet's 1,024
    for _ in range(2):
        u = await usage(t, short)
        assert u["cache_creation_input_tokens"] == u["cache_read_input_tokens"] == 0
    middling = system(1400)  # about 1,500 tokens: enough for Sonnet, not for Claude 3.5 Haiku (2,048)
    for _ in range(2):
        u = await usage(t, body(model=OLD_HAIKU, system=middling))
        assert 1024 < u["input_tokens"] < 2048
        assert u["cache_creation_input_tokens"] == u["cache_read_input_tokens"] == 0
    assert (await usage(t, body(system=middling)))["cache_creation_input_tokens"] > 1024
    long = body(model=OLD_HAIKU, system=system(2500))
    assert (await usage(t, long))["cache_creation_input_tokens"] > 2048
    assert (await usage(t, long))["cache_read_input_tokens"] > 2048


def test_minimum_by_model() -> None:
    assert min_cacheable_tokens(SONNET) == 1024
    assert min_cacheable_tokens("anthropic/claude-opus-4-1") == 1024
    assert min_cacheable_tokens(OLD_HAIKU) == 2048
    assert min_cacheable_tokens("anthropic/claude-3-haiku") == 2048
    assert min_cacheable_tokens("anthropic/claude-haiku-4.5") == 4096
    assert min_cacheable_tokens("anthropic/claude-opus-4-5") == 4096


async def test_one_hour_writes_are_reported_apart() -> None:
    t = transport()
    u = await usage(t, body(system=system(3000, MARK_1H)))
    assert u["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": u["cache_creation_input_tokens"]}
    mixed = body(system=system(3000, MARK_1H), messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise section 4. " * 40, "cache_control": MARK}]}])
    split = await usage(t, mixed)
    assert split["cache_read_input_tokens"] == u["cache_creation_input_tokens"]
    assert split["cache_creation"]["ephemeral_1h_input_tokens"] == 0
    assert split["cache_creation"]["ephemeral_5m_input_tokens"] == split["cache_creation_input_tokens"] > 100
    fresh = await usage(transport(), mixed)
    assert fresh["cache_creation"]["ephemeral_1h_input_tokens"] == u["cache_creation_input_tokens"]
    assert fresh["cache_creation"]["ephemeral_5m_input_tokens"] == split["cache_creation_input_tokens"]


async def test_entries_expire_after_their_ttl_and_reads_renew_them() -> None:
    clock = Clock()
    t = transport(clock)
    payload = body(system=system(3000))
    written = (await usage(t, payload))["cache_creation_input_tokens"]
    clock.now += 200
    assert (await usage(t, payload))["cache_read_input_tokens"] == written  # and renewed for 5 minutes
    clock.now += 250  # 450 s after the write, 250 s after the read
    assert (await usage(t, payload))["cache_read_input_tokens"] == written
    clock.now += TTL_5M + 1
    again = await usage(t, payload)
    assert again["cache_read_input_tokens"] == 0 and again["cache_creation_input_tokens"] == written
    clock.now += 100
    moved = body(system=system(3000, mark=None), messages=[{"role": "user", "content": [
        {"type": "text", "text": "What can you do?", "cache_control": MARK}]}])
    assert (await usage(t, moved))["cache_read_input_tokens"] == written  # read by lookback: renewed, not rewritten
    clock.now += 250
    assert (await usage(t, payload))["cache_read_input_tokens"] == written
    hour = body(system=system(3000, MARK_1H), messages=[{"role": "user", "content": "Hello"}])
    await usage(t, hour)
    clock.now += 3000
    assert (await usage(t, hour))["cache_read_input_tokens"] > 0
    clock.now += TTL_1H + 1
    assert (await usage(t, hour))["cache_read_input_tokens"] == 0


def test_breakpoint_cache_lookback_and_clock() -> None:
    clock = Clock()
    cache = BreakpointCache(100, clock)
    blocks = [CacheBlock(f"block {i}".encode(), {}, ttl=TTL_5M if i == 2 else None) for i in range(5)]
    ends = [1000, 1500, 2000, 2500, 3000]
    assert cache.lookup_and_store("m", blocks, ends, min_tokens=1024).write_5m == 2000
    moved = [CacheBlock(b.content, {}, ttl=TTL_5M if i == 4 else None) for i, b in enumerate(blocks)]
    used = cache.lookup_and_store("m", moved, ends, min_tokens=1024)
    assert (used.read, used.write) == (2000, 1000)
    assert cache.lookup_and_store("other model", moved, ends, min_tokens=1024).read == 0
    clock.now += TTL_5M
    assert cache.lookup_and_store("m", moved, ends, min_tokens=1024).read == 0
    assert len(BreakpointCache(0, clock)) == 0
    off = BreakpointCache(100, clock, enabled=False)
    assert off.lookup_and_store("m", blocks, ends, min_tokens=1024).write == 0


async def test_top_level_cache_control_marks_the_last_block() -> None:
    t = transport()
    payload = body(system=system(3000, mark=None), cache_control=MARK)
    first = await usage(t, payload)
    assert first["cache_creation_input_tokens"] > 2000 and first["input_tokens"] < 10
    assert (await usage(t, payload))["cache_read_input_tokens"] == first["cache_creation_input_tokens"]


async def test_marker_errors() -> None:
    t = transport()
    five = [{"type": "text", "text": f"part {i}", "cache_control": MARK} for i in range(5)]
    status, data = await send(t, body(system=five))
    assert status == 400 and "A maximum of 4 blocks with cache_control may be provided. Found 5." in data["error"]["message"]
    status, data = await send(t, body(system=system(100, {"type": "ephemeral", "ttl": "2h"})))
    assert status == 400 and "ttl" in data["error"]["message"]
    status, data = await send(t, body(system=system(100, {"type": "persistent"})))
    assert status == 400 and "ephemeral" in data["error"]["message"]


async def test_streamed_usage_reports_the_cache() -> None:
    t = transport()
    await usage(t, body(system=system(3000)))
    response = await t.request("POST", URL, {}, orjson.dumps(body(system=system(3000), stream=True)), Timeouts())
    data = b"".join([c async for c in response.iter_bytes()])
    start = next(line for line in data.split(b"\n") if b"message_start" in line and line.startswith(b"data:"))
    assert orjson.loads(start[5:])["message"]["usage"]["cache_read_input_tokens"] > 2000


async def test_openai_wire_still_caches_automatically() -> None:
    t = transport()
    payload = {"model": "openai/gpt-4.1", "messages": [{"role": "system", "content": POLICY * 200},
                                                       {"role": "user", "content": "What can you do?"}]}
    for expected in (False, True):
        status, data = await send(t, payload, "http://simulator.internal/v1/chat/completions")
        assert status == 200
        assert (data["usage"]["prompt_tokens_details"]["cached_tokens"] >= 1024) is expected
    claude = {**payload, "model": SONNET}  # an Anthropic model on the OpenAI wire: the OpenAI wire's rules
    for expected in (False, True):
        status, data = await send(t, claude, "http://simulator.internal/v1/chat/completions")
        assert (data["usage"]["prompt_tokens_details"]["cached_tokens"] >= 1024) is expected
