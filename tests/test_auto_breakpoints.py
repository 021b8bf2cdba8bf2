"""Automatic Anthropic cache breakpoints (cache/breakpoints.py): where they go, the limits, no mutation."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from interlock.cache.breakpoints import MAX_BREAKPOINTS, count_markers, place_breakpoints
from interlock.vendors.anthropic.chat import encode_request

LONG = "Policy text that every turn repeats. " * 150  # about 1,400 tokens
EPHEMERAL = {"type": "ephemeral"}
TOOLS = [{"type": "function", "function": {"name": f"tool_{i}", "description": LONG[:2000],
                                           "parameters": {"type": "object", "properties": {}}}} for i in range(3)]


def chat(*turns: str, system: str = LONG, **extra: Any) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for i, text in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return {"model": "anthropic/claude-sonnet-4-5", "messages": messages, **extra}


def marked_at(request: dict[str, Any]) -> list[str]:
    """Where the markers are: ``tool:<i>`` or ``<message index>:<role>``."""
    spots = [f"tool:{i}" for i, t in enumerate(request.get("tools") or ()) if "cache_control" in t]
    for i, m in enumerate(request["messages"]):
        content = m.get("content")
        if isinstance(content, list) and any("cache_control" in p for p in content):
            spots.append(f"{i}:{m['role']}")
    return spots


def test_tools_system_previous_turn_and_last_message_are_marked() -> None:
    request = chat("first question", "first answer " * 10, "second question", tools=TOOLS)
    placed = place_breakpoints(request)
    assert marked_at(placed) == ["tool:2", "0:system", "2:assistant", "3:user"]
    assert count_markers(placed) == MAX_BREAKPOINTS
    assert placed["messages"][0]["content"] == [{"type": "text", "text": LONG, "cache_control": EPHEMERAL}]
    assert placed["messages"][3]["content"] == [{"type": "text", "text": "second question",
                                                 "cache_control": EPHEMERAL}]


def test_the_callers_request_is_never_modified() -> None:
    request = chat("q1", "a1", "q2", tools=TOOLS)
    request["messages"][1]["content"] = [{"type": "text", "text": "q1"}]
    before = copy.deepcopy(request)
    placed = place_breakpoints(request)
    assert request == before
    assert placed is not request and placed["messages"] is not request["messages"]
    assert placed["tools"][0] is request["tools"][0]  # unchanged parts are shared, not copied


def test_a_request_with_the_callers_own_markers_is_left_alone() -> None:
    request = chat("q1", "a1", "q2")
    request["messages"][1]["content"] = [{"type": "text", "text": "q1", "cache_control": EPHEMERAL}]
    assert place_breakpoints(request) is request
    tool_marked = chat("q1", tools=[{**TOOLS[0], "cache_control": EPHEMERAL}])
    assert place_breakpoints(tool_marked) is tool_marked


def test_short_prefixes_are_not_marked() -> None:
    short = chat("hello", system="Be brief.")
    assert place_breakpoints(short) is short
    # The system prompt alone is long enough; the history adds to it, so every later spot is too.
    assert marked_at(place_breakpoints(chat("hello"))) == ["0:system", "1:user"]
    # A lower minimum (a model that caches from fewer tokens) marks a shorter prompt.
    assert marked_at(place_breakpoints(chat("x" * 800, system="Be brief."), min_tokens=200)) == ["1:user"]
    assert marked_at(place_breakpoints(chat("x" * 800, system="Be brief."), min_tokens=300)) == []


def test_never_more_than_four_and_never_on_tool_results_or_tool_calls() -> None:
    request = chat("q1", tools=TOOLS)
    request["messages"] += [
        {"role": "assistant", "content": "Let me look.",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "tool_0", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "result " * 50},
    ]
    placed = place_breakpoints(request)
    # The newest user turn is the last markable message; the tool result and the call are not marked.
    assert marked_at(placed) == ["tool:2", "0:system", "1:user"]
    assert placed["messages"][3] is request["messages"][3]
    many = chat(*[f"turn {i}" for i in range(30)], tools=TOOLS)
    assert count_markers(place_breakpoints(many)) == MAX_BREAKPOINTS


def test_the_markers_reach_the_anthropic_request_in_order() -> None:
    placed = place_breakpoints(chat("q1", "a1 " * 10, "q2", tools=TOOLS))
    sent, _drops, _forced = encode_request(placed, "claude-sonnet-4-5", stream=False)
    assert sent["tools"][-1]["cache_control"] == EPHEMERAL
    assert sent["system"][-1]["cache_control"] == EPHEMERAL
    marked = [(m["role"], b["text"]) for m in sent["messages"] for b in m["content"] if "cache_control" in b]
    assert marked == [("assistant", "a1 " * 10), ("user", "q2")]
    assert orjson.dumps(sent).count(b"cache_control") == MAX_BREAKPOINTS


async def test_the_cache_stage_marks_only_requests_every_route_of_which_is_anthropic() -> None:
    from types import SimpleNamespace

    from interlock.core.context import RequestContext
    from interlock.pipeline.cache import CacheStage

    calls: list[dict[str, Any]] = []

    def mark(request: dict[str, Any]) -> dict[str, Any]:
        calls.append(request)
        return {**request, "marked": True}

    def route(kind: str) -> Any:
        return SimpleNamespace(vendor=SimpleNamespace(spec=SimpleNamespace(type=kind)))

    stage = CacheStage(None, mark)
    for kinds, marked in ((["anthropic"], True), (["anthropic", "anthropic"], True),
                          (["anthropic", "openai"], False), (["openai"], False), ([], False)):
        ctx = RequestContext("openai.chat")
        ctx.routing = SimpleNamespace(order=tuple(route(k) for k in kinds))  # type: ignore[assignment]
        out = await stage(ctx, {"messages": []})
        assert out.get("marked", False) is marked, kinds
