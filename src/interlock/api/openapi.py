"""The OpenAPI 3.1 document of the public inference API (served at ``GET /v1/openapi.json``).

Written as data next to the code it describes, like the admin API's
(``governance/openapi.py``), so client generators and schema-driven testers
(schemathesis, in ``tests/test_inference_schemathesis.py``) see what the
gateway accepts. Request schemas list the documented fields with their types
and ranges; unknown fields are allowed because they pass through to vendors.
Client JSON Schemas (tool parameters, response formats) are described by the
shape the codecs check (``wire/shapes.py``), not by the full meta-schema.
"""

from __future__ import annotations

from typing import Any

import orjson

from interlock.core.exchange import Exchange

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_BOOL = {"type": "boolean"}
_OBJECT = {"type": "object"}
_POSITIVE = {"type": "integer", "minimum": 1}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _range(low: float, high: float) -> dict[str, Any]:
    return {"type": "number", "minimum": low, "maximum": high}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    return out


#: The shape a client's JSON Schema must have (what ``wire/shapes.py`` checks); subschemas recurse.
_SUB = {"oneOf": [{"$ref": "#/components/schemas/JsonSchema"}, _BOOL]}
_JSON_SCHEMA = _obj({
    "type": {"oneOf": [_STRING, {"type": "array", "items": _STRING, "minItems": 1}]},
    "properties": {"type": "object", "additionalProperties": _SUB}, "required": _STRINGS,
    "enum": {"type": "array"}, "items": _SUB, "description": _STRING, "additionalProperties": _SUB,
    "anyOf": {"type": "array", "minItems": 1, "items": _SUB},
    "minimum": {"type": "number"}, "maximum": {"type": "number"},
    "minLength": {"type": "integer", "minimum": 0}, "maxLength": {"type": "integer", "minimum": 0},
    "pattern": _STRING, "format": _STRING, "$ref": _STRING,
})


def _const(value: str) -> dict[str, Any]:
    return {"const": value}


