"""What the MCP gateway serves, as data: upstream servers, tool packs, registered users, access grants.

Servers and packs come from the ``mcp:`` section of the config (``mcp/settings.py``) and from the admin API
(stored in the governance database, ``mcp/store.py``); both are parsed by the same functions here, so a pack
created over HTTP is checked exactly like one in the YAML. Errors are :class:`SpecError` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from interlock.configfile import is_header_name, unsafe_header_value
from interlock.mcp.oauth import OAuthClient

#: A server or pack id: it appears in URLs and in namespaced tool names.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: A tool name clients and every model vendor accept (OpenAI's function-name rule).
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Joins a server and a tool name when two servers of a pack expose the same name.
NAMESPACE_SEP = "__"


class SpecError(ValueError):
    """A server or pack definition is wrong; ``key`` is the dotted path of the offending field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class PerUser:
    """How a registered user's own credential reaches the upstream.

    ``type: api_key``: the stored key goes in ``header`` (after ``prefix``) or, for a stdio server, in the
    child's environment variable ``env``. ``type: oauth``: the stored access token goes in ``header`` as a
    bearer token, refreshed through ``oauth`` when it is about to expire.
    """

    type: str  # "api_key" | "oauth"
    header: str = "Authorization"
    prefix: str = "Bearer "
    env: str | None = None
    oauth: OAuthClient | None = None


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    transport: str
    url: str | None = None
    command: tuple[str, ...] = ()
    #: Static credentials: request headers (HTTP) or environment variables (stdio), the same for every user.
    headers: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    #: One tool call, from sending it to its result.
    timeout_s: float = 30.0
    #: Connecting, initialize and tools/list.
    connect_timeout_s: float = 10.0
    per_user: PerUser | None = None
    #: Where it was defined: "config" or "admin".
    source: str = "config"

    def public(self) -> dict[str, Any]:
        """The definition as the admin API lists it: header and env values are never shown."""
        out: dict[str, Any] = {"name": self.name, "transport": self.transport, "timeout_s": self.timeout_s,
                               "connect_timeout_s": self.connect_timeout_s, "source": self.source}
        if self.url is not None:
            out["url"] = self.url
        if self.command:
            out["command"] = list(self.command)
        if self.headers:
            out["headers"] = sorted(self.headers)
        if self.env:
            out["env"] = sorted(self.env)
        if self.per_user is not None:
            pu: dict[str, Any] = {"type": self.per_user.type}
            if self.per_user.oauth is not None:
                pu["token_url"] = self.per_user.oauth.token_url
                pu["client_id"] = self.per_user.oauth.client_id
            if self.per_user.env:
                pu["env"] = self.per_user.env
            else:
                pu["header"] = self.per_user.header
            out["per_user"] = pu
        return out


@dataclass(frozen=True, slots=True)
class PackSpec:
    id: str
    project: str
    #: ``server/tool`` or ``server/*``, in order.
    tools: tuple[str, ...]
    #: ``server/tool`` → the name the pack exposes.
    rename: Mapping[str, str] = field(default_factory=dict)
    #: ``server/tool`` → the description the pack exposes.
    describe: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = "config"

    def servers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.split("/", 1)[0] for p in self.tools))

    def allows(self, server: str, tool: str) -> bool:
        return f"{server}/{tool}" in self.tools or f"{server}/*" in self.tools

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "project": self.project, "tools": list(self.tools), "rename": dict(self.rename),
                "describe": dict(self.describe), "description": self.description, "source": self.source}


@dataclass(frozen=True, slots=True)
class RegisteredUser:
    project: str
    id: str
    name: str = ""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """A short-lived access key: one (pack, registered user) pair of one project."""

    id: str
    project: str
    pack: str
    user: str
    expires_at: float
    revoked: bool = False


# ------------------------------------------------------------------ parsing (config and admin API alike)

