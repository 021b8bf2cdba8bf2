"""``/admin/v1/mcp/*``: registered users, their credentials, access keys, servers, tool packs, the call log.

Callers: the admin key (every project; names the project of a registered user with ``project`` in the body
or ``?project=``) or a project key (its own project only: another project's objects read as unknown, never
as forbidden). Servers are the admin key's; packs also a project key's, for its own project. Secrets go in
(credentials) and never come out: answers say which kind of credential is stored and when, not what.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol
from urllib.parse import parse_qs

from interlock.core.errors import GatewayError, InvalidRequest, MethodNotAllowed, NotFound, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.governance.auth import Authenticator
from interlock.governance.store import Duplicate
from interlock.mcp.auth import Registry
from interlock.mcp.calllog import FILTERS, McpCallLog
from interlock.mcp.model import SpecError, check_id, parse_pack, parse_server
from interlock.mcp.settings import McpSettings
from interlock.mcp.store import McpStore
from interlock.wire.chat_validation import parse_json_object
from interlock.wire.openai_chat import error_body

BASE = "/admin/v1/mcp"


class RouteTable(Protocol):
    """Where routes are added (``server/http.Router``)."""

    def add(self, path: str, methods: tuple[str, ...], handler: Callable[[Exchange], Awaitable[None]],
            render_error: Callable[[GatewayError], bytes]) -> None: ...


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"
MAX_BODY = 64 * 1024


class McpAdmin:
    def __init__(self, store: McpStore, calls: McpCallLog, settings: McpSettings, auth: Authenticator,
                 registry: Registry, projects: Callable[[], Collection[str]] = frozenset) -> None:
        self.store = store
        #: The governance projects (a registered user's project must be one, or be named by a tool pack).
        self.projects = projects
        self.calls = calls
        self.settings = settings
        self.auth = auth
        self.registry = registry

    def add_routes(self, router: RouteTable) -> None:
        methods = ("GET", "POST", "PUT", "DELETE")
        for name in ("registered-users", "access-keys", "servers", "tool-packs", "calls"):
            router.add(f"{BASE}/{name}", methods, self.handle, error_body)
            router.add(f"{BASE}/{name}/*", methods, self.handle, error_body)

    async def handle(self, req: Exchange) -> None:
        principal = self.auth.authenticate(req.header("authorization"), req.header("x-api-key"))
        parts = [p for p in req.path[len(BASE) + 1:].split("/") if p]
        kind, rest = parts[0], parts[1:]
        query = {k: v[-1] for k, v in parse_qs(req.query, keep_blank_values=True).items()}
        try:
            status, data = await self._route(req, principal, kind, rest, query)
        except SpecError as exc:
            raise InvalidRequest(f"Invalid '{exc.key}': {exc.message}.", param=exc.key) from None
        req.json(status, data)

    async def _route(self, req: Exchange, principal: Principal, kind: str, rest: list[str],
                     query: dict[str, str]) -> tuple[int, Any]:
        if kind == "registered-users":
            status, data = await self._users(req, principal, rest, query)
        elif kind == "access-keys":
            status, data = await self._access_keys(req, principal, rest)
        elif kind == "servers":
            status, data = await self._servers(req, principal, rest)
        elif kind == "tool-packs":
            status, data = await self._packs(req, principal, rest)
        else:
            status, data = await self._calls(req, principal, rest, query)
        return status, data

    # ------------------------------------------------------------------------------ helpers

    @staticmethod
    async def _body(req: Exchange) -> dict[str, Any]:
        raw = await req.body(MAX_BODY)
        return parse_json_object(raw) if raw.strip() else {}

    @staticmethod
    def _project(principal: Principal, named: object, param: str = "project") -> str:
        """The project a request acts in: a project key's own; the admin key names it."""
        if principal.admin:
            if not isinstance(named, str) or not named:
                raise InvalidRequest(f"The admin key must name the project ('{param}').", param=param)
            return named
        assert principal.project is not None
        if named is not None and named != principal.project:
            raise PermissionDenied(f"This key belongs to project {principal.project!r}; it cannot act in "
                                   f"{str(named)[:64]!r}.", param=param, code="project_not_allowed")
        return principal.project

    @staticmethod
    def _method(req: Exchange, allowed: tuple[str, ...]) -> None:
        if req.method not in allowed:
            raise MethodNotAllowed(f"{req.method} is not allowed on {req.path[:200]}; use {', '.join(allowed)}.")

    # ------------------------------------------------------------------------------ users

    async def _users(self, req: Exchange, principal: Principal, rest: list[str],
                     query: dict[str, str]) -> tuple[int, Any]:
        if not rest:
            if req.method == "POST":
                body = await self._body(req)
                _only(body, ("id", "project", "name"))
                project = self._project(principal, body.get("project"))
                _, packs = await self.registry.current()
                if project not in self.projects() and all(p.project != project for p in packs.values()):
                    raise NotFound(f"Unknown project {project[:64]!r}: create it first (POST /admin/v1/projects).",
                                   param="project")
                user_id = check_id(body.get("id"), "id", "registered user")
                name = body.get("name", "")
                if not isinstance(name, str) or len(name) > 200:
                    raise InvalidRequest("'name' must be a string of at most 200 characters.", param="name")
                try:
                    user = await self.store.add_user(project, user_id, name)
                except Duplicate:
                    raise Conflict(f"Registered user {user_id!r} already exists in project {project!r}.",
                                   param="id") from None
                return 201, _user(user.project, user.id, user.name, user.created_at)
            self._method(req, ("GET", "POST"))
            project_filter = (query.get("project") if principal.admin
                              else self._project(principal, query.get("project")))
            limit = _int(query.get("limit", "100"), "limit", 1, 1000)
            users = await self.store.users(project_filter, query.get("after", ""), limit)
            return 200, {"object": "list", "data": [_user(u.project, u.id, u.name, u.created_at) for u in users],
                         "has_more": len(users) == limit, "last_id": users[-1].id if users else None}
        user_id = rest[0]
        project = self._project(principal, query.get("project"))
        found = await self.store.user(project, user_id)
        if found is None:
            raise NotFound(f"Unknown registered user {user_id[:64]!r} in project {project!r}.",
                           param="registered_user")
        if len(rest) == 1:
            if req.method == "DELETE":
                await self.store.delete_user(project, user_id)
                return 200, {"id": user_id, "project": project, "deleted": True}
            self._method(req, ("GET", "DELETE"))
            return 200, {**_user(found.project, found.id, found.name, found.created_at),
                         "credentials": await self.store.credentials(project, user_id)}
        if rest[1] != "credentials" or len(rest) > 3:
            raise NotFound(f"Unknown path {req.path[:200]!r}.")
        if len(rest) == 2:
            self._method(req, ("GET",))
            return 200, {"object": "list", "data": await self.store.credentials(project, user_id)}
        server = rest[2]
        if req.method == "DELETE":
            if not await self.store.delete_credential(project, user_id, server):
                raise NotFound(f"Registered user {user_id!r} has no credential for {server!r}.", param="server")
            return 200, {"server": server, "deleted": True}
        self._method(req, ("PUT", "DELETE"))
        return 200, await put_credential(self.store, self.registry, await self._body(req), project, user_id, server)

    # ------------------------------------------------------------------------ access keys

    async def _access_keys(self, req: Exchange, principal: Principal, rest: list[str]) -> tuple[int, Any]:
        project = None if principal.admin else principal.project
        if rest:
            found = [k for k in await self.store.access_keys(project) if k["id"] == rest[0]]
            if not found:
                raise NotFound(f"Unknown access key {rest[0][:64]!r}.", param="id")
            if req.method == "GET":
                return 200, found[0]
            self._method(req, ("GET", "DELETE"))
            if not await self.store.revoke(project, rest[0]):
                raise Conflict(f"The access key {rest[0][:64]!r} is already revoked.", param="id")
            return 200, {"id": rest[0], "revoked": True, "revoked_at": self.store.clock.time()}
        if req.method == "GET":
            return 200, {"object": "list", "data": await self.store.access_keys(project)}
        self._method(req, ("GET", "POST"))
        body = await self._body(req)
        _only(body, ("tool_pack", "registered_user", "ttl_s"))
        return 201, await mint_access_key(self.store, self.registry, self.settings, project, body.get("tool_pack"),
                                          body.get("registered_user"), body.get("ttl_s", 3600))

    # -------------------------------------------------------------------- servers and packs

    async def _servers(self, req: Exchange, principal: Principal, rest: list[str]) -> tuple[int, Any]:
        if not principal.admin:
            raise PermissionDenied("MCP servers are managed with the admin key only.")
        servers, _ = await self.registry.current()
        if not rest:
            if req.method == "POST":
                body = await self._body(req)
                name = body.pop("name", None)
                return 201, await self._put_server(check_id(name, "name", "server"), body, create=True)
            self._method(req, ("GET", "POST"))
            return 200, {"object": "list", "data": [s.public() for _, s in sorted(servers.items())]}
        name = rest[0]
        if req.method == "PUT":
            return 200, await self._put_server(name, await self._body(req), create=False)
        spec = servers.get(name)
        if spec is None:
            raise NotFound(f"Unknown MCP server {name[:64]!r}.", param="name")
        if req.method == "DELETE":
            if spec.source == "config":
                raise Conflict(f"MCP server {name!r} is defined in the config file; change it there.", param="name")
            _, packs = await self.registry.current()
            users = sorted(p.id for p in packs.values() if name in p.servers())
            if users:
                raise Conflict(f"MCP server {name!r} is used by tool pack(s) {', '.join(users)}; change them first.",
                               param="name")
            await self.store.delete_definition("mcp_servers", "name", name)
            return 200, {"name": name, "deleted": True}
        self._method(req, ("GET", "PUT", "DELETE"))
        return 200, spec.public()

    async def _put_server(self, name: str, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        if name in self.settings.servers:
            raise Conflict(f"MCP server {name!r} is defined in the config file; change it there.", param="name")
        servers, _ = await self.registry.current()
        if create and name in servers:
            raise Conflict(f"MCP server {name!r} already exists; PUT /admin/v1/mcp/servers/{name} replaces it.",
                           param="name")
        try:
            spec = parse_server(name, body, source="admin")
        except SpecError as exc:
            raise InvalidRequest(f"Invalid '{exc.key}': {exc.message}.", param=exc.key) from None
        await self.store.put_server(name, body)
        return spec.public()

    async def _packs(self, req: Exchange, principal: Principal, rest: list[str]) -> tuple[int, Any]:
        own = None if principal.admin else principal.project
        _, packs = await self.registry.current()
        visible = {k: p for k, p in packs.items() if own is None or p.project == own}
        if not rest:
            if req.method == "POST":
                body = await self._body(req)
                pack_id = check_id(body.pop("id", None), "id", "tool pack")
                if pack_id in packs:
                    raise Conflict(f"Tool pack {pack_id!r} already exists.", param="id")
                return 201, await self._put_pack(principal, pack_id, body)
            self._method(req, ("GET", "POST"))
            return 200, {"object": "list", "data": [p.public() for _, p in sorted(visible.items())]}
        pack_id = rest[0]
        if req.method == "PUT":
            if pack_id in packs and pack_id not in visible:
                raise NotFound(f"Unknown tool pack {pack_id[:64]!r}.", param="id")
            return 200, await self._put_pack(principal, check_id(pack_id, "id", "tool pack"), await self._body(req))
        pack = visible.get(pack_id)
        if pack is None:
            raise NotFound(f"Unknown tool pack {pack_id[:64]!r}.", param="id")
        if req.method == "DELETE":
            if pack.source == "config":
                raise Conflict(f"Tool pack {pack_id!r} is defined in the config file; change it there.", param="id")
            await self.store.delete_definition("mcp_packs", "id", pack_id)
            await self.store.revoke_pack(pack_id)  # its access keys end with it
            return 200, {"id": pack_id, "deleted": True}
        self._method(req, ("GET", "PUT", "DELETE"))
        return 200, pack.public()

    async def _put_pack(self, principal: Principal, pack_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if pack_id in self.settings.packs:
            raise Conflict(f"Tool pack {pack_id!r} is defined in the config file; change it there.", param="id")
        body["project"] = self._project(principal, body.get("project"))
        servers, _ = await self.registry.current()
        try:
            pack = parse_pack(pack_id, body, servers, source="admin")
        except SpecError as exc:
            raise InvalidRequest(f"Invalid '{exc.key}': {exc.message}.", param=exc.key) from None
        await self.store.put_pack(pack_id, pack.project, body)
        return pack.public()

    # ------------------------------------------------------------------------------ calls

    async def _calls(self, req: Exchange, principal: Principal, rest: list[str],
                     query: dict[str, str]) -> tuple[int, Any]:
        self._method(req, ("GET",))
        if rest:
            raise NotFound(f"Unknown path {req.path[:200]!r}.")
        allowed = (*FILTERS, "limit", "before", "project")
        for key in query:
            if key not in allowed:
                raise InvalidRequest(f"Unknown query parameter '{key}'; expected one of: {', '.join(allowed)}.",
                                     param=key)
        project = query.get("project") if principal.admin else self._project(principal, query.get("project"))
        limit = _int(query.get("limit", "100"), "limit", 1, 1000)
        before: float | None = None
        if "before" in query:
            try:
                before = float(query["before"])
            except ValueError:
                raise InvalidRequest("'before' must be a Unix time in seconds.", param="before") from None
        filters = {k: v for k, v in query.items() if k in FILTERS}
        data = await self.calls.calls(project, filters, limit, before)
        return 200, {"object": "list", "data": data, "has_more": len(data) == limit}


async def mint_access_key(store: McpStore, registry: Registry, settings: McpSettings, project: str | None,
                          pack_id: object, user_id: object, ttl: object) -> dict[str, Any]:
    """A new access key for (pack, user) (admin API and CLI); ``project``: the caller's, None for the admin key.
    The pack decides the project; another project's pack or user reads as unknown."""
    if not isinstance(pack_id, str) or not pack_id:
        raise InvalidRequest("'tool_pack' is required.", param="tool_pack")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidRequest("'registered_user' is required.", param="registered_user")
    top = settings.access_key_max_ttl_s
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= top:
        raise InvalidRequest(f"'ttl_s' must be an integer number of seconds in [60, {top}] "
                             "(mcp.access_key_max_ttl_s).", param="ttl_s")
    _, packs = await registry.current()
    pack = packs.get(pack_id)
    if pack is None or (project is not None and pack.project != project):
        raise NotFound(f"Unknown tool pack {pack_id[:64]!r}.", param="tool_pack")
    if await store.user(pack.project, user_id) is None:
        raise NotFound(f"Unknown registered user {user_id[:64]!r} in project {pack.project!r}.",
                       param="registered_user")
    return await store.mint(pack.project, pack.id, user_id, ttl)


async def put_credential(store: McpStore, registry: Registry, body: dict[str, Any], project: str, user_id: str,
                         server: str) -> dict[str, Any]:
    """Store a registered user's credential for ``server`` (admin API and CLI): the server must take one of
    that kind; the answer says what is stored, never the secret."""
    servers, _ = await registry.current()
    spec = servers.get(server)
    if spec is None:
        raise NotFound(f"Unknown MCP server {server[:64]!r}.", param="server")
    if spec.per_user is None:
        raise InvalidRequest(f"MCP server {server!r} takes no per-user credential (it has no per_user).",
                             param="server")
    body.pop("project", None)
    if spec.per_user.type == "api_key":
        key = body.get("api_key")
        if set(body) != {"api_key"} or not isinstance(key, str) or not key or len(key) > 8192:
            raise InvalidRequest(f"MCP server {server!r} takes {{\"api_key\": \"...\"}} (a non-empty string).",
                                 param="oauth" if set(body) == {"oauth"} else "api_key")
        return await store.put_credential(project, user_id, server, "api_key", {"api_key": key})
    oauth = body.get("oauth")
    if set(body) != {"oauth"} or not isinstance(oauth, dict):
        raise InvalidRequest(f"MCP server {server!r} takes {{\"oauth\": {{\"access_token\", \"refresh_token\", "
                             "\"expires_in\"}}}.", param="api_key" if set(body) == {"api_key"} else "oauth")
    access = oauth.get("access_token")
    refresh = oauth.get("refresh_token")
    if not isinstance(access, str) or not access or not isinstance(refresh, str | None):
        raise InvalidRequest("'oauth.access_token' (and 'oauth.refresh_token', if given) must be strings.",
                             param="oauth.access_token")
    expires_at = oauth.get("expires_at")
    expires_in = oauth.get("expires_in")
    for name, value in (("expires_at", expires_at), ("expires_in", expires_in)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            raise InvalidRequest(f"'oauth.{name}' must be a positive number of seconds.", param=f"oauth.{name}")
    if expires_at is None and isinstance(expires_in, int | float):
        expires_at = store.clock.time() + float(expires_in)
    tokens = {"access_token": access, "refresh_token": refresh, "expires_at": expires_at,
              "token_type": "Bearer"}
    return await store.put_credential(project, user_id, server, "oauth", tokens)


def _only(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise InvalidRequest(f"Unknown field '{key}'; expected: {', '.join(allowed)}.", param=key)


def _user(project: str, user_id: str, name: str, created_at: float) -> dict[str, Any]:
    return {"object": "registered_user", "id": user_id, "project": project, "name": name, "created_at": created_at}


def _int(value: str, param: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise InvalidRequest(f"'{param}' must be an integer in [{low}, {high}].", param=param)
    return number
