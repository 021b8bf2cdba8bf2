"""The OpenAPI 3.1 document of ``/admin/v1`` governance endpoints (served at ``/admin/v1/openapi.json``).

Written as data next to the code it describes, so a client generator or a
schema-driven tester (schemathesis) sees exactly the fields the API accepts.
"""

from __future__ import annotations

from typing import Any

from interlock.governance.model import (
    BUDGET_SCOPES,
    LIMIT_SCOPES,
    LOG_LEVELS,
    MAX_COUNT,
    MAX_EXPIRY_S,
    PERIODS,
)
from interlock.governance.ops import MAX_OVERLAP_S
from interlock.guardrails.settings import FAIL_MODES, PROJECT_KEYS, actions_of

_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}}
_ERROR = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(schema: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": "OK", "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}, "400": _ERROR, "401": _ERROR, "403": _ERROR,
        "404": _ERROR, "409": _ERROR}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _id(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]


def _guardrails() -> dict[str, Any]:
    """A project's guardrail setting: per detector only the keys a project may set."""
    leaf: dict[str, Any] = {"fail_mode": {"enum": list(FAIL_MODES)}, "restore": {"type": "boolean"},
                            "output": {"type": "boolean"},
                            "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                            "indirect_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}
    return {"type": ["object", "null"], "additionalProperties": False,
            "description": "Only tightens the operator's floor (off < monitor < redact < block, a lower threshold, "
                           "fail_mode closed); a looser value is refused with 400 naming it. Replaces the whole "
                           "setting; null or {} clears it.",
            "properties": {name: {"type": "object", "additionalProperties": False, "properties": {
                key: {"enum": list(actions_of(name))} if key == "action" else leaf[key] for key in keys}}
                for name, keys in PROJECT_KEYS.items()}}


#: Data residency: region or jurisdiction names (``core/regions.py``); a key's may only narrow its project's.
_REGIONS = {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,62}$"},
            "description": "Jurisdictions (eu, us, uk, ch, ca, apac, sa, me, af) or vendor region names."}


