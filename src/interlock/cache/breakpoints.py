"""Anthropic prompt-cache breakpoints placed automatically on a canonical request.

Anthropic caches a prompt only up to blocks marked ``cache_control`` (at most
4 per request, counted over tools, system and messages, rendered in that
order); a later request reads the longest marked prefix it shares, looking
back up to 20 block boundaries before each of its own markers. A prefix
shorter than the model's minimum (1,024 tokens for Sonnet and Opus 4.x,
2,048 or 4,096 for Haiku and some newer models) is not cached at all.

:func:`place_breakpoints` marks, on the canonical (Chat Completions shaped)
request, up to four places where the prefix before them is long enough:

1. the last tool (tools change least);
2. the end of the system prompt (the last system or developer message: the
   Anthropic adapter moves them all to the top-level ``system``);
3. the last message before the newest user turn (what the previous turn wrote
   is read even when the lookback of 20 blocks does not reach further);
4. the last message of the request (written now, read by the next turn).

Only user messages and assistant messages without tool calls are marked:
Anthropic refuses a marker inside ``tool_result`` content, and the adapter does
not forward one on a tool call. A request that already carries any marker is
returned as it is: the caller knows its prompt best.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

#: Anthropic's limit of ``cache_control`` blocks per request.
MAX_BREAKPOINTS = 4
#: The smallest prefix Anthropic caches for Sonnet and Opus 4.x (estimated tokens).
DEFAULT_MIN_TOKENS = 1024
#: Characters per token for the estimate (English text and JSON average about 4).
CHARS_PER_TOKEN = 4
_SYSTEM = ("system", "developer")
#: Content parts the Anthropic adapter sends with their ``cache_control``.
_MARKABLE = ("text", "image_url", "file")


def count_markers(request: Mapping[str, Any]) -> int:
    """How many ``cache_control`` markers the request carries (tools, messages, parts, tool calls)."""
    count = 1 if "cache_control" in request else 0
    for tool in request.get("tools") or ():
        if isinstance(tool, dict) and "cache_control" in tool:
            count += 1
    for message in request.get("messages") or ():
        if not isinstance(message, dict):
            continue
        if "cache_control" in message:
            count += 1
        content = message.get("content")
        if isinstance(content, list):
            count += sum(1 for p in content if isinstance(p, dict) and "cache_control" in p)
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and "cache_control" in call:
                count += 1
    return count


def _chars(message: Mapping[str, Any]) -> int:
    content = message.get("content")
    if isinstance(content, str):
        chars = len(content)
    elif isinstance(content, list):
        chars = sum(len(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    else:
        chars = 0
    for call in message.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            chars += len(str(fn.get("arguments") or "")) + len(str(fn.get("name") or ""))
    return chars


def _markable_part(content: list[Any]) -> int | None:
    """Index of the last part that can carry a marker (a non-empty text, an image, a file)."""
    for j in range(len(content) - 1, -1, -1):
        part = content[j]
        if isinstance(part, dict) and part.get("type") in _MARKABLE and (
                part.get("type") != "text" or part.get("text")):
            return j
    return None


def _markable(message: Any, system: bool) -> bool:
    if not isinstance(message, dict):
        return False
    role = message.get("role")
    if system != (role in _SYSTEM):
        return False
    if role not in (*_SYSTEM, "user", "assistant") or (role == "assistant" and message.get("tool_calls")):
        return False
    content = message.get("content")
    if isinstance(content, str):
        return bool(content)
    return isinstance(content, list) and _markable_part(content) is not None


def _marked(message: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` whose last markable part carries the marker (text content becomes one part)."""
    out = dict(message)
    content = message["content"]
    if isinstance(content, str):
        out["content"] = [{"type": "text", "text": content, "cache_control": {"type": "ephemeral"}}]
        return out
    parts = list(content)
    j = _markable_part(parts)
    assert j is not None  # checked by _markable
    parts[j] = {**parts[j], "cache_control": {"type": "ephemeral"}}
    out["content"] = parts
    return out


def place_breakpoints(request: Mapping[str, Any], *, min_tokens: int = DEFAULT_MIN_TOKENS) -> dict[str, Any]:
    """``request`` with ``cache_control: {"type": "ephemeral"}`` on up to four stable-prefix ends.

    Returns the request itself when it already has markers or nothing is worth marking; otherwise
    a shallow copy whose changed lists, messages, parts and tool are copies (the caller's objects are
    never modified). ``min_tokens`` is the model's smallest cacheable prefix, estimated at four
    characters a token; a place whose prefix is shorter is left unmarked.
    """
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages or count_markers(request):
        return request if isinstance(request, dict) else dict(request)
    tools = request.get("tools")
    total = 0
    mark_tool = False
    if isinstance(tools, list) and tools and isinstance(tools[-1], dict):
        total = len(orjson.dumps(tools)) // CHARS_PER_TOKEN
        mark_tool = total >= min_tokens
    chosen: list[int] = []
    system = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") in _SYSTEM]
    total += sum(_chars(messages[i]) for i in system) // CHARS_PER_TOKEN
    if system and total >= min_tokens and _markable(messages[system[-1]], system=True):
        chosen.append(system[-1])
    # The conversation in render order, with the estimated prefix length at the end of each message.
    ends: dict[int, int] = {}
    last_user = None
    chars = total * CHARS_PER_TOKEN
    for i, m in enumerate(messages):
        if isinstance(m, dict) and m.get("role") not in _SYSTEM:
            chars += _chars(m)
            ends[i] = chars // CHARS_PER_TOKEN
            if m.get("role") == "user":
                last_user = i
    conversation = [i for i in ends if _markable(messages[i], system=False)]
    before = [i for i in conversation if last_user is not None and i < last_user]
    for spot in (before[-1] if before else None, conversation[-1] if conversation else None):
        if spot is not None and spot not in chosen and ends[spot] >= min_tokens:
            chosen.append(spot)
    # Tool, system and two conversation spots at most: within Anthropic's limit by construction.
    assert len(chosen) + mark_tool <= MAX_BREAKPOINTS
    if not chosen and not mark_tool:
        return request if isinstance(request, dict) else dict(request)
    out = dict(request)
    if mark_tool:
        assert isinstance(tools, list)
        out["tools"] = [*tools[:-1], {**tools[-1], "cache_control": {"type": "ephemeral"}}]
    if chosen:
        copied = list(messages)
        for i in chosen:
            copied[i] = _marked(messages[i])
        out["messages"] = copied
    return out
