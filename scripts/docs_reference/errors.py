"""errors.md: every error code the gateway answers with, scanned from where the code raises it (AST)."""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from .common import GENERATED_NOTE, const_str, message_text, source_modules


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: str
    type: str
    meaning: str
    where: str


#: Error codes raised through a helper (not a GatewayError constructor): their status and type.
ERROR_FALLBACK = {
    "content_length_with_transfer_encoding": ("400", "invalid_request_error"),
    "incomplete_body": ("400", "invalid_request_error"),
    "invalid_transfer_encoding": ("400", "invalid_request_error"),
}


#: Meanings where the raising message names values (``…``) or the class has no docstring of its own.
ERROR_MEANINGS = {
    "region_not_allowed": "Data residency: no route of the model runs in the project's, key's or request's "
                          "regions, or the request asked to widen them.",
    "access_key_scope": "The MCP access key is for another tool pack or registered user.",
    "internal_error": "A bug: an exception nothing turned into an answer; the log has the traceback.",
    "invalid_transfer_encoding": "The request's Transfer-Encoding is not one the server accepts (chunked only).",
    "conflict": "The object already exists, or the change conflicts with its current state.",
    "method_not_allowed": "The route exists but not for this HTTP method.",
    "request_too_large": "The request body is larger than `server.max_body_bytes`.",
    "expired_api_key": "The API key has expired.",
    "revoked_api_key": "The API key was revoked.",
    "invalid_header": "An `x-interlock-cache-*` request header has an invalid value.",
    "invalid_schema": "A JSON schema in the request (tools, response_format) is invalid.",
    "integer_below_min_value": "A request parameter is an integer below its minimum.",
    "number_out_of_range": "A request parameter is a number outside its allowed range.",
    "invalid_type": "A request parameter has the wrong type.",
    "invalid_value": "A request parameter has a value that is not allowed.",
    "empty_array": "A request array that must not be empty is empty (e.g. `messages`).",
    "log_off": "The request log is off on this gateway, so there is nothing to read.",
    "model_not_allowed": "The key or project may not use this model.",
    "price_unknown": "The route's price is unknown and a hard budget applies (`governance.unpriced`).",
    "project_not_allowed": "This key may not use the project named in `x-interlock-project`.",
    "project_not_found": "The key's project no longer exists.",
    "simulator_disabled": "The simulator is not enabled on this gateway (`simulator.enabled`).",
    "tail_busy": "This worker already streams the live log to as many pages as it allows.",
    "tool_calls_per_minute": "An MCP tool-call rate limit was reached.",
    "unknown_project": "`x-interlock-project` names a project that does not exist.",
    "unknown_registered_user": "The MCP registered user does not exist in the project.",
    "unknown_tool_pack": "The MCP tool pack does not exist.",
    "unsupported_value": "A request parameter's value is not supported by the route or vendor.",
    "unsupported_parameter": "A parameter the chosen route cannot honour (with `provider.require_parameters`).",
    "upstream_auth_error": "The gateway could not authenticate to the vendor (cloud credentials).",
    "upstream_invalid_response": "The vendor's answer could not be read.",
    "upstream_stream_error": "The vendor failed in the middle of a stream.",
    "upstream_stream_malformed": "The vendor sent a stream event that is not valid JSON or SSE.",
    "upstream_stream_truncated": "The vendor ended the stream before it was complete.",
    "server_url_not_allowed": "An MCP server URL in the request is not a tool pack here nor an allowed prefix.",
    "previous_response_not_found": "`previous_response_id` names a response that is not stored.",
    "context_length_exceeded": "The request does not fit the context window of any target of the model.",
    "no_capable_route": "No target of the model can serve this request (its size or features).",
    "model_not_embedding": "The model's only vendors here offer no embeddings API.",
    "invalid_json": "The request body is not valid JSON (or not a JSON object).",
}
#: Statuses the code passes through rather than sets.
ERROR_STATUS = {"upstream_rejected": "the vendor's 4xx"}