def _mapping(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(key, f"must be a mapping, not {type(value).__name__}")
    return value


def _only(data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    for name in data:
        if name not in allowed:
            raise SpecError(f"{key}.{name}" if key else str(name),
                            f"unknown key; allowed: {', '.join(allowed)}")


def _text(data: Mapping[str, Any], name: str, key: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise SpecError(f"{key}.{name}" if key else name, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{key}.{name}" if key else name, "must be a non-empty string")
    return value


def _number(data: Mapping[str, Any], name: str, key: str, default: float, maximum: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise SpecError(f"{key}.{name}" if key else name, f"must be a number of seconds in (0, {maximum:g}]")
    return float(value)


def _string_map(data: Mapping[str, Any], name: str, key: str, *, headers: bool) -> dict[str, str]:
    raw = data.get(name)
    if raw is None:
        return {}
    where = f"{key}.{name}" if key else name
    out: dict[str, str] = {}
    for k, v in _mapping(raw, where).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise SpecError(f"{where}.{k}", "names and values must be strings")
        if headers and (not is_header_name(k) or unsafe_header_value(v)):
            raise SpecError(f"{where}.{k}", "is not a valid HTTP header (name or value)")
        out[k] = v
    return out


def check_id(value: object, key: str, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise SpecError(key, f"a {what} id is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return value


def check_url(url: str, key: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(key, "must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise SpecError(key, "must not carry credentials; use headers")
    return url


def parse_server(name: str, data: object, *, source: str = "config", key: str = "") -> ServerSpec:
    check_id(name, key or "name", "server")
    spec = _mapping(data, key or "server")
    _only(spec, key, ("url", "transport", "command", "env", "cwd", "headers", "timeout_s", "connect_timeout_s",
                      "per_user"))
    url = _text(spec, "url", key)
    command_raw = spec.get("command")
    if (url is None) == (command_raw is None):
        raise SpecError(key or "server", "give exactly one of url (an HTTP server) or command (a stdio server)")
    command: tuple[str, ...] = ()
    if command_raw is not None:
        if (not isinstance(command_raw, list) or not command_raw
                or not all(isinstance(c, str) and c for c in command_raw)):
            raise SpecError(f"{key}.command" if key else "command", "must be a non-empty list of strings")
        command = tuple(command_raw)
        transport = "stdio"
        if spec.get("transport", "stdio") != "stdio":
            raise SpecError(f"{key}.transport" if key else "transport", "a command server's transport is stdio")
        if "headers" in spec:
            raise SpecError(f"{key}.headers" if key else "headers", "a stdio server takes env, not headers")
    else:
        assert url is not None
        check_url(url, f"{key}.url" if key else "url")
        transport = spec.get("transport", "streamable_http")
        if transport not in ("streamable_http", "sse"):
            raise SpecError(f"{key}.transport" if key else "transport", "must be streamable_http or sse")
        for k in ("env", "cwd"):
            if k in spec:
                raise SpecError(f"{key}.{k}" if key else k, "applies to stdio (command) servers only")
    per_user = _per_user(spec.get("per_user"), f"{key}.per_user" if key else "per_user", transport)
    return ServerSpec(
        name=name, transport=transport, url=url, command=command,
        headers=_string_map(spec, "headers", key, headers=True), env=_string_map(spec, "env", key, headers=False),
        cwd=_text(spec, "cwd", key), timeout_s=_number(spec, "timeout_s", key, 30.0, 3600.0),
        connect_timeout_s=_number(spec, "connect_timeout_s", key, 10.0, 300.0), per_user=per_user, source=source)


def _per_user(raw: object, key: str, transport: str) -> PerUser | None:
    if raw is None:
        return None
    data = _mapping(raw, key)
    kind = data.get("type")
    if kind == "api_key":
        _only(data, key, ("type", "header", "prefix", "env"))
        env = _text(data, "env", key)
        if transport == "stdio" and env is None:
            raise SpecError(f"{key}.env", "a stdio server receives a user's key in an environment variable: name it")
        header = _text(data, "header", key) or "Authorization"
        if not is_header_name(header):
            raise SpecError(f"{key}.header", "is not a valid HTTP header name")
        prefix = data.get("prefix", "Bearer " if header.lower() == "authorization" else "")
        if not isinstance(prefix, str) or unsafe_header_value(prefix):
            raise SpecError(f"{key}.prefix", "must be a string without control characters")
        return PerUser("api_key", header=header, prefix=prefix, env=env)
    if kind == "oauth":
        if transport == "stdio":
            raise SpecError(f"{key}.type", "OAuth applies to HTTP servers")
        _only(data, key, ("type", "token_url", "client_id", "client_secret", "scope"))
        token_url = check_url(_text(data, "token_url", key, required=True) or "", f"{key}.token_url")
        client_id = _text(data, "client_id", key, required=True) or ""
        return PerUser("oauth", oauth=OAuthClient(token_url, client_id, _text(data, "client_secret", key),
                                                _text(data, "scope", key)))
    raise SpecError(f"{key}.type", "must be api_key or oauth")


def parse_pack(pack_id: str, data: object, servers: Mapping[str, ServerSpec], *, source: str = "config",
               key: str = "") -> PackSpec:
    check_id(pack_id, key or "id", "tool pack")
    spec = _mapping(data, key or "tool_pack")
    _only(spec, key, ("project", "tools", "rename", "describe", "description"))
    project = _text(spec, "project", key, required=True) or ""
    tools_raw = spec.get("tools")
    tkey = f"{key}.tools" if key else "tools"
    if not isinstance(tools_raw, list) or not tools_raw:
        raise SpecError(tkey, "must be a non-empty list of 'server/tool' or 'server/*'")
    tools: list[str] = []
    for i, pattern in enumerate(tools_raw):
        if not isinstance(pattern, str) or pattern.count("/") != 1:
            raise SpecError(f"{tkey}[{i}]", "must be 'server/tool' or 'server/*'")
        server, tool = pattern.split("/")
        if server not in servers:
            raise SpecError(f"{tkey}[{i}]", f"names an unknown server {server!r}; known: "
                            f"{', '.join(sorted(servers)) or 'none'}")
        if not tool:
            raise SpecError(f"{tkey}[{i}]", "names no tool")
        tools.append(pattern)
    rename = _string_map(spec, "rename", key, headers=False)
    for source_name, new in rename.items():
        if source_name not in tools and f"{source_name.split('/', 1)[0]}/*" not in tools:
            raise SpecError(f"{key}.rename.{source_name}" if key else f"rename.{source_name}",
                            "renames a tool the pack does not include")
        if not TOOL_NAME_RE.match(new):
            raise SpecError(f"{key}.rename.{source_name}" if key else f"rename.{source_name}",
                            "a tool name is 1-64 letters, digits, '_' or '-'")
    describe = _string_map(spec, "describe", key, headers=False)
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{key}.description" if key else "description", "must be a string")
    return PackSpec(pack_id, project, tuple(tools), rename, describe, description, source)


@dataclass(frozen=True, slots=True)
class Credential:
    """A registered user's credential for one server, decrypted (``mcp/store.py`` keeps it sealed at rest).

    ``kind``: ``api_key`` (``api_key`` set) or ``oauth`` (``oauth``: the token JSON of ``mcp/oauth.OAuthTokens``).
    Never logged, never returned by an API: :meth:`__repr__` shows neither.
    """

    kind: str
    api_key: str | None = None
    oauth: Mapping[str, Any] | None = None
    updated_at: float = 0.0

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind!r}, updated_at={self.updated_at})"


@dataclass(slots=True)
class ToolCall:
    """One tools/call through the gateway: the call log's record (``mcp_calls``).

    ``arguments`` and ``result`` are JSON text, kept only when the project's log level is ``full`` and never
    under zero data retention (the endpoint leaves them None otherwise).
    """

    id: str
    at: float
    project: str
    key_id: str
    pack: str
    user: str
    server: str
    tool: str
    #: The name the pack exposes (after a rename or namespacing).
    name: str
    duration_ms: float = 0.0
    #: ok | error (the tool reported isError) | timeout | upstream_error | blocked | rate_limited | denied
    status: str = "ok"
    error: str | None = None
    args_bytes: int = 0
    result_bytes: int = 0
    arguments: str | None = None
    result: str | None = None
    #: Guardrail detections (detector, action, entity counts; never text), as for the request log.
    guardrails: list[dict[str, Any]] | None = None