def _part(kind: str, fields: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return _obj({"type": _const(kind), **fields, "cache_control": _OBJECT}, ("type", *required))


_TEXT_PART = _part("text", {"text": _STRING}, ("text",))
_CHAT_PARTS = {"type": "array", "items": {"oneOf": [
    _TEXT_PART,
    _part("image_url", {"image_url": _obj({"url": _STRING, "detail": {"enum": ["auto", "low", "high"]}}, ("url",))},
          ("image_url",)),
    _part("input_audio", {"input_audio": _obj({"data": _STRING, "format": {"enum": ["wav", "mp3"]}},
                                              ("data", "format"))}, ("input_audio",)),
    _part("file", {"file": _obj({"file_data": _STRING, "file_id": _STRING, "filename": _STRING})}, ("file",)),
]}}
_TEXT_PARTS = {"type": "array", "items": _TEXT_PART}
_TOOL_CALL = _obj({"id": _STRING, "type": _const("function"),
                   "function": _obj({"name": _STRING, "arguments": _STRING}, ("name",))}, ("function",))
_FUNCTION = _obj({"name": {"type": "string", "minLength": 1}, "description": _STRING, "parameters": _ref("JsonSchema"),
                  "strict": _BOOL}, ("name",))
_CHAT_MESSAGE = {"oneOf": [
    _obj({"role": {"enum": ["system", "developer"]}, "content": {"oneOf": [_STRING, _TEXT_PARTS]}, "name": _STRING},
         ("role", "content")),
    _obj({"role": _const("user"), "content": {"oneOf": [_STRING, _CHAT_PARTS]}, "name": _STRING}, ("role", "content")),
    _obj({"role": _const("assistant"), "content": {"oneOf": [_STRING, {"type": "null"}, {"type": "array", "items": {
        "oneOf": [_TEXT_PART, _part("refusal", {"refusal": _STRING}, ("refusal",))]}}]}, "name": _STRING,
        "tool_calls": {"type": "array", "items": _TOOL_CALL}, "reasoning_content": _STRING}, ("role",)),
    _obj({"role": _const("tool"), "content": {"oneOf": [_STRING, _TEXT_PARTS]}, "tool_call_id": _STRING},
         ("role", "content", "tool_call_id")),
]}

_CHAT_REQUEST = _obj({
    "model": {"type": "string", "minLength": 1},
    "messages": {"type": "array", "minItems": 1, "items": _CHAT_MESSAGE},
    "tools": {"type": "array", "items": _obj({"type": _const("function"), "function": _FUNCTION}, ("function",))},
    "tool_choice": {"oneOf": [{"enum": ["none", "auto", "required"]},
                              _obj({"type": _const("function"), "function": _obj({"name": _STRING}, ("name",))},
                                   ("type", "function"))]},
    "functions": {"type": "array", "items": _FUNCTION},
    "function_call": {"oneOf": [{"enum": ["none", "auto"]}, _obj({"name": _STRING}, ("name",))]},
    "response_format": {"oneOf": [
        _obj({"type": {"enum": ["text", "json_object"]}}, ("type",)),
        _obj({"type": _const("json_schema"), "json_schema": _obj({
            "name": _STRING, "description": _STRING, "schema": _ref("JsonSchema"), "strict": _BOOL}, ("name",))},
            ("type", "json_schema"))]},
    "temperature": _range(0, 2), "top_p": _range(0, 1), "presence_penalty": _range(-2, 2),
    "frequency_penalty": _range(-2, 2), "max_tokens": _POSITIVE, "max_completion_tokens": _POSITIVE, "n": _POSITIVE,
    "stream": _BOOL, "stream_options": _obj({"include_usage": _BOOL}),
    "stop": {"oneOf": [_STRING, {"type": "array", "items": _STRING, "maxItems": 4}]},
    "seed": {"type": "integer"}, "logprobs": _BOOL, "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
    "logit_bias": {"type": "object", "additionalProperties": _range(-100, 100)},
    "metadata": {"type": "object", "additionalProperties": _STRING},
    "user": _STRING, "parallel_tool_calls": _BOOL, "reasoning_effort": _STRING, "modalities": _STRINGS,
    "models": {**_STRINGS, "description": "OpenRouter-style fallback models."},
    "provider": {**_OBJECT, "description": "OpenRouter-style provider preferences."},
}, ("model", "messages"))

_IMAGE_BLOCK = _part("image", {"source": {"oneOf": [
    _obj({"type": _const("base64"), "media_type": _STRING, "data": _STRING}, ("type", "media_type", "data")),
    _obj({"type": _const("url"), "url": _STRING}, ("type", "url"))]}}, ("source",))
_USER_BLOCKS = {"type": "array", "items": {"oneOf": [
    _TEXT_PART, _IMAGE_BLOCK,
    _part("tool_result", {"tool_use_id": _STRING, "is_error": _BOOL, "content": {"oneOf": [
        _STRING, {"type": "array", "items": {"oneOf": [_TEXT_PART, _IMAGE_BLOCK]}}]}}, ("tool_use_id",)),
    _part("document", {"source": _obj({"type": _const("text"), "data": _STRING}, ("type", "data")),
                       "title": _STRING}, ("source",)),
]}}
_ASSISTANT_BLOCKS = {"type": "array", "items": {"oneOf": [
    _TEXT_PART,
    _part("tool_use", {"id": _STRING, "name": _STRING, "input": _OBJECT}, ("id", "name")),
    _part("thinking", {"thinking": _STRING, "signature": _STRING}, ("thinking", "signature")),
    _part("redacted_thinking", {"data": _STRING}, ("data",)),
]}}
_MESSAGES_FIELDS: dict[str, Any] = {
    "model": {"type": "string", "minLength": 1},
    "messages": {"type": "array", "minItems": 1, "items": {"oneOf": [
        _obj({"role": _const("user"), "content": {"oneOf": [_STRING, _USER_BLOCKS]}}, ("role", "content")),
        _obj({"role": _const("assistant"), "content": {"oneOf": [_STRING, _ASSISTANT_BLOCKS]}}, ("role", "content")),
    ]}},
    "system": {"oneOf": [_STRING, {"type": "array", "items": _TEXT_PART}]},
    "tools": {"type": "array", "items": _obj({"name": _STRING, "description": _STRING, "type": _const("custom"),
                                              "input_schema": _ref("JsonSchema"), "strict": _BOOL,
                                              "cache_control": _OBJECT}, ("name", "input_schema"))},
    "tool_choice": _obj({"type": {"enum": ["auto", "any", "tool", "none"]}, "name": _STRING,
                         "disable_parallel_tool_use": _BOOL}, ("type",)),
    "thinking": {"oneOf": [_obj({"type": _const("enabled"), "budget_tokens": {"type": "integer", "minimum": 1024}},
                                ("type", "budget_tokens")),
                           _obj({"type": {"enum": ["disabled", "adaptive"]}}, ("type",))]},
    "temperature": _range(0, 1), "top_p": _range(0, 1), "top_k": {"type": "integer", "minimum": 0},
    "stop_sequences": _STRINGS, "metadata": _obj({"user_id": _STRING}), "cache_control": _OBJECT,
    "output_format": _obj({"type": _const("json_schema"), "schema": _ref("JsonSchema")}, ("type", "schema")),
}

_INPUT_PARTS = {"type": "array", "items": {"oneOf": [
    _obj({"type": _const("input_text"), "text": _STRING}, ("type", "text")),
    _obj({"type": _const("input_image"), "image_url": _STRING, "detail": {"enum": ["auto", "low", "high"]}},
         ("type", "image_url")),
    _obj({"type": _const("input_file"), "file_data": _STRING, "filename": _STRING}, ("type", "file_data")),
]}}
_RESPONSES_REQUEST = _obj({
    "model": {"type": "string", "minLength": 1},
    "input": {"oneOf": [_STRING, {"type": "array", "items": {"oneOf": [
        _obj({"type": _const("message"), "role": {"enum": ["user", "system", "developer"]},
              "content": {"oneOf": [_STRING, _INPUT_PARTS]}}, ("role", "content")),
        _obj({"type": _const("message"), "role": _const("assistant"), "content": {"oneOf": [_STRING, {
            "type": "array", "items": _obj({"type": _const("output_text"), "text": _STRING}, ("type", "text"))}]}},
            ("role", "content")),
        _obj({"type": _const("function_call"), "call_id": _STRING, "name": _STRING, "arguments": _STRING},
             ("type", "call_id", "name", "arguments")),
        _obj({"type": _const("function_call_output"), "call_id": _STRING, "output": _STRING},
             ("type", "call_id", "output")),
    ]}}]},
    "instructions": _STRING, "previous_response_id": _STRING, "store": _BOOL, "stream": _BOOL,
    "tools": {"type": "array", "items": _obj({"type": _const("function"), "name": {"type": "string", "minLength": 1},
                                              "description": _STRING, "parameters": _ref("JsonSchema"),
                                              "strict": _BOOL}, ("type", "name"))},
    "tool_choice": {"oneOf": [{"enum": ["none", "auto", "required"]},
                              _obj({"type": _const("function"), "name": _STRING}, ("type", "name"))]},
    "text": _obj({"verbosity": {"enum": ["low", "medium", "high"]}, "format": {"oneOf": [
        _obj({"type": {"enum": ["text", "json_object"]}}, ("type",)),
        _obj({"type": _const("json_schema"), "name": {"type": "string", "minLength": 1},
              "schema": _ref("JsonSchema"), "strict": _BOOL}, ("type", "name", "schema"))]}}),
    "reasoning": _obj({"effort": {"enum": ["none", "minimal", "low", "medium", "high", "xhigh"]}}),
    "temperature": _range(0, 2), "top_p": _range(0, 1), "max_output_tokens": _POSITIVE,
    "parallel_tool_calls": _BOOL, "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
    "metadata": {"type": "object", "additionalProperties": _STRING, "maxProperties": 16},
    "truncation": {"enum": ["auto", "disabled"]}, "user": _STRING,
}, ("model",))

_EMBEDDINGS_REQUEST = _obj({
    "model": {"type": "string", "minLength": 1},
    "input": {"oneOf": [{"type": "string", "minLength": 1},
                        {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                        {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
                        {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1,
                                                                    "items": {"type": "integer", "minimum": 0}}}]},
    "encoding_format": {"enum": ["float", "base64"]}, "dimensions": _POSITIVE, "user": _STRING,
}, ("model", "input"))

_RESPONSE_OBJECT = _obj({"id": _STRING, "object": {"const": "response"}, "status": _STRING,
                         "model": _STRING, "output": {"type": "array"}, "usage": {"type": ["object", "null"]}},
                        ("id", "object", "status", "output"))
_LIST = _obj({"object": {"const": "list"}, "data": {"type": "array"}}, ("object", "data"))

_SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"message": _STRING, "type": _STRING, "param": {"type": ["string", "null"]},
                                  "code": {"type": ["string", "null"]}}, ("message", "type"))}, ("error",)),
    "AnthropicError": _obj({"type": {"const": "error"}, "error": _obj({"type": _STRING, "message": _STRING},
                                                                       ("type", "message"))}, ("type", "error")),
    "JsonSchema": _JSON_SCHEMA,
    "ChatRequest": _CHAT_REQUEST,
    "ChatCompletion": _obj({"id": _STRING, "object": {"const": "chat.completion"}, "created": {"type": "integer"},
                            "model": _STRING, "choices": {"type": "array"}, "usage": _OBJECT},
                           ("id", "object", "choices")),
    "MessagesRequest": _obj({**_MESSAGES_FIELDS, "max_tokens": _POSITIVE, "stream": _BOOL},
                            ("model", "max_tokens", "messages")),
    "CountTokensRequest": _obj(_MESSAGES_FIELDS, ("model", "messages")),
    "Message": _obj({"id": _STRING, "type": {"const": "message"}, "role": {"const": "assistant"},
                     "content": {"type": "array"}, "model": _STRING, "stop_reason": {"type": ["string", "null"]},
                     "usage": _OBJECT}, ("id", "type", "role", "content")),
    "TokenCount": _obj({"input_tokens": {"type": "integer", "minimum": 0}}, ("input_tokens",)),
    "ResponsesRequest": {**_RESPONSES_REQUEST, "anyOf": [{"required": ["input"]},
                                                         {"required": ["previous_response_id"]}]},
    "Response": _RESPONSE_OBJECT,
    "ResponseDeleted": _obj({"id": _STRING, "object": {"const": "response.deleted"}, "deleted": {"const": True}},
                            ("id", "object", "deleted")),
    "EmbeddingsRequest": _EMBEDDINGS_REQUEST,
    "Embeddings": _obj({"object": {"const": "list"}, "model": _STRING, "usage": _OBJECT, "data": {
        "type": "array", "items": _obj({"object": {"const": "embedding"}, "index": {"type": "integer"},
                                        "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}},
                                                                _STRING]}}, ("object", "index", "embedding"))}},
                       ("object", "data")),
    "List": _LIST,
    "Model": _obj({"id": _STRING, "object": {"const": "model"}}, ("id",)),
    "RouteExplanation": _obj({"object": {"const": "route.explanation"}, "route": {"type": ["string", "null"]},
                              "plan": {"type": "array"},
                              # A difficulty policy's decision (routing/difficulty.py).
                              "difficulty": _obj({"score": {"type": ["number", "null"]}, "threshold": {"type": "number"},
                                                  "strong_share": {"type": "number"},
                                                  "tier": {"enum": ["weak", "strong"]},
                                                  "source": {"enum": ["score", "header", "replay"]}},
                                                 ("score", "threshold", "tier", "source"))},
                             ("object", "plan")),
    "Generation": _obj({"data": _OBJECT}, ("data",)),
    "GuardrailsCheckRequest": _obj({
        "input": {"oneOf": [{"type": "string", "minLength": 1},
                            {"type": "array", "minItems": 1, "items": _obj(
                                {"role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
                                 "content": {"oneOf": [_STRING, {"type": "array", "items": _OBJECT}]}},
                                ("role",))}]},
        "detectors": {"type": "array", "minItems": 1, "items": {"enum": ["pii", "secrets", "prompt_injection"]}},
    }, ("input",)),
    "GuardrailsCheck": _obj({
        "flagged": _BOOL,
        "detectors": {"type": "array", "items": _obj({
            "name": _STRING, "score": _range(0, 1), "verdict": {"enum": ["pass", "flag", "unchecked"]},
            "action": _STRING,
            "entities": {"type": "array", "items": _obj({"type": _STRING, "start": {"type": "integer"},
                                                          "end": {"type": "integer"},
                                                          "message": {"type": "integer"}},
                                                         ("type", "start", "end"))}},
            ("name", "score", "verdict", "action", "entities"))}}, ("flagged", "detectors")),
}