def _error_classes(modules: list[tuple[str, ast.Module]]) -> dict[str, dict[str, Any]]:
    """Every GatewayError subclass by name: its status, type, code and docstring (inherited when unset)."""
    classes: dict[str, dict[str, Any]] = {"GatewayError": {"status": 500, "type": "api_error", "code": None,
                                                           "doc": "A failure."}}
    pending = [node for _, tree in modules for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    changed = True
    while changed:
        changed = False
        for node in pending:
            if node.name in classes:
                continue
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            parent = next((classes[b] for b in bases if b in classes), None)
            if parent is None:
                continue
            own = dict(parent)
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                        and isinstance(stmt.value, ast.Constant):
                    own[stmt.targets[0].id] = stmt.value.value
                elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                        and isinstance(stmt.value, ast.Constant):
                    own[stmt.target.id] = stmt.value.value
            doc = ast.get_docstring(node)
            own["doc"] = doc.split("\n")[0] if doc else parent["doc"]
            classes[node.name] = own
            changed = True
    return classes


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = re.search(r"(?<=[.;:])\s", text)
    return (text[:end.start()] if end else text).rstrip(" .;:") + "."


def error_codes() -> list[ErrorCode]:
    """Every error code the gateway can answer with: each GatewayError class's own, and each ``code=`` given
    where one is raised; status, type and the first raise's message (else the class docstring)."""
    modules = list(source_modules())
    classes = _error_classes(modules)
    found: dict[str, ErrorCode] = {}
    for name, cls in classes.items():
        if cls["code"] and not name.startswith("_"):
            found.setdefault(cls["code"], ErrorCode(cls["code"], str(cls["status"]), cls["type"],
                                                    _first_sentence(cls["doc"]), f"`{name}`"))
    for _, tree in modules:
        # ``code = "a" if ... else "b"`` then ``InvalidRequest(..., code=code)``: the names' possible strings.
        named: dict[str, list[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                values = [node.value.body, node.value.orelse] if isinstance(node.value, ast.IfExp) else [node.value]
                named.setdefault(node.targets[0].id, []).extend(v for v in map(const_str, values) if v)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            code_node = kw.get("code")
            codes = [c for c in [const_str(code_node)] if c] or (
                named.get(code_node.id, []) if isinstance(code_node, ast.Name) else [])
            for code in codes:
                _add_code(found, classes, node, kw, code)
    return sorted((dataclasses.replace(e, meaning=ERROR_MEANINGS.get(e.code, e.meaning),
                                       status=ERROR_STATUS.get(e.code, e.status)) for e in found.values()),
                  key=lambda e: e.code)


def _add_code(found: dict[str, ErrorCode], classes: dict[str, dict[str, Any]], node: ast.Call,
              kw: dict[str, ast.expr], code: str) -> None:
    func = node.func.id if isinstance(node.func, ast.Name) else \
        node.func.attr if isinstance(node.func, ast.Attribute) else ""
    cls = classes.get(func)
    status_node = kw.get("status")
    if cls is not None:
        status = str(status_node.value) if isinstance(status_node, ast.Constant) else str(cls["status"])
        kind = cls["type"]
    elif code in ERROR_FALLBACK:
        status, kind = ERROR_FALLBACK[code]
    else:
        return
    message = message_text(node.args[0] if node.args else kw.get("message")) or (cls or {}).get("doc", "")
    known = found.get(code)
    if known is None:
        found[code] = ErrorCode(code, status, kind, _first_sentence(message), f"`{func}`")
    elif status not in known.status.split(", "):
        found[code] = dataclasses.replace(known, status=f"{known.status}, {status}")


def errors_page() -> str:
    lines = ["# Errors", "", GENERATED_NOTE.strip(), "",
             "Every error answers in the caller's API format: OpenAI's `{\"error\": {\"message\", \"type\", "
             "\"param\", \"code\"}}`, or Anthropic's `{\"type\": \"error\", \"error\": {...}}` on `/v1/messages`. "
             "The table lists every `code`, scanned from where the code raises it: its HTTP status, the OpenAI "
             "error `type` and what it means. A "
             "vendor's own 4xx passes through as `upstream_rejected` with the vendor's status.", "",
             "| code | status | type | meaning | raised as |", "|---|---|---|---|---|"]
    for e in error_codes():
        lines.append(f"| `{e.code}` | {e.status} | `{e.type}` | {e.meaning.replace('|', '&#124;')} | {e.where} |")
    return "\n".join(lines) + "\n"

