"""Anthropic Messages content → canonical messages: turns, content blocks, tool results, thinking.

The part of the Anthropic Messages codec that reads ``system`` and ``messages``
(``anthropic_messages`` reads the other fields): text, image and document
blocks become Chat content parts, ``tool_use`` blocks tool calls, ``tool_result``
blocks ``tool`` messages, thinking blocks ``thinking_blocks`` (verbatim) plus
``reasoning_content``. ``cache_control`` stays on the block it marked. Errors
name the field the way Anthropic does (``messages.0.content.1.source``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar, cast

import orjson

from interlock.core.canonical import (
    CacheControl,
    ContentPart,
    FilePart,
    FileRef,
    ImagePart,
    Message,
    TextPart,
    ThinkingBlock,
    ToolCall,
    ToolDefinition,
)
from interlock.core.errors import InvalidRequest

#: What may carry a ``cache_control`` marker.
_Cacheable = TypeVar("_Cacheable", TextPart, ImagePart, FilePart, ToolCall, ToolDefinition)


def bad(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {message}", param=where)


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object" if isinstance(value, dict) else type(value).__name__


def require_str(obj: Mapping[str, object], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise bad(f"{where}.{key}" if where else key, "Field required")
    if not isinstance(value, str):
        raise bad(f"{where}.{key}" if where else key, f"Input should be a valid string, got {type_name(value)}")
    return value


def with_cache(part: _Cacheable, block: Mapping[str, object], where: str) -> _Cacheable:
    cache = block.get("cache_control")
    if cache is not None:
        part["cache_control"] = cache_control(cache, f"{where}.cache_control")
    return part


def cache_control(cache: object, where: str) -> CacheControl:
    if not isinstance(cache, dict):
        raise bad(where, f"Input should be a valid object, got {type_name(cache)}")
    return cast("CacheControl", cache)  # the caller's object, passed on as it is (cast once, no copy)


def _text(block: Mapping[str, object], where: str) -> TextPart:
    return {"type": "text", "text": require_str(block, "text", where)}


def canonical_messages(data: Mapping[str, object]) -> list[Message]:
    """``system`` and ``messages`` → canonical messages; a top-level ``cache_control`` marks the last block."""
    messages: list[Message] = []
    system = data.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _system(system)})
    raw = data.get("messages")
    if raw is None:
        raise bad("messages", "Field required")
    if not isinstance(raw, list):
        raise bad("messages", f"Input should be a valid list, got {type_name(raw)}")
    if not raw:
        raise bad("messages", "at least one message is required")
    for i, message in enumerate(raw):
        _turn(message, f"messages.{i}", messages)
    cache = data.get("cache_control")
    if cache is not None:
        _mark_last_block(messages, cache_control(cache, "cache_control"))
    return messages


def _turn(message: object, where: str, messages: list[Message]) -> None:
    if not isinstance(message, dict):
        raise bad(where, f"Input should be a valid object, got {type_name(message)}")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise bad(f"{where}.role", f"Input should be 'user' or 'assistant', got {role!r}")
    content = message.get("content")
    if isinstance(content, str):
        messages.append({"role": role, "content": content})
    elif isinstance(content, list):
        if role == "user":
            _user_turn(content, where, messages)
        else:
            messages.append(_assistant_turn(content, where))
    elif content is None:
        raise bad(f"{where}.content", "Field required")
    else:
        raise bad(f"{where}.content", f"Input should be a valid string or list of content blocks, "
                                      f"got {type_name(content)}")


def _with_last_cache(parts: list[ContentPart], cache: CacheControl) -> None:
    """Put ``cache`` on the last part (a copy of it: the part may be the caller's)."""
    last = parts[-1].copy()
    last["cache_control"] = cache
    parts[-1] = last


def _mark_last_block(messages: list[Message], cache: CacheControl) -> None:
    """Top-level ``cache_control`` marks the last cacheable block: the last part of the last message."""
    last = messages[-1]
    content = last.get("content")
    if isinstance(content, str):
        last["content"] = [{"type": "text", "text": content, "cache_control": cache}]
    elif isinstance(content, list) and content:
        _with_last_cache(content, cache)
    elif last.get("tool_calls"):
        calls = last["tool_calls"]
        call = calls[-1].copy()
        call["cache_control"] = cache
        calls[-1] = call


def _system(system: object) -> str | list[ContentPart]:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise bad("system", f"Input should be a valid string or list of text blocks, got {type_name(system)}")
    parts: list[ContentPart] = []
    for i, block in enumerate(system):
        where = f"system.{i}"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise bad(f"{where}.type", "Input should be 'text'")
        parts.append(with_cache(_text(block, where), block, where))
    if all("cache_control" not in p for p in parts):
        return "\n\n".join(p["text"] for p in parts if p["type"] == "text")  # (all are text)
    return parts


def _image_part(block: Mapping[str, object], where: str) -> ImagePart:
    source = block.get("source")
    if not isinstance(source, dict):
        raise bad(f"{where}.source", "Field required")
    kind = source.get("type")
    if kind == "base64":
        media = require_str(source, "media_type", f"{where}.source")
        url = f"data:{media};base64,{require_str(source, 'data', f'{where}.source')}"
    elif kind == "url":
        url = require_str(source, "url", f"{where}.source")
    else:
        raise bad(f"{where}.source.type", f"Input should be 'base64' or 'url', got {kind!r} (interlock has no "
                                          "Files API: send the image inline or by URL)")
    part: ImagePart = {"type": "image_url", "image_url": {"url": url}}
    return with_cache(part, block, where)


def _file_part(file: FileRef, block: Mapping[str, object], where: str) -> FilePart:
    part: FilePart = {"type": "file", "file": file}
    return with_cache(part, block, where)


def _document_parts(block: Mapping[str, object], where: str) -> list[ContentPart]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise bad(f"{where}.source", "Field required")
    kind = source.get("type")
    swhere = f"{where}.source"
    title = block.get("title")
    if kind == "base64":
        media = require_str(source, "media_type", swhere)
        file: FileRef = {"file_data": f"data:{media};base64,{require_str(source, 'data', swhere)}"}
        file["filename"] = title if isinstance(title, str) and title else "document.pdf"
        return [_file_part(file, block, where)]
    if kind == "url":
        file = {"file_url": require_str(source, "url", swhere)}
        if isinstance(title, str) and title:
            file["filename"] = title
        return [_file_part(file, block, where)]
    if kind == "text":
        text: TextPart = {"type": "text", "text": require_str(source, "data", swhere)}
        return [with_cache(text, block, where)]
    if kind == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            text = {"type": "text", "text": inner}
            return [with_cache(text, block, where)]
        if not isinstance(inner, list):
            raise bad(f"{swhere}.content", "Input should be a valid string or list of content blocks")
        return [_content_part(b, f"{swhere}.content.{j}") for j, b in enumerate(inner)]
    raise bad(f"{swhere}.type", f"Input should be 'base64', 'url', 'text' or 'content', got {kind!r}")


def _content_part(block: object, where: str) -> ContentPart:
    """A text or image block (what user turns, tool results and documents may hold)."""
    if not isinstance(block, dict):
        raise bad(where, f"Input should be a valid content block, got {type_name(block)}")
    kind = block.get("type")
    if kind == "text":
        return with_cache(_text(block, where), block, where)
    if kind == "image":
        return _image_part(block, where)
    raise bad(f"{where}.type", f"Input should be 'text' or 'image', got {kind!r}")


def _user_turn(content: list[object], where: str, messages: list[Message]) -> None:
    """Tool results become ``tool`` messages (first, as Chat requires after tool calls); the rest one user message."""
    parts: list[ContentPart] = []
    for j, block in enumerate(content):
        bwhere = f"{where}.content.{j}"
        if not isinstance(block, dict):
            raise bad(bwhere, f"Input should be a valid content block, got {type_name(block)}")
        kind = block.get("type")
        if kind == "tool_result":
            messages.append(_tool_result(block, bwhere))
        elif kind == "document":
            parts.extend(_document_parts(block, bwhere))
        elif kind in ("text", "image"):
            parts.append(_content_part(block, bwhere))
        elif kind in ("thinking", "redacted_thinking", "tool_use"):
            raise bad(f"{bwhere}.type", f"'{kind}' blocks are only allowed in assistant messages")
        else:
            raise bad(f"{bwhere}.type", f"Input tag {kind!r} is not a content block interlock can translate "
                                        "(text, image, document, tool_result)")
    if parts:
        messages.append({"role": "user", "content": _plain(parts)})


def _plain(parts: list[ContentPart]) -> str | list[ContentPart]:
    """One text part without a cache marker is sent as a plain string."""
    first = parts[0]
    if len(parts) == 1 and first["type"] == "text" and "cache_control" not in first:
        return first["text"]
    return parts


def _tool_result(block: Mapping[str, object], where: str) -> Message:
    message: Message = {"role": "tool", "tool_call_id": require_str(block, "tool_use_id", where)}
    content = block.get("content")
    body: str | list[ContentPart]
    if content is None:
        body = ""
    elif isinstance(content, str):
        body = content
    elif isinstance(content, list):
        body = []
        for k, inner in enumerate(content):
            kind = inner.get("type") if isinstance(inner, dict) else None
            if kind == "document" and isinstance(inner, dict):
                body.extend(_document_parts(inner, f"{where}.content.{k}"))
            else:
                body.append(_content_part(inner, f"{where}.content.{k}"))
    else:
        raise bad(f"{where}.content", "Input should be a valid string or list of content blocks")
    cache = block.get("cache_control")
    if cache is not None:
        marker = cache_control(cache, f"{where}.cache_control")
        # The marker belongs to the result's last part, where Chat-shaped messages can carry it.
        if isinstance(body, str):
            body = [{"type": "text", "text": body}]
        if body:
            _with_last_cache(body, marker)
    message["content"] = body
    is_error = block.get("is_error")
    if is_error is True:
        message["is_error"] = True
    return message


def _tool_use(block: Mapping[str, object], where: str) -> ToolCall:
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise bad(f"{where}.input", f"Input should be a valid object, got {type_name(arguments)}")
    call: ToolCall = {"id": require_str(block, "id", where), "type": "function",
                      "function": {"name": require_str(block, "name", where),
                                   "arguments": orjson.dumps(arguments).decode()}}
    return with_cache(call, block, where)


def _assistant_turn(content: list[object], where: str) -> Message:
    texts: list[ContentPart] = []
    calls: list[ToolCall] = []
    thinking: list[ThinkingBlock] = []
    for j, block in enumerate(content):
        bwhere = f"{where}.content.{j}"
        if not isinstance(block, dict):
            raise bad(bwhere, f"Input should be a valid content block, got {type_name(block)}")
        kind = block.get("type")
        if kind == "text":
            texts.append(with_cache(_text(block, bwhere), block, bwhere))
        elif kind == "tool_use":
            calls.append(_tool_use(block, bwhere))
        elif kind == "thinking" or kind == "redacted_thinking":
            for key in ("thinking", "signature") if kind == "thinking" else ("data",):
                require_str(block, key, bwhere)
            thinking.append(cast("ThinkingBlock", dict(block)))  # checked above: the caller's block, verbatim
        else:
            raise bad(f"{bwhere}.type", f"Input tag {kind!r} is not a content block interlock can translate in an "
                                        "assistant message (text, tool_use, thinking, redacted_thinking)")
    message: Message = {"role": "assistant", "content": _plain(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
        message["thinking_blocks"] = thinking
    return message
