"""Gemini ``generateContent`` / ``streamGenerateContent`` as the vendor speaks it.

The model comes from the URL path (``/v1beta/models/{model}:generateContent``).
A plain answer is one ``GenerateContentResponse`` (``candidates`` with
``content.parts``, ``finishReason``, ``usageMetadata``, ``modelVersion``,
``responseId``). With ``?alt=sse`` a stream is ``data: {...}\\r\\n\\r\\n`` chunks,
each a full response object carrying a few tokens of text; the last one adds
``finishReason`` and the usage. There is no ``[DONE]``: the stream just ends.
Function calls arrive whole (Gemini does not stream arguments). Errors are
``{"error": {"code", "message", "status"}}``.

Both the proto-JSON camelCase names and their snake_case forms are accepted,
as Google's endpoint does.
"""

from __future__ import annotations

from typing import Any

import orjson

from interlock.simulator.generate import Choice, Generation
from interlock.simulator.jsonschema_gen import SchemaError, check_schema
from interlock.simulator.plan import Meta
from interlock.simulator.request import (
    BadRequest,
    SimRequest,
    ToolChoice,
    ToolDef,
    canonical,
    document_tokens,
    seed_material,
)

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_CHUNK_TOKENS = 12  # Gemini streams in chunks of several tokens, not token by token


