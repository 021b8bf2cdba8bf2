"""OpenAI Chat Completions as the vendor speaks it: request validation, JSON and SSE answers, errors.

Bodies follow the public API: a ``chat.completion`` object pretty-printed like
OpenAI's servers do, or ``chat.completion.chunk`` events as compact
``data: {...}\\n\\n`` lines closed by ``data: [DONE]\\n\\n``. With
``stream_options.include_usage`` every chunk carries ``"usage": null`` and a
last chunk with empty ``choices`` carries the usage. Errors are
``{"error": {"message", "type", "param", "code"}}``; a mid-stream error is a
``data: {"error": ...}`` event, which is how OpenAI reports failures after the
200 status is out.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from interlock.simulator.generate import Choice, Generation, Usage, random_id
from interlock.simulator.jsonschema_gen import SchemaError, check_schema
from interlock.simulator.plan import Meta
from interlock.simulator.request import (
    BadRequest,
    Reasoning,
    SimRequest,
    ToolChoice,
    ToolDef,
    canonical,
    document_tokens,
    expect_int,
    seed_material,
    text_of,
)

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_EFFORTS: dict[str, Reasoning] = {
    "none": "off",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    529: ("server_error", None, "The server is overloaded, please try again later."),
}


class OpenAIWire:
    name = "openai"

    def parse(self, body: bytes, path_model: str | None, stream_path: bool) -> SimRequest:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
            ) from None
        if not isinstance(data, dict):
            raise BadRequest("Invalid request body: expected a JSON object.")
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter", "model")
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise BadRequest("Missing required parameter: 'messages'.", "messages")
        if not messages:
            raise BadRequest("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise BadRequest(f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]")
            role = message.get("role")
            if not isinstance(role, str) or role not in _ROLES:
                raise BadRequest(
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', "
                    "'tool', and 'developer'.",
                    f"messages[{i}].role",
                )
            _check_message(message, i)
        stream = data.get("stream") is True
        options = data.get("stream_options")
        if options is not None and not stream:
            raise BadRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        max_tokens = expect_int(data, "max_completion_tokens", lo=1)
        if max_tokens is None:
            max_tokens = expect_int(data, "max_tokens", lo=1)
        n = expect_int(data, "n", lo=1, hi=128) or 1
        stop = _stops(data.get("stop"))
        tools = _tools(data.get("tools"))
        tool_choice = _tool_choice(data.get("tool_choice"), tools)
        parallel = data.get("parallel_tool_calls")
        if parallel is not None and not isinstance(parallel, bool):
            raise BadRequest("Invalid type for 'parallel_tool_calls': expected a boolean.", "parallel_tool_calls")
        schema, json_mode = _response_format(data.get("response_format"))
        effort_raw = data.get("reasoning_effort")
        if effort_raw is not None and effort_raw not in _EFFORTS:
            raise BadRequest(
                f"Invalid value: '{effort_raw}'. Supported values are: 'none', 'minimal', 'low', 'medium', and 'high'.",
                "reasoning_effort",
            )
        logprobs, top_logprobs = _logprobs(data)
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BadRequest("Invalid type for 'seed': expected an integer.", "seed")
        segments: list[tuple[bytes, str]] = []
        if tools or data.get("response_format") is not None:
            head = {"tools": data.get("tools"), "response_format": data.get("response_format")}
            segments.append((canonical(head), canonical(head).decode()))
        for message in messages:
            segments.append((canonical(message), text_of(message.get("content")) or canonical(message).decode()))
        extra = 0
        for message in messages:
            content = message.get("content")
            for part in content if isinstance(content, list) else ():
                if isinstance(part, dict) and part.get("type") == "file" and isinstance(part.get("file"), dict):
                    extra += document_tokens(part["file"].get("file_data"), "application/pdf")
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), messages[-1])
        return SimRequest(
            model=model,
            count_request=data,
            segments=segments,
            last_role="tool" if messages[-1].get("role") in ("tool", "function") else str(messages[-1].get("role")),
            prompt_text=text_of(last_user.get("content")),
            stream=stream,
            include_usage=include_usage,
            max_tokens=max_tokens,
            stop=stop,
            n=n,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel is not False,
            response_schema=schema,
            json_mode=json_mode,
            reasoning=_EFFORTS[effort_raw] if effort_raw is not None else None,
            # Asking for logprobs does not change the answer, only what is reported of it.
            seed_material=seed_material(data, ("stream", "stream_options", "logprobs", "top_logprobs")),
            extra_prompt_tokens=extra,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
        )

    def render(self, gen: Generation, req: SimRequest, meta: Meta) -> bytes:
        body = {
            "id": f"chatcmpl-{meta.id}",
            "object": "chat.completion",
            "created": meta.created,
            "model": meta.model,
            "choices": [_message_choice(c) for c in gen.choices],
            "usage": usage_object(gen.usage),
            "service_tier": "default",
            "system_fingerprint": _fingerprint(meta.model),
        }
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    def render_stream(self, gen: Generation, req: SimRequest, meta: Meta) -> list[tuple[float, bytes]]:
        base: dict[str, Any] = {
            "id": f"chatcmpl-{meta.id}",
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "service_tier": "default",
            "system_fingerprint": _fingerprint(meta.model),
        }

        def chunk(choice: dict[str, Any]) -> bytes:
            data = {**base, "choices": [choice]}
            if req.include_usage:
                data["usage"] = None
            return b"data: " + orjson.dumps(data) + b"\n\n"

        share = 1.0 / max(1, len(gen.choices))
        lanes = [_choice_events(c, chunk, share) for c in gen.choices]
        events: list[tuple[float, bytes]] = []
        for step in range(max(len(lane) for lane in lanes)):
            for lane in lanes:
                if step < len(lane):
                    events.append(lane[step])
        if req.include_usage:
            final = {**base, "choices": [], "usage": usage_object(gen.usage)}
            events.append((0.0, b"data: " + orjson.dumps(final) + b"\n\n"))
        events.append((0.0, b"data: [DONE]\n\n"))
        return events

    def error(self, status: int, message: str, *, param: str | None = None, kind: str | None = None) -> bytes:
        etype, code, default = _ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None, ""))
        if kind == "model_not_found":
            message = f"The model `{message}` does not exist or you do not have access to it."
        return orjson.dumps(
            {"error": {"message": message or default, "type": etype, "param": param, "code": code}},
            option=orjson.OPT_INDENT_2,
        )

    def error_event(self, status: int) -> bytes:
        etype, code, message = _ERRORS.get(status, ("server_error", None, "The server had an error."))
        payload = {"error": {"message": message, "type": etype, "param": None, "code": code}}
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def content_type(self, stream: bool) -> str:
        return "text/event-stream; charset=utf-8" if stream else "application/json"

    def extra_headers(self, meta: Meta) -> dict[str, str]:
        return {"x-request-id": f"req_{meta.id}", "openai-version": "2020-10-01", "openai-processing-ms": "1"}


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _fingerprint(model: str) -> str:
    return "fp_" + random_id(random.Random(model), 10).lower()


def _message_choice(choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text if not choice.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if choice.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{c.id}", "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in choice.tool_calls
        ]
    logprobs = None if choice.logprobs is None else {
        "content": [entry for piece in choice.logprobs for entry in piece], "refusal": None}
    return {"index": choice.index, "message": message, "logprobs": logprobs, "finish_reason": choice.finish}


def _choice_events(choice: Choice, chunk: Any, share: float) -> list[tuple[float, bytes]]:
    i = choice.index
    events: list[tuple[float, bytes]] = []
    first: dict[str, Any] = {"role": "assistant", "content": "" if not choice.tool_calls else None, "refusal": None}
    events.append((0.0, chunk({"index": i, "delta": first, "logprobs": None, "finish_reason": None})))
    total_pieces = len(choice.pieces) + sum(len(c.argument_pieces) + 1 for c in choice.tool_calls)
    weight = share * choice.output_tokens / total_pieces if total_pieces else 0.0
    for k, piece in enumerate(choice.pieces):
        logprobs = None if choice.logprobs is None else {"content": choice.logprobs[k], "refusal": None}
        events.append((weight, chunk({"index": i, "delta": {"content": piece}, "logprobs": logprobs,
                                      "finish_reason": None})))
    for k, call in enumerate(choice.tool_calls):
        opening = {
            "index": k,
            "id": f"call_{call.id}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        events.append((weight, chunk({"index": i, "delta": {"tool_calls": [opening]}, "logprobs": None, "finish_reason": None})))
        for part in call.argument_pieces:
            delta = {"tool_calls": [{"index": k, "function": {"arguments": part}}]}
            events.append((weight, chunk({"index": i, "delta": delta, "logprobs": None, "finish_reason": None})))
    events.append((0.0, chunk({"index": i, "delta": {}, "logprobs": None, "finish_reason": choice.finish})))
    return events


def _check_message(message: dict[str, Any], i: int) -> None:
    """Shapes the API rejects (and that token counting could not read)."""
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise BadRequest(f"Invalid type for 'messages[{i}].content': expected a string or an array of parts.", f"messages[{i}].content")
    if content is None and message.get("role") != "assistant":
        raise BadRequest(f"Missing required parameter: 'messages[{i}].content'.", f"messages[{i}].content")
    for j, part in enumerate(content if isinstance(content, list) else ()):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise BadRequest(f"Invalid 'messages[{i}].content[{j}]': expected an object with a 'type'.", f"messages[{i}].content[{j}]")
        kind = part["type"]
        inner = part.get(kind)
        if kind in ("text", "refusal") and not isinstance(inner, str):
            raise BadRequest(f"Invalid type for 'messages[{i}].content[{j}].{kind}': expected a string.", f"messages[{i}].content[{j}].{kind}")
        if kind in ("image_url", "input_audio", "file") and not isinstance(inner, dict):
            raise BadRequest(f"Invalid type for 'messages[{i}].content[{j}].{kind}': expected an object.", f"messages[{i}].content[{j}].{kind}")
        if kind == "image_url" and not isinstance(part["image_url"].get("url"), str):
            raise BadRequest(f"Missing required parameter: 'messages[{i}].content[{j}].image_url.url'.", f"messages[{i}].content[{j}].image_url.url")
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise BadRequest(f"Invalid type for 'messages[{i}].tool_calls': expected an array.", f"messages[{i}].tool_calls")
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments"), str):
            raise BadRequest(
                f"Invalid 'messages[{i}].tool_calls[{j}]': expected a function with a name and string arguments.",
                f"messages[{i}].tool_calls[{j}]",
            )


def _logprobs(data: dict[str, Any]) -> tuple[bool, int]:
    """``logprobs`` and ``top_logprobs`` as OpenAI checks them (top_logprobs needs logprobs: true)."""
    logprobs = data.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise BadRequest("Invalid type for 'logprobs': expected a boolean.", "logprobs")
    top = data.get("top_logprobs")
    if top is None:
        return logprobs is True, 0
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
        raise BadRequest("Invalid 'top_logprobs': expected an integer between 0 and 20.", "top_logprobs")
    if logprobs is not True:
        raise BadRequest("Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' "
                         "is used.", "top_logprobs")
    return True, top


def _stops(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and len(raw) <= 4 and all(isinstance(s, str) for s in raw):
        return list(raw)
    raise BadRequest("Invalid 'stop': expected a string or an array of at most 4 strings.", "stop")


def _tools(raw: Any) -> list[ToolDef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("Invalid type for 'tools': expected an array.", "tools")
    tools: list[ToolDef] = []
    for i, tool in enumerate(raw):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            raise BadRequest(f"Invalid 'tools[{i}]': expected {{'type': 'function', 'function': {{...}}}}.", f"tools[{i}]")
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"Missing required parameter: 'tools[{i}].function.name'.", f"tools[{i}].function.name")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise BadRequest(f"Invalid 'tools[{i}].function.parameters': expected an object.", f"tools[{i}].function.parameters")
        try:
            check_schema(params)
        except SchemaError as exc:
            raise BadRequest(f"Invalid schema for function '{name}': {exc}", f"tools[{i}].function.parameters") from None
        tools.append(ToolDef(name=name, parameters=params))
    return tools


def _tool_choice(raw: Any, tools: list[ToolDef]) -> ToolChoice:
    if raw is None:
        return "auto"
    if raw in ("auto", "none", "required"):
        if raw == "required" and not tools:
            raise BadRequest("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice")
        return raw  # type: ignore[no-any-return]
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if not any(t.name == name for t in tools):
            raise BadRequest(f"Invalid value for 'tool_choice': no function named '{name}' was specified in the 'tools' parameter.", "tool_choice")
        return ("function", str(name))
    raise BadRequest("Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or a named function.", "tool_choice")


def _response_format(raw: Any) -> tuple[Any, bool]:
    if raw is None:
        return None, False
    if not isinstance(raw, dict):
        raise BadRequest("Invalid type for 'response_format': expected an object.", "response_format")
    kind = raw.get("type")
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise BadRequest("Missing required parameter: 'response_format.json_schema.name'.", "response_format.json_schema.name")
        schema = spec.get("schema", {})
        if not isinstance(schema, dict):
            raise BadRequest("Invalid type for 'response_format.json_schema.schema': expected an object.", "response_format.json_schema.schema")
        try:
            check_schema(schema)
        except SchemaError as exc:
            raise BadRequest(f"Invalid schema for response_format '{spec['name']}': {exc}", "response_format") from None
        return schema, False
    raise BadRequest(
        f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
        "response_format.type",
    )