def document() -> dict[str, Any]:
    usd = {"oneOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 9_000_000}, {"type": "string"}],
           "description": "USD, to the micro-dollar (6 decimals), at most 9,000,000."}
    budget_fields = {"amount_usd": usd, "period": {"enum": list(PERIODS)}, "mode": {"enum": ["hard", "soft"]},
                     "thresholds": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 100}}}
    count = {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}
    limit_fields = {"rpm": count, "tpm": count, "concurrent": count, "tool_calls_per_minute": count}
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": ["string", "null"]},
            "code": {"type": ["string", "null"]}}}}},
        "Project": {"type": "object", "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "log_level": {"enum": [*LOG_LEVELS, None]},
            "allowed_models": _NAMES, "allowed_vendors": _NAMES, "zero_data_retention": {"type": "boolean"},
            "guardrails": {"type": ["object", "null"]}, "regions": _REGIONS,
            "effective_guardrails": {"type": "object", "description": "GET of one project: what applies to it."},
            "created_at": {"type": "number"}}},
        "ProjectCreate": {"type": "object", "required": ["id"], "additionalProperties": False, "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"}, "name": {"type": "string"},
            "log_level": {"enum": [*LOG_LEVELS, None]}, "allowed_models": _NAMES, "allowed_vendors": _NAMES,
            "zero_data_retention": {"type": "boolean"}, "guardrails": _guardrails(), "regions": _REGIONS}},
        "ProjectUpdate": {"type": "object", "additionalProperties": False, "properties": {
            "name": {"type": "string"}, "log_level": {"enum": [*LOG_LEVELS, None]}, "allowed_models": _NAMES,
            "allowed_vendors": _NAMES, "zero_data_retention": {"type": "boolean"}, "guardrails": _guardrails(),
            "regions": _REGIONS}},
        "Key": {"type": "object", "properties": {
            "id": {"type": "string"}, "project": {"type": "string"}, "name": {"type": "string"},
            "prefix": {"type": "string"}, "projects": _NAMES, "allowed_models": _NAMES, "regions": _REGIONS,
            "created_at": {"type": "number"}, "expires_at": {"type": ["number", "null"]},
            "revoked_at": {"type": ["number", "null"]}, "replaced_by": {"type": ["string", "null"]},
            "key": {"type": "string", "description": "The key itself: returned once, on creation or rotation."}}},
        "KeyCreate": {"type": "object", "required": ["project"], "additionalProperties": False, "properties": {
            "project": {"type": "string"}, "name": {"type": "string"}, "projects": _NAMES,
            "allowed_models": _NAMES, "expires_in": {"oneOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_EXPIRY_S},
                {"type": "string", "description": "A duration such as 30d, 12h, 90m or 3600s (at most 100 years)."}]},
            "expires_at": {"type": "number"}, "regions": _REGIONS,
            "budget": {"type": "object", "required": ["amount_usd"], "additionalProperties": False,
                       "properties": budget_fields},
            "limits": {"type": "object", "additionalProperties": False, "properties": limit_fields}}},
        "KeyRotate": {"type": "object", "additionalProperties": False, "properties": {
            "overlap_seconds": {"type": "number", "minimum": 0, "maximum": MAX_OVERLAP_S}}},
        "Budget": {"type": "object", "properties": {"id": {"type": "string"}, "scope": {"enum": list(BUDGET_SCOPES)},
                                                    "subject": {"type": "string"}, **budget_fields,
                                                    "status": {"type": "object"}}},
        "BudgetCreate": {"type": "object", "required": ["scope", "subject", "amount_usd"],
                         "additionalProperties": False, "properties": {
                             "scope": {"enum": list(BUDGET_SCOPES)}, "subject": {"type": "string"}, **budget_fields}},
        "Limit": {"type": "object", "properties": {"id": {"type": "string"}, "scope": {"enum": list(LIMIT_SCOPES)},
                                                   "subject": {"type": "string"},
                                                   **{n: {"type": ["integer", "null"]} for n in limit_fields}}},
        "LimitCreate": {"type": "object", "required": ["scope", "subject"], "additionalProperties": False,
                        "properties": {"scope": {"enum": list(LIMIT_SCOPES)}, "subject": {"type": "string"},
                                       **limit_fields}},
        "BudgetUpdate": {"type": "object", "additionalProperties": False, "properties": {
            k: v for k, v in budget_fields.items() if k in ("amount_usd", "period", "mode", "thresholds")}},
        "LimitUpdate": {"type": "object", "additionalProperties": False, "properties": {
            n: {"oneOf": [count, {"type": "null"}]} for n in limit_fields}},
        "List": {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array"}}},
        "Deleted": {"type": "object", "properties": {"id": {"type": "string"}, "deleted": {"type": "boolean"}}},
    }
    paths: dict[str, Any] = {
        "/admin/v1/projects": {"get": {"responses": _ok("List")},
                               "post": {"requestBody": _body("ProjectCreate"), "responses": _ok("Project", "201")}},
        "/admin/v1/projects/{project_id}": {
            "parameters": _id("project_id"), "get": {"responses": _ok("Project")},
            "patch": {"requestBody": _body("ProjectUpdate"), "responses": _ok("Project")},
            "delete": {"responses": _ok("Deleted")}},
        "/admin/v1/keys": {"get": {"parameters": [{"name": "project", "in": "query", "schema": {"type": "string"}}],
                                   "responses": _ok("List")},
                           "post": {"requestBody": _body("KeyCreate"), "responses": _ok("Key", "201")}},
        "/admin/v1/keys/{key_id}": {"parameters": _id("key_id"), "get": {"responses": _ok("Key")},
                                    "delete": {"responses": _ok("Key")}},
        "/admin/v1/keys/{key_id}/revoke": {"parameters": _id("key_id"), "post": {"responses": _ok("Key")}},
        "/admin/v1/keys/{key_id}/rotate": {"parameters": _id("key_id"), "post": {
            "requestBody": {**_body("KeyRotate"), "required": False}, "responses": _ok("Key", "201")}},
        "/admin/v1/alerts": {"get": {"responses": _ok("List")}},
    }
    for kind, one in (("budgets", "Budget"), ("limits", "Limit")):
        params = [{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("scope", "subject")]
        paths[f"/admin/v1/{kind}"] = {"get": {"parameters": params, "responses": _ok("List")},
                                      "post": {"requestBody": _body(f"{one}Create"), "responses": _ok(one, "201")}}
        paths[f"/admin/v1/{kind}/{{{one.lower()}_id}}"] = {
            "parameters": _id(f"{one.lower()}_id"), "get": {"responses": _ok(one)},
            "patch": {"requestBody": _body(f"{one}Update"), "responses": _ok(one)},
            "delete": {"responses": _ok("Deleted")}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "interlock governance admin API", "version": "1"},
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
        "paths": paths,
    }