def _get(obj: Any, camel: str) -> Any:
    """A proto-JSON field by its camelCase name or its snake_case alias."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return obj.get(snake)


class GeminiWire:
    name = "gemini"

    def parse(self, body: bytes, path_model: str | None, stream_path: bool) -> SimRequest:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("Invalid JSON payload received. Unexpected token.") from None
        if not isinstance(data, dict):
            raise BadRequest("Invalid JSON payload received. Expected an object.")
        model = (path_model or "").removeprefix("models/")
        contents = data.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        converted: list[dict[str, Any]] = []
        system = _get(data, "systemInstruction")
        if system is not None and not (isinstance(system, dict) and isinstance(_get(system, "parts"), list)):
            raise BadRequest("Invalid value at 'system_instruction': expected a Content object with parts.")
        if system is not None:
            converted.append({"role": "system", "content": _parts_text(system)})
        extra = 0
        for i, content in enumerate(contents):
            parts = _get(content, "parts")
            if not isinstance(parts, list) or not parts:
                raise BadRequest(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
            role = content.get("role", "user")
            if role not in ("user", "model", "function"):
                raise BadRequest(f"Please use a valid role: user, model. Got {role!r}.")
            out, tokens = _convert(role, parts, i)
            converted.extend(out)
            extra += tokens
        config = _get(data, "generationConfig") or {}
        if not isinstance(config, dict):
            raise BadRequest("Invalid value at 'generation_config': expected an object.")
        max_tokens = _int(config, "maxOutputTokens", lo=1)
        n = _int(config, "candidateCount", lo=1, hi=8) or 1
        stops = _get(config, "stopSequences") or []
        if not isinstance(stops, list) or len(stops) > 5 or not all(isinstance(s, str) for s in stops):
            raise BadRequest("Invalid value at 'generation_config.stop_sequences': up to 5 strings.")
        tools = _tools(_get(data, "tools"))
        tool_choice = _tool_choice(_get(data, "toolConfig"), tools)
        schema = _get(config, "responseJsonSchema") or _get(config, "responseSchema")
        if schema is not None:
            try:
                check_schema(schema)
            except SchemaError as exc:
                raise BadRequest(f"Invalid value at 'generation_config.response_schema': {exc}") from None
        mime = _get(config, "responseMimeType")
        thinking = _get(config, "thinkingConfig") or {}
        budget = _get(thinking, "thinkingBudget")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
            raise BadRequest("Invalid value at 'generation_config.thinking_config.thinking_budget': expected an integer.")
        count: dict[str, Any] = {"messages": converted}
        if tools:
            count["tools"] = [{"type": "function", "function": {"name": t.name, "parameters": t.parameters}} for t in tools]
        segments: list[tuple[bytes, str]] = []
        if tools or system is not None:
            head = {"tools": _get(data, "tools"), "system": system}
            segments.append((canonical(head), canonical(head).decode()))
        segments += [(canonical(c), _parts_text(c) or canonical(c).decode()) for c in contents]
        last = contents[-1]
        only_responses = all(isinstance(p, dict) and _get(p, "functionResponse") for p in _get(last, "parts"))
        last_user = next((c for c in reversed(contents) if c.get("role", "user") == "user"), last)
        return SimRequest(
            model=model,
            count_request=count,
            segments=segments,
            last_role="tool" if only_responses else ("assistant" if last.get("role") == "model" else "user"),
            prompt_text=_parts_text(last_user),
            stream=stream_path,
            include_usage=True,
            max_tokens=max_tokens,
            stop=list(stops),
            n=n,
            tools=tools,
            tool_choice=tool_choice,
            response_schema=schema if isinstance(schema, dict) else None,
            json_mode=mime == "application/json",
            reasoning="off" if budget == 0 else None,
            thinking_budget=budget if isinstance(budget, int) and budget > 0 else None,
            show_thinking=_get(thinking, "includeThoughts") is True,
            seed_material=seed_material({**data, "model": model}, ()),
            extra_prompt_tokens=extra,
        )

    def render(self, gen: Generation, req: SimRequest, meta: Meta) -> bytes:
        body = {
            "candidates": [_candidate(c, _parts(c), final=True) for c in gen.choices],
            "usageMetadata": _usage(gen),
            "modelVersion": meta.model,
            "responseId": meta.id[:22],
        }
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    def render_stream(self, gen: Generation, req: SimRequest, meta: Meta) -> list[tuple[float, bytes]]:
        events: list[tuple[float, bytes]] = []
        share = 1.0 / max(1, len(gen.choices))
        for choice in gen.choices:
            groups = _stream_groups(choice)
            for g, (parts, tokens) in enumerate(groups):
                final = g == len(groups) - 1
                body: dict[str, Any] = {
                    "candidates": [_candidate(choice, parts, final=final)],
                    "modelVersion": meta.model,
                    "responseId": meta.id[:22],
                }
                if final and choice.index == len(gen.choices) - 1:
                    body["usageMetadata"] = _usage(gen)
                events.append((share * tokens, b"data: " + orjson.dumps(body) + b"\r\n\r\n"))
        return events

    def error(self, status: int, message: str, *, param: str | None = None, kind: str | None = None) -> bytes:
        if kind == "model_not_found":
            message = (
                f"models/{message} is not found for API version v1beta, or is not supported for generateContent. "
                "Call ListModels to see the list of available models and their supported methods."
            )
        body = {"error": {"code": status, "message": message or _MESSAGES.get(status, "Error"), "status": _STATUS.get(status, "UNKNOWN")}}
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    def error_event(self, status: int) -> bytes:
        body = {"error": {"code": status, "message": _MESSAGES.get(status, "Error"), "status": _STATUS.get(status, "UNKNOWN")}}
        return b"data: " + orjson.dumps(body) + b"\r\n\r\n"

    def content_type(self, stream: bool) -> str:
        return "text/event-stream" if stream else "application/json; charset=UTF-8"

    def extra_headers(self, meta: Meta) -> dict[str, str]:
        return {"server": "scaffolding on HTTPServer2", "x-gemini-service-tier": "standard"}


def _int(obj: Any, camel: str, *, lo: int, hi: int | None = None) -> int | None:
    value = _get(obj, camel)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        raise BadRequest(f"Invalid value at 'generation_config.{camel}' ({value!r}).")
    return value


def _parts_text(content: Any) -> str:
    parts = _get(content, "parts") or []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and "text" in p)


def _convert(role: str, parts: list[Any], i: int) -> tuple[list[dict[str, Any]], int]:
    out_parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    extra = 0
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            raise BadRequest(f"Invalid value at 'contents[{i}].parts[{j}]': expected an object.")
        inline = _get(part, "inlineData")
        call = _get(part, "functionCall")
        response = _get(part, "functionResponse")
        if "text" in part:
            if part.get("thought") is True:
                continue
            out_parts.append({"type": "text", "text": str(part["text"])})
        elif isinstance(inline, dict):
            mime = str(_get(inline, "mimeType") or "")
            payload = str(inline.get("data", ""))
            if mime.startswith("image/"):
                out_parts.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{payload}"}})
            elif mime.startswith("audio/"):
                out_parts.append({"type": "input_audio", "input_audio": {"data": payload, "format": mime.split("/")[1]}})
            else:
                extra += document_tokens(payload, mime)
        elif _get(part, "fileData") is not None:
            extra += document_tokens(None, str(_get(_get(part, "fileData"), "mimeType") or ""))
        elif isinstance(call, dict):
            args = orjson.dumps(call.get("args", {})).decode()
            calls.append({"id": call.get("name"), "type": "function", "function": {"name": call.get("name"), "arguments": args}})
        elif isinstance(response, dict):
            results.append({"role": "tool", "tool_call_id": response.get("name"), "content": orjson.dumps(response.get("response", {})).decode()})
        else:
            raise BadRequest(f"Invalid value at 'contents[{i}].parts[{j}]': unknown part type.")
    out: list[dict[str, Any]] = results[:]
    if out_parts or calls or not results:
        message: dict[str, Any] = {"role": "assistant" if role == "model" else "user", "content": out_parts}
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out, extra


def _tools(raw: Any) -> list[ToolDef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("Invalid value at 'tools': expected a list.")
    tools: list[ToolDef] = []
    for i, tool in enumerate(raw):
        decls = _get(tool, "functionDeclarations") or []
        if not isinstance(decls, list):
            raise BadRequest(f"Invalid value at 'tools[{i}].function_declarations': expected a list.")
        for j, decl in enumerate(decls):
            if not isinstance(decl, dict) or not isinstance(decl.get("name"), str):
                raise BadRequest(f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Name cannot be empty.")
            schema = _get(decl, "parametersJsonSchema") or decl.get("parameters") or {"type": "object", "properties": {}}
            try:
                check_schema(schema)
            except SchemaError as exc:
                raise BadRequest(f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].parameters: {exc}") from None
            tools.append(ToolDef(name=decl["name"], parameters=schema))
    return tools


def _tool_choice(raw: Any, tools: list[ToolDef]) -> ToolChoice:
    config = _get(raw, "functionCallingConfig") or {}
    if not isinstance(config, dict):
        raise BadRequest("Invalid value at 'tool_config.function_calling_config': expected an object.")
    mode = str(config.get("mode", "AUTO")).upper()
    allowed = _get(config, "allowedFunctionNames") or []
    if mode == "NONE":
        return "none"
    if mode in ("ANY", "VALIDATED"):
        if isinstance(allowed, list) and len(allowed) == 1:
            if not any(t.name == allowed[0] for t in tools):
                raise BadRequest(f"* Function calling config: allowed function '{allowed[0]}' is not declared.")
            return ("function", str(allowed[0]))
        return "required" if tools else "auto"
    if mode != "AUTO" and mode != "MODE_UNSPECIFIED":
        raise BadRequest(f"Invalid value at 'tool_config.function_calling_config.mode' ({mode!r}).")
    return "auto"


def _usage(gen: Generation) -> dict[str, Any]:
    usage = gen.usage
    meta: dict[str, Any] = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.total_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt_tokens}],
    }
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def _parts(choice: Choice) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if choice.thinking:
        parts.append({"text": "".join(choice.thinking), "thought": True})
    if choice.pieces or not choice.tool_calls:
        parts.append({"text": choice.text})
    parts += [{"functionCall": {"name": c.name, "args": orjson.loads(c.arguments)}} for c in choice.tool_calls]
    return parts


def _candidate(choice: Choice, parts: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": choice.index}
    if final:
        out["finishReason"] = _FINISH[choice.finish]
    return out


def _stream_groups(choice: Choice) -> list[tuple[list[dict[str, Any]], float]]:
    """Parts per chunk with the tokens each carries: thoughts and text in runs, function calls whole."""
    groups: list[tuple[list[dict[str, Any]], float]] = []
    per_thought = choice.reasoning_tokens / len(choice.thinking) if choice.thinking else 0.0
    for i in range(0, len(choice.thinking), _CHUNK_TOKENS):
        run = choice.thinking[i : i + _CHUNK_TOKENS]
        groups.append(([{"text": "".join(run), "thought": True}], len(run) * per_thought))
    per_piece = choice.output_tokens / len(choice.pieces) if choice.pieces else 0.0
    for i in range(0, len(choice.pieces), _CHUNK_TOKENS):
        run = choice.pieces[i : i + _CHUNK_TOKENS]
        groups.append(([{"text": "".join(run)}], len(run) * per_piece))
    per_call = choice.output_tokens / len(choice.tool_calls) if choice.tool_calls else 0.0
    for call in choice.tool_calls:
        groups.append(([{"functionCall": {"name": call.name, "args": orjson.loads(call.arguments)}}], per_call))
    if not groups:
        groups.append(([{"text": ""}], 0.0))
    return groups
