"""Check one gateway answer (status, content type, body) against the vendors' published schemas.

``Checker.check(method, path, status, content_type, body)`` picks the schema from the route, parses
SSE bodies into events, validates each event against its member of the event union and the stream's
event sequence, and returns the violations. It counts what it checked and the extra fields it saw
(allowed by the schema; reported, not failures) for the session summary.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from jsonschema.exceptions import ValidationError, best_match  # type: ignore[import-untyped]

from tests.conformance.schemas import anthropic_defs, openai_schemas, validate

TERMINAL = ("response.completed", "response.failed", "response.incomplete")


@dataclass
class Violation:
    where: str          # "POST /v1/responses event 3 (response.function_call_arguments.done)"
    schema: str         # "openai:ResponseFunctionCallArgumentsDoneEvent" or "sequence"
    location: str       # JSON path in the instance and the schema keyword that failed
    message: str
    instance: str       # the offending JSON, shortened

    def __str__(self) -> str:
        return f"{self.where}: {self.schema} at {self.location}: {self.message}\n    {self.instance}"


@dataclass
class Checker:
    checked: Counter[str] = field(default_factory=Counter)       # kind -> answers/events checked
    extras: Counter[tuple[str, str]] = field(default_factory=Counter)  # (schema path, field) -> times
    violations: list[Violation] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def check(self, method: str, url: str, status: int, content_type: str, body: bytes, *,
              partial: bool = False) -> list[Violation]:
        """Violations in one answer (also appended to ``self.violations``).

        ``partial``: the client stopped reading an event stream (SDKs close it after the terminal
        event); the events it read are checked, the end-of-stream rules are not."""
        path = unquote(urlsplit(url).path).rstrip("/")
        where = f"{method} {path} {status}"
        found: list[Violation] = []
        run = _Run(self, where, found, partial)
        try:
            run.route(method, path, status, content_type.split(";")[0].strip().lower(), body)
        except (ValueError, UnicodeDecodeError) as exc:
            run.fail("body", "-", f"not parseable: {exc}", body[:300].decode(errors="replace"))
        self.violations.extend(found)
        return found


@dataclass
class _Run:
    checker: Checker
    where: str
    found: list[Violation]
    partial: bool = False

    def fail(self, schema: str, location: str, message: str, instance: Any, where: str | None = None) -> None:
        text = instance if isinstance(instance, str) else json.dumps(instance, default=str)
        self.found.append(Violation(where or self.where, schema, location, message,
                                    text if len(text) < 600 else text[:600] + "…"))

    def validate(self, kind: str, ref: str, instance: Any, where: str | None = None,
                 schema: dict[str, Any] | None = None) -> None:
        self.checker.checked[kind] += 1
        errors, extras = validate(ref, instance, schema=schema)
        for extra in extras:
            self.checker.extras[extra] += 1
        for error in errors:
            deepest = _explain(error)
            self.fail(ref, _location(error, deepest), deepest.message[:300],
                      _at(instance, list(error.absolute_path)), where)

    # --- routing ---------------------------------------------------------------------------------
    def route(self, method: str, path: str, status: int, ctype: str, body: bytes) -> None:
        anthropic = path.startswith("/v1/messages")
        openai = path.startswith(("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/models"))
        if not (anthropic or openai):
            self.checker.skipped[f"{method} {_route_name(path)}"] += 1
            return
        if status >= 400:
            if ctype != "application/json":
                self.fail("error", "content-type", f"error answer is {ctype!r}, not JSON",
                          body[:300].decode(errors="replace"))
                return
            data = json.loads(body)
            if anthropic:
                self.validate("error (anthropic)", "anthropic:ErrorResponse", data)
            else:
                self.validate("error (openai)", "openai:ErrorResponse", data)
            return
        if ctype == "text/event-stream":
            events = parse_sse(body)
            if path == "/v1/chat/completions":
                self.chat_stream(events)
            elif path == "/v1/responses":
                self.responses_stream(events)
            elif path == "/v1/messages":
                self.messages_stream(events)
            else:
                self.fail("route", "-", "unexpected event stream", body[:200].decode(errors="replace"))
            return
        data = json.loads(body) if body else None
        if method == "POST" and path == "/v1/chat/completions":
            self.validate("chat.completion", "openai:CreateChatCompletionResponse", data)
        elif method == "POST" and path == "/v1/responses":
            self.validate("response", "openai:Response", data)
        elif method == "POST" and path == "/v1/embeddings":
            self.embeddings(data)
        elif method == "GET" and path == "/v1/models":
            self.validate("model list", "openai:ListModelsResponse", data)
        elif method == "GET" and path.startswith("/v1/models/") and path.endswith("/endpoints"):
            self.checker.skipped["GET /v1/models/{id}/endpoints (OpenRouter's, no OpenAI schema)"] += 1
        elif method == "GET" and path.startswith("/v1/models/"):
            self.validate("model", "openai:Model", data)
        elif method == "GET" and re.fullmatch(r"/v1/responses/[^/]+/input_items", path):
            self.validate("input_items", "openai:ResponseItemList", data)
        elif method == "GET" and re.fullmatch(r"/v1/responses/[^/]+", path):
            self.validate("response", "openai:Response", data)
        elif method == "DELETE" and re.fullmatch(r"/v1/responses/[^/]+", path):
            # EXCEPTION: the document gives DELETE /responses/{id} no body schema; this is what
            # OpenAI's API answers (and the openai SDKs' ResponseDeleted type).
            self.validate("response deleted", "inline:ResponseDeleted", data, schema=_RESPONSE_DELETED)
        elif method == "POST" and path == "/v1/messages":
            self.validate("message", "anthropic:Message", data)
        elif method == "POST" and path == "/v1/messages/count_tokens":
            self.validate("count_tokens", "anthropic:MessageTokensCount", data)
        else:
            self.checker.skipped[f"{method} {_route_name(path)}"] += 1

    def embeddings(self, data: Any) -> None:
        # EXCEPTION: the document types Embedding.embedding as an array of numbers only, but
        # encoding_format=base64 (documented on the request) answers a base64 string of float32s.
        # A string is checked to be that, and replaced by [] for the schema check of the rest.
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            for i, item in enumerate(data["data"]):
                if isinstance(item, dict) and isinstance(item.get("embedding"), str):
                    try:
                        raw = base64.b64decode(item["embedding"], validate=True)
                    except binascii.Error as exc:
                        self.fail("exception:base64 embedding", f"data/{i}/embedding", str(exc), item["embedding"][:80])
                        raw = b""
                    if len(raw) % 4:
                        self.fail("exception:base64 embedding", f"data/{i}/embedding",
                                  "not a whole number of float32s", item["embedding"][:80])
                    self.checker.checked["embedding (base64)"] += 1
                    data = {**data, "data": [*data["data"][:i], {**item, "embedding": []}, *data["data"][i + 1:]]}
        self.validate("embeddings", "openai:CreateEmbeddingResponse", data)

    # --- streams ---------------------------------------------------------------------------------
    def chat_stream(self, events: list[tuple[str | None, str]]) -> None:
        done = False
        errors = 0
        for n, (_, text) in enumerate(events):
            where = f"{self.where} chunk {n}"
            if done:
                self.fail("sequence", "-", "data after [DONE]", text, where)
            if text == "[DONE]":
                done = True
                continue
            chunk = json.loads(text)
            if isinstance(chunk, dict) and "error" in chunk:
                errors += 1
                if errors > 1:
                    self.fail("sequence", "-", "a second error in one stream", chunk, where)
                self.validate("chat stream error", "openai:ErrorResponse", chunk, where)
            else:
                self.validate("chat.completion.chunk", "openai:CreateChatCompletionStreamResponse", chunk, where)
        if not done and not errors and not self.partial:
            self.fail("sequence", "-", "stream ended without data: [DONE]", events[-1:] if events else "")

    def _event(self, n: int, name: str | None, text: str) -> tuple[Any, str | None, str]:
        """One named SSE event: its data, its ``type``, where it is; an ``event:`` name must match the type."""
        event = json.loads(text)
        kind = event.get("type") if isinstance(event, dict) else None
        where = f"{self.where} event {n} ({kind})"
        if name is not None and name != kind:
            self.fail("sequence", "event:", f"SSE event name {name!r} is not the data's type", text, where)
        return event, kind, where

    def responses_stream(self, events: list[tuple[str | None, str]]) -> None:
        members = _response_event_members()
        last_seq = -1
        terminals: list[str] = []
        errors = 0
        for n, (name, text) in enumerate(events):
            event, kind, where = self._event(n, name, text)
            if n == 0 and kind != "response.created":
                self.fail("sequence", "-", "first event is not response.created", text, where)
            if terminals:
                self.fail("sequence", "-", f"event after terminal {terminals[0]}", text, where)
            seq = event.get("sequence_number") if isinstance(event, dict) else None
            if isinstance(seq, int):
                if seq <= last_seq:
                    self.fail("sequence", "sequence_number", f"{seq} after {last_seq}", text, where)
                last_seq = seq
            if kind in TERMINAL:
                terminals.append(kind)
            if kind == "error":
                errors += 1
                if errors > 1:
                    self.fail("sequence", "-", "a second error event in one stream", text, where)
            member = members.get(kind or "")
            if member is None:
                self.fail("openai:ResponseStreamEvent", "type", f"no member of the event union has type {kind!r}",
                          text, where)
                continue
            self.validate(f"responses event {kind}", f"openai:{member}", _created_usage(kind, event), where)
        if not terminals and errors == 0 and not self.partial:
            self.fail("sequence", "-", "no terminal event (completed, failed or incomplete)",
                      events[-1][1] if events else "")

    def messages_stream(self, events: list[tuple[str | None, str]]) -> None:
        event_defs = _anthropic_event_members()
        state = "start"
        open_block: int | None = None
        next_index = 0
        for n, (name, text) in enumerate(events):
            event, kind, where = self._event(n, name, text)
            if kind == "ping":
                # Anthropic documents ping events in streams; the SDK types have no member for them.
                self.validate("messages event ping", "inline:ping", event, where, schema=_PING)
                continue
            if kind == "error":
                # interlock's stream error event carries request_id like its error bodies.
                self.validate("messages event error", "anthropic:ErrorResponse", event, where)
                if state == "done":
                    self.fail("sequence", "-", "error after message_stop", text, where)
                state = "done"
                continue
            member = event_defs.get(kind or "")
            if member is None:
                self.fail("anthropic:RawMessageStreamEvent", "type", f"no member has type {kind!r}", text, where)
                continue
            self.validate(f"messages event {kind}", f"anthropic:{member}", event, where)
            index = event.get("index")
            expected = {"message_start": "start", "content_block_start": "blocks",
                        "content_block_delta": "block", "content_block_stop": "block",
                        "message_delta": "blocks", "message_stop": "delta"}[kind or ""]
            if (state, kind) == ("start", "message_start"):
                state = "blocks"
            elif state == "blocks" and kind == "content_block_start" and open_block is None:
                if index != next_index:
                    self.fail("sequence", "index", f"block index {index}, expected {next_index}", text, where)
                open_block, state = index, "block"
            elif state == "block" and kind in ("content_block_delta", "content_block_stop"):
                if index != open_block:
                    self.fail("sequence", "index", f"index {index} inside block {open_block}", text, where)
                if kind == "content_block_stop":
                    open_block, state, next_index = None, "blocks", next_index + 1
            elif state == "blocks" and kind == "message_delta":
                state = "delta"
            elif state == "delta" and kind == "message_stop":
                state = "done"
            else:
                self.fail("sequence", "-", f"{kind} while expecting {expected!r} state, in {state!r}", text, where)
        if state != "done" and not self.partial:
            self.fail("sequence", "-", f"stream ended in state {state!r} (no message_stop or error)",
                      events[-1][1] if events else "")


_RESPONSE_DELETED: dict[str, Any] = {
    "type": "object", "required": ["id", "object", "deleted"],
    "properties": {"id": {"type": "string"}, "object": {"const": "response.deleted"}, "deleted": {"const": True}}}
_PING: dict[str, Any] = {"type": "object", "required": ["type"], "properties": {"type": {"const": "ping"}}}
def _created_usage(kind: str | None, event: Any) -> Any:
    """EXCEPTION: Response.usage is not nullable in the document, yet its own examples of
    response.created, response.in_progress and response.failed send ``"usage": null`` (no usage before
    the answer; none for an answer that failed, as interlock's chat and Messages streams send none
    after an error). Only on those events (and queued) is a null usage dropped before the check."""
    if kind in ("response.created", "response.in_progress", "response.queued", "response.failed"):
        response = event.get("response")
        if isinstance(response, dict) and "usage" in response and response["usage"] is None:
            return {**event, "response": {k: v for k, v in response.items() if k != "usage"}}
    return event


def _response_event_members() -> dict[str, str]:
    """Event ``type`` -> the name of its member of ResponseStreamEvent."""
    schemas = openai_schemas()
    out: dict[str, str] = {}
    for member in schemas["ResponseStreamEvent"]["anyOf"]:
        name = member["$ref"].rsplit("/", 1)[1]
        for kind in schemas[name].get("properties", {}).get("type", {}).get("enum", []):
            out[kind] = name
    return out


def _anthropic_event_members() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, schema in anthropic_defs().items():
        if name.startswith("Raw") and name.endswith("Event"):
            const = schema.get("properties", {}).get("type", {}).get("const")
            if isinstance(const, str):
                out[const] = name
    return out


def parse_sse(body: bytes) -> list[tuple[str | None, str]]:
    """(event name or None, data) per SSE event; comments and empty events are skipped."""
    events: list[tuple[str | None, str]] = []
    for block in re.split(r"\r?\n\r?\n", body.decode()):
        name: str | None = None
        data: list[str] = []
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if data:
            events.append((name, "\n".join(data)))
    return events


def _explain(error: ValidationError) -> ValidationError:
    """The most telling sub-error of a union: from the member whose ``type`` matches the instance
    (union members are told apart by their ``type`` constant), else jsonschema's best match."""
    if not error.context:
        return error
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    depth = len(error.absolute_path)
    matching = [subs for subs in by_branch.values()
                if not any(s.validator in ("const", "enum") and list(s.absolute_path)[depth:] == ["type"]
                           for s in subs)]
    if len(matching) == 1:
        return _explain(best_match(matching[0]) or error)
    return best_match([error, *error.context]) or error


def _location(error: ValidationError, deepest: ValidationError) -> str:
    path = "/".join(str(p) for p in deepest.absolute_path) or "(root)"
    return f"{path} [{'/'.join(str(p) for p in deepest.absolute_schema_path)}]"


def _at(instance: Any, path: list[Any]) -> Any:
    for step in path:
        try:
            instance = instance[step]
        except (KeyError, IndexError, TypeError):
            break
    return instance


def _route_name(path: str) -> str:
    return re.sub(r"/(resp|msg|chatcmpl|gen|req|key|in)[-_][^/]+", "/{id}", path)
