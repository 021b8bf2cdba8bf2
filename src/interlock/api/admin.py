"""``/admin/v1`` governance API: projects, API keys, budgets and limits (admin key only).

JSON in, JSON out, errors in OpenAI's shape naming the field (400), the
missing item (404) or the conflict (409). A project key gets 403
``permission_error``. The worker that takes a change applies it at once; the
others reload within the poll interval. The OpenAPI 3.1 document is served at
``/admin/v1/openapi.json``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson

from interlock.core.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.core.regions import BUILTIN_REGIONS, RegionTable
from interlock.governance import ops
from interlock.governance.audit import AuditLog, project_of
from interlock.governance.model import DefinitionError
from interlock.governance.openapi import document
from interlock.governance.service import Governance
from interlock.governance.store import Duplicate
from interlock.guardrails.settings import GuardrailConfig, effective, settable
from interlock.wire.openai_chat import error_body


class RouteTable(Protocol):
    """Where the admin API adds its routes (``server/http.Router``)."""

    def add(self, path: str, methods: tuple[str, ...], handler: Callable[[Exchange], Awaitable[None]],
            render_error: Callable[[GatewayError], bytes]) -> None: ...

BASE = "/admin/v1"
MAX_BODY = 64 * 1024


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class AdminApi:
    def __init__(self, governance: Governance, secret: bytes, guardrails: GuardrailConfig | None = None,
                 regions: RegionTable = BUILTIN_REGIONS) -> None:
        self.gov = governance
        self.secret = secret
        #: The floor a project's ``guardrails`` may only tighten, with the config's per-project entries.
        self.guardrails = guardrails or GuardrailConfig()
        #: What ``regions`` of a project or key may name (the config's ``regions.jurisdictions`` included).
        self.regions = regions
        self._openapi = orjson.dumps(document())
        #: Every change made here is written to the audit log (``via = "api"``).
        self.audit = AuditLog(governance.store, governance.clock)

    def add_routes(self, router: RouteTable) -> None:
        methods = ("GET", "POST", "PATCH", "DELETE")
        for name in ("projects", "keys", "budgets", "limits"):
            router.add(f"{BASE}/{name}", methods, self.handle, error_body)
            router.add(f"{BASE}/{name}/*", methods, self.handle, error_body)
        router.add(f"{BASE}/alerts", ("GET",), self.handle, error_body)
        router.add(f"{BASE}/openapi.json", ("GET",), self.openapi, error_body)

    async def openapi(self, req: Exchange) -> None:
        req.send(200, self._openapi, [("content-type", "application/json")])

    async def handle(self, req: Exchange) -> None:
        principal = self.gov.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        if principal.kind != "admin":
            raise PermissionDenied("Projects, keys, budgets and limits are managed with the admin key only.")
        parts = [p for p in req.path[len(BASE) + 1:].split("/") if p]
        method = req.method
        before = self._snapshot(parts) if method != "GET" else None
        try:
            status, data = await self._dispatch(req, method, parts)
        except DefinitionError as exc:
            raise InvalidRequest(f"Invalid '{exc.field}': {exc.message}.", param=exc.field) from None
        except ops.Missing as exc:
            raise NotFound(exc.message, param=exc.field) from None
        except Duplicate:
            raise Conflict("An item with this id already exists.", param="id") from None
        if method != "GET":
            await self.gov.poll()  # this worker sees its own change at once
            await self._audit(principal, method, parts, before, data)
        req.json(status, data)

    def _snapshot(self, parts: list[str]) -> dict[str, Any] | None:
        """The item a change names, as it is before the change (None: a creation, or unknown)."""
        if len(parts) < 2 or parts[0] not in ("projects", "keys", "budgets", "limits"):
            return None
        item = getattr(self.gov.defs, parts[0]).get(parts[1])
        return None if item is None else dict(item.to_json())

    async def _audit(self, principal: Principal, method: str, parts: list[str], before: dict[str, Any] | None,
                     data: Any) -> None:
        kind = parts[0][:-1]
        action = parts[2] if len(parts) > 2 else {"POST": "create", "PATCH": "update", "DELETE": "delete"}.get(
            method, method.lower())
        after = None if action in ("delete", "revoke") or not isinstance(data, dict) else data
        if action == "revoke":
            key = self.gov.defs.keys.get(parts[1])
            after = None if key is None else key.to_json()
        # The item the answer names (a rotation's new key), else the one the path names.
        target = str(data.get("id") or "") if isinstance(data, dict) else ""
        target = target or (parts[1] if len(parts) > 1 else "")
        await self.audit.record(principal, "api", f"{kind}.{action}", kind, target,
                                project=project_of(self.gov.defs, kind, before or after), before=before,
                                after=after)

    async def _body(self, req: Exchange) -> dict[str, Any]:
        raw = await req.body(MAX_BODY)
        if not raw.strip():
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The body is not valid JSON.", code="invalid_json") from None
        if not isinstance(body, dict):
            raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
        return body

    def _query(self, req: Exchange, allowed: tuple[str, ...]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, values in parse_qs(req.query, keep_blank_values=True).items():
            if key not in allowed:
                raise InvalidRequest(f"Unknown query parameter '{key}'; expected one of: "
                                     f"{', '.join(allowed) or 'none'}.", param=key)
            out[key] = values[-1]
        return out

    async def _dispatch(self, req: Exchange, method: str, parts: list[str]) -> tuple[int, Any]:
        kind = parts[0]
        rest = parts[1:]
        if kind == "alerts" and not rest:
            return 200, {"object": "list", "data": list(reversed(self.gov.alerts.recent))}
        handler = getattr(self, f"_{kind}", None)
        if handler is None or len(rest) > 2:
            raise NotFound(f"Unknown admin path {req.path}.")
        result: tuple[int, Any] = await handler(req, method, rest)
        return result

    def _not_allowed(self, method: str, path: str) -> GatewayError:
        return GatewayError(f"{method} is not allowed on {path}.", status=405, code="method_not_allowed")

    # ----------------------------------------------------------------- projects

    async def _projects(self, req: Exchange, method: str, rest: list[str]) -> tuple[int, Any]:
        store, defs = self.gov.store, self.gov.defs
        if not rest:
            if method == "GET":
                self._query(req, ())
                return 200, {"object": "list", "data": [p.to_json() for p in sorted(
                    defs.projects.values(), key=lambda p: p.id)]}
            if method == "POST":
                return 201, (await ops.create_project(store, await self._body(req),
                                                      guardrails=self.guardrails,
                                                      regions=self.regions)).to_json()
            raise self._not_allowed(method, req.path)
        if len(rest) != 1:
            raise NotFound(f"Unknown admin path {req.path}.")
        await self.gov.poll()
        project = self.gov.defs.projects.get(rest[0])
        if project is None:
            raise NotFound(f"No project with id {rest[0]!r}.")
        if method == "GET":
            data = project.to_json()
            data["keys"] = [k.to_json() for k in self.gov.defs.keys.values() if k.project == project.id]
            # What applies: the floor, the config's entry for the project and its own setting, tightest each.
            data["effective_guardrails"] = settable(effective(
                self.guardrails.floor, self.guardrails.override_for(project.id, project.guardrails)))
            return 200, data
        if method == "PATCH":
            return 200, (await ops.update_project(store, project, await self._body(req),
                                                  guardrails=self.guardrails,
                                                  regions=self.regions)).to_json()
        if method == "DELETE":
            await store.delete_project(project.id)
            return 200, {"id": project.id, "deleted": True}
        raise self._not_allowed(method, req.path)

    # ----------------------------------------------------------------- keys

    async def _keys(self, req: Exchange, method: str, rest: list[str]) -> tuple[int, Any]:
        store = self.gov.store
        if not rest:
            if method == "GET":
                q = self._query(req, ("project",))
                await self.gov.poll()
                keys = [k for k in self.gov.defs.keys.values() if q.get("project") in (None, k.project)]
                return 200, {"object": "list", "data": [k.to_json() for k in sorted(keys, key=lambda k: k.created_at)]}
            if method == "POST":
                created, plaintext, attached = await ops.create_key(store, self.secret, await self._body(req),
                                                                    regions=self.regions)
                data = created.to_json()
                data["key"] = plaintext
                data["attached"] = [a.to_json() for a in attached]
                return 201, data
            raise self._not_allowed(method, req.path)
        await self.gov.poll()
        found = self.gov.defs.keys.get(rest[0])
        if found is None:
            raise NotFound(f"No key with id {rest[0]!r}.")
        key = found
        action = rest[1] if len(rest) > 1 else None
        if action is None and method == "GET":
            return 200, key.to_json()
        if (action is None and method == "DELETE") or (action == "revoke" and method == "POST"):
            await store.revoke_key(key.id, time.time())
            return 200, {**key.to_json(), "revoked": True}
        if action == "rotate" and method == "POST":
            body = await self._body(req)
            ops.only(body, ("overlap_seconds",))
            overlap = body.get("overlap_seconds", 3600)
            if isinstance(overlap, bool) or not isinstance(overlap, int | float):
                raise DefinitionError("overlap_seconds", f"expected a number of seconds, got {overlap!r}")
            new, plaintext = await ops.rotate_key(store, self.secret, key, float(overlap))
            return 201, {**new.to_json(), "key": plaintext, "replaces": key.id}
        if action not in (None, "revoke", "rotate"):
            raise NotFound(f"Unknown admin path {req.path}.")
        raise self._not_allowed(method, req.path)

    # ----------------------------------------------------------------- budgets and limits

    async def _budgets(self, req: Exchange, method: str, rest: list[str]) -> tuple[int, Any]:
        return await self._items(req, method, rest, "budgets")

    async def _limits(self, req: Exchange, method: str, rest: list[str]) -> tuple[int, Any]:
        return await self._items(req, method, rest, "limits")

    async def _items(self, req: Exchange, method: str, rest: list[str], kind: str) -> tuple[int, Any]:
        gov = self.gov
        if not rest:
            if method == "GET":
                q = self._query(req, ("scope", "subject"))
                await gov.poll()
                items = getattr(gov.defs, kind).values()
                data = [i.to_json() for i in items if q.get("scope") in (None, i.scope)
                        and q.get("subject") in (None, i.subject)]
                return 200, {"object": "list", "data": sorted(data, key=lambda d: d["created_at"])}
            if method == "POST":
                if gov.cfg.workers > 1 and gov.redis is None:
                    raise Conflict(f"This gateway runs {gov.cfg.workers} workers without redis:, so budgets and "
                                   "limits could not be counted exactly; configure redis: first.")
                body = await self._body(req)
                item = await (ops.create_budget(gov.store, body) if kind == "budgets"
                              else ops.create_limit(gov.store, body))
                return 201, item.to_json()
            raise self._not_allowed(method, req.path)
        if len(rest) != 1:
            raise NotFound(f"Unknown admin path {req.path}.")
        await gov.poll()
        item = getattr(gov.defs, kind).get(rest[0])
        if item is None:
            raise NotFound(f"No {kind[:-1]} with id {rest[0]!r}.")
        if method == "GET":
            data = item.to_json()
            if kind == "budgets" and item.subject != "*":
                data["status"] = await gov.budget_status(item)
            return 200, data
        if method == "PATCH":
            body = await self._body(req)
            changed = await (ops.update_budget(gov.store, item, body) if kind == "budgets"
                             else ops.update_limit(gov.store, item, body))
            return 200, changed.to_json()
        if method == "DELETE":
            await gov.store.delete(f"gov_{kind}", item.id)
            return 200, {"id": item.id, "deleted": True}
        raise self._not_allowed(method, req.path)