#: One server-sent event of a streamed answer (``data`` is the JSON payload, or ``[DONE]`` for chat).
_SSE_EVENT = _obj({"event": _STRING, "data": _STRING, "id": _STRING}, ("data",))
#: Statuses any inference call may answer besides 200 (a vendor's failure is a 502, 503 or 504).
_FAILURES = ("400", "401", "402", "403", "404", "408", "413", "429", "502", "503", "504")


def _responses(schema: str, *, error: str = "Error", stream: bool = False,
               failures: tuple[str, ...] = _FAILURES) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": _ref(schema)}}
    if stream:
        ok["text/event-stream"] = {"schema": _SSE_EVENT}
    out: dict[str, Any] = {"200": {"description": "OK", "content": ok}}
    for status in failures:
        out[status] = {"description": "Error", "content": {"application/json": {"schema": _ref(error)}}}
    return out


def _post(request: str, response: str, summary: str, *, error: str = "Error", stream: bool = False) -> dict[str, Any]:
    return {"post": {"summary": summary, "requestBody": {"required": True, "content": {
        "application/json": {"schema": _ref(request)}}}, "responses": _responses(response, error=error, stream=stream)}}


def document() -> dict[str, Any]:
    response_id = [{"name": "response_id", "in": "path", "required": True, "schema": _STRING}]
    lookups = ("400", "401", "403", "404")
    paths: dict[str, Any] = {
        "/v1/chat/completions": _post("ChatRequest", "ChatCompletion", "OpenAI Chat Completions", stream=True),
        "/v1/messages": _post("MessagesRequest", "Message", "Anthropic Messages", error="AnthropicError",
                              stream=True),
        "/v1/messages/count_tokens": _post("CountTokensRequest", "TokenCount", "Anthropic token counting",
                                           error="AnthropicError"),
        "/v1/responses": _post("ResponsesRequest", "Response", "OpenAI Responses", stream=True),
        "/v1/responses/{response_id}": {
            "parameters": response_id,
            "get": {"summary": "A stored response", "responses": _responses("Response", failures=lookups)},
            "delete": {"summary": "Forget a stored response",
                       "responses": _responses("ResponseDeleted", failures=lookups)}},
        "/v1/responses/{response_id}/input_items": {
            "parameters": response_id,
            "get": {"summary": "A stored response's input items",
                    "parameters": [{"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}}],
                    "responses": _responses("List", failures=lookups)}},
        "/v1/embeddings": _post("EmbeddingsRequest", "Embeddings", "OpenAI embeddings"),
        "/v1/models": {"get": {"summary": "The catalog, OpenAI's list shape with OpenRouter's fields",
                               "responses": _responses("List", failures=("400", "401"))}},
        "/v1/models/{model_id}": {"get": {
            "summary": "One model", "parameters": [{"name": "model_id", "in": "path", "required": True,
                                                    "schema": _STRING}],
            "responses": _responses("Model", failures=("400", "401", "404"))}},
        "/v1/guardrails/check": _post("GuardrailsCheckRequest", "GuardrailsCheck",
                                      "Run the guardrail detectors on a text or messages, without a model call"),
        "/v1/route/explain": _post("ChatRequest", "RouteExplanation", "The routing decision, without a vendor call"),
        "/v1/generation": {"get": {
            "summary": "What happened to a request (OpenRouter's generation object)",
            "parameters": [{"name": "id", "in": "query", "required": True, "schema": _STRING}],
            "responses": _responses("Generation", failures=lookups)}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "interlock inference API", "version": "1",
                 "description": "OpenAI- and Anthropic-compatible endpoints in front of every configured vendor."},
        "security": [{"bearer": []}, {"apiKey": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
                       "schemas": _SCHEMAS},
        "paths": paths,
    }


class OpenApiDocument:
    """``GET /v1/openapi.json``: public, like the API it describes is documented; rendered once."""

    def __init__(self) -> None:
        self._body = orjson.dumps(document())

    async def __call__(self, req: Exchange) -> None:
        req.send(200, self._body, [("content-type", "application/json")])
