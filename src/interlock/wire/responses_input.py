"""Responses API input items → canonical messages.

``input`` is a list of items: messages (with ``input_text``, ``input_image``,
``input_file`` and ``input_audio`` parts, or ``output_text`` and ``refusal``
parts on an assistant's), function calls and their outputs by ``call_id``, and
reasoning. An assistant turn is several items but one Chat message. Errors name
the item's path (``input[2].content[0].image_url``) the way OpenAI does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, cast

from interlock.core.canonical import ContentPart, FileRef, ImageURL, InputAudio, Message, ThinkingBlock
from interlock.core.errors import InvalidRequest
from interlock.wire.chat_validation import invalid_type

_ROLES = ("user", "system", "developer", "assistant")
_FILE_KEYS: tuple[Literal["file_data", "file_id", "file_url", "filename"], ...] = (
    "file_data", "file_id", "file_url", "filename")


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def bad_value(param: str, value: object, allowed: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {value!r}. Supported values are: {allowed}.", param=param,
                          code="invalid_value")


def _string_of(part: Mapping[str, object], key: str, where: str) -> str:
    value = part.get(key)
    if not isinstance(value, str):
        raise invalid_type(f"{where}.{key}", "a string", value)
    return value


def _image(part: Mapping[str, object], where: str) -> ContentPart:
    url = part.get("image_url")
    if not isinstance(url, str):
        if part.get("file_id") is not None:
            raise InvalidRequest(f"Unsupported value for '{where}.file_id': interlock has no Files API; send the "
                                 "image as image_url (a URL or a data URL).", param=f"{where}.file_id",
                                 code="unsupported_value")
        raise missing(f"{where}.image_url")
    image: ImageURL = {"url": url}
    detail = part.get("detail")
    if detail is not None:
        if not isinstance(detail, str):
            raise invalid_type(f"{where}.detail", "a string", detail)
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _file(part: Mapping[str, object], where: str) -> ContentPart:
    file: FileRef = {}
    for key in _FILE_KEYS:
        value = part.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise invalid_type(f"{where}.{key}", "a string", value)
            file[key] = value
    if not any(k in file for k in ("file_data", "file_id", "file_url")):
        raise missing(f"{where}.file_data")
    return {"type": "file", "file": file}


def _audio(part: Mapping[str, object], where: str) -> ContentPart:
    audio = part.get("input_audio")
    if not isinstance(audio, dict):
        raise missing(f"{where}.input_audio")
    for key in ("data", "format"):
        if not isinstance(audio.get(key), str):
            raise invalid_type(f"{where}.input_audio.{key}", "a string", audio.get(key))
    return {"type": "input_audio", "input_audio": cast("InputAudio", audio)}  # checked above, passed on as it is


#: Input content part types → canonical parts, for user (and system, developer) messages.
_INPUT_PARTS: dict[str, Callable[[Mapping[str, object], str], ContentPart]] = {
    "input_image": _image, "input_file": _file, "input_audio": _audio,
}


def _part(part: object, where: str, assistant: bool) -> ContentPart:
    if not isinstance(part, dict):
        raise invalid_type(where, "an object", part)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _string_of(part, "text", where)}
    if kind == "refusal" and assistant:
        return {"type": "refusal", "refusal": _string_of(part, "refusal", where)}
    convert = _INPUT_PARTS.get(kind) if isinstance(kind, str) and not assistant else None
    if convert is not None:
        return convert(part, where)
    allowed = "'output_text' and 'refusal'" if assistant else "'input_text', 'input_image', 'input_file' and 'input_audio'"
    raise bad_value(f"{where}.type", kind, allowed)


def _content(content: object, where: str, assistant: bool) -> str | list[ContentPart]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_type(where, "a string or an array of content parts", content)
    return [_part(p, f"{where}[{j}]", assistant) for j, p in enumerate(content)]


class _Turns:
    """Input items → canonical messages.

    An assistant turn is several items (reasoning, message, function calls) but
    one Chat message: function calls join the assistant message before them, and
    reasoning waits for the next assistant message it belongs to.
    """

    __slots__ = ("messages", "pending")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        #: Thinking blocks from reasoning items, for the next assistant message.
        self.pending: list[ThinkingBlock] = []

    def assistant(self, start_new: bool) -> Message:
        messages = self.messages
        last = messages[-1] if messages else None
        if start_new or last is None or last.get("role") != "assistant":
            last = {"role": "assistant", "content": None}
            messages.append(last)
        if self.pending:
            blocks = last.setdefault("thinking_blocks", [])
            blocks.extend(self.pending)
            last["reasoning_content"] = "".join(b.get("thinking", "") for b in blocks)
            self.pending.clear()
        return last

    def message(self, item: Mapping[str, object], where: str) -> None:
        role = item.get("role")
        if role not in _ROLES:
            raise bad_value(f"{where}.role", role, "'user', 'system', 'developer' and 'assistant'")
        if "content" not in item:
            raise missing(f"{where}.content")
        content = _content(item["content"], f"{where}.content", role == "assistant")
        if role != "assistant":
            self.messages.append({"role": str(role), "content": content})
            return
        message = self.assistant(start_new=True)
        if isinstance(content, list):
            texts = [p["text"] for p in content if p["type"] == "text"]
            if len(texts) == len(content):
                content = "".join(texts)
        message["content"] = content

    def function_call(self, item: Mapping[str, object], where: str) -> None:
        call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
        for key, value in (("call_id", call_id), ("name", name), ("arguments", arguments)):
            if not isinstance(value, str):
                raise missing(f"{where}.{key}") if value is None else invalid_type(f"{where}.{key}", "a string", value)
        message = self.assistant(start_new=False)
        message.setdefault("tool_calls", []).append(
            {"id": str(call_id), "type": "function", "function": {"name": str(name), "arguments": str(arguments)}})

    def function_call_output(self, item: Mapping[str, object], where: str) -> None:
        call_id, output = item.get("call_id"), item.get("output")
        if not isinstance(call_id, str):
            raise missing(f"{where}.call_id")
        if output is None:
            raise missing(f"{where}.output")
        self.messages.append({"role": "tool", "tool_call_id": call_id,
                              "content": _content(output, f"{where}.output", False)})

    def reasoning(self, item: Mapping[str, object], where: str) -> None:
        self.pending.extend(_reasoning_item(item, where))


def input_messages(items: Sequence[object]) -> list[Message]:
    """Input items → canonical messages (see :class:`_Turns`)."""
    turns = _Turns()
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid_type(where, "an object", item)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            turns.message(item, where)
        elif kind == "function_call":
            turns.function_call(item, where)
        elif kind == "function_call_output":
            turns.function_call_output(item, where)
        elif kind == "reasoning":
            turns.reasoning(item, where)
        elif kind == "item_reference":
            raise InvalidRequest(f"Unsupported value for '{where}.type': 'item_reference'; send the item itself or "
                                 "use previous_response_id.", param=f"{where}.type", code="unsupported_value")
        else:
            raise bad_value(f"{where}.type", kind, "'message', 'function_call', 'function_call_output' and "
                                                    "'reasoning'")
    return turns.messages


def _reasoning_item(item: Mapping[str, object], where: str) -> list[ThinkingBlock]:
    parts = item.get("content") or item.get("summary") or []
    if not isinstance(parts, list):
        raise invalid_type(f"{where}.content", "an array", parts)
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    encrypted = item.get("encrypted_content")
    if encrypted is not None and not isinstance(encrypted, str):
        raise invalid_type(f"{where}.encrypted_content", "a string", encrypted)
    if text:
        return [{"type": "thinking", "thinking": text, "signature": encrypted or ""}]
    return [{"type": "redacted_thinking", "data": encrypted}] if encrypted else []
