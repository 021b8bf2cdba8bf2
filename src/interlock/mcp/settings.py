"""The ``mcp:`` section: upstream MCP servers, tool packs and the endpoint's options.

.. code-block:: yaml

    mcp:
      servers:
        weather: {command: [python, weather_server.py]}                 # stdio, a child process
        docs:
          url: "http://127.0.0.1:9000/mcp"                               # streamable HTTP (transport: sse: legacy)
          headers: {Authorization: "Bearer ${DOCS_TOKEN}"}               # static credentials
          timeout_s: 30                                                  # one tool call
          per_user: {type: api_key}                                      # or {type: oauth, token_url, client_id, ...}
      tool_packs:
        support: {project: acme, tools: ["weather/*", "docs/search"], rename: {"docs/search": "search_docs"}}
      stateless: auto           # true: no MCP sessions (any worker or replica answers any request); auto: true
                                # with several workers, whose sessions would live in one of them
      access_key_max_ttl_s: 86400
      max_tool_rounds: 8        # /v1/responses with mcp tools: model rounds at most
      allowed_server_urls: []   # /v1/responses: external server_url prefixes a request may name

Strings in ``headers``, ``env`` and ``per_user.client_secret`` expand ``${VAR}`` from the environment (a missing
variable is an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from interlock.config import Settings
from interlock.configfile import MissingEnv, Section, expand_env
from interlock.mcp.model import PackSpec, ServerSpec, SpecError, check_url, parse_pack, parse_server

KEYS = ("servers", "tool_packs", "stateless", "access_key_max_ttl_s", "max_tool_rounds", "allowed_server_urls")


@dataclass(frozen=True, slots=True)
class McpSettings:
    servers: Mapping[str, ServerSpec] = field(default_factory=dict)
    packs: Mapping[str, PackSpec] = field(default_factory=dict)
    #: None (``auto``): stateless exactly when several workers serve (``server.workers``).
    stateless: bool | None = None
    access_key_max_ttl_s: int = 86400
    max_tool_rounds: int = 8
    allowed_server_urls: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> McpSettings:
        section = settings.section("mcp")
        section.only(*KEYS)
        servers: dict[str, ServerSpec] = {}
        group = section.section("servers")
        for name in group.names():
            raw = _expanded(group, name)
            try:
                servers[name] = parse_server(name, raw)
            except SpecError as exc:
                raise group.section(name).error(exc.message, exc.key.split(".")[0] or None) from None
        packs: dict[str, PackSpec] = {}
        group = section.section("tool_packs")
        for name in group.names():
            try:
                packs[name] = parse_pack(name, group.raw(name), servers)
            except SpecError as exc:
                raise group.section(name).error(exc.message, exc.key.split(".")[0] or None) from None
        urls = section.raw("allowed_server_urls", [])
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise section.error("expected a list of URL prefixes", "allowed_server_urls")
        for i, url in enumerate(urls):
            try:
                check_url(url, "allowed_server_urls")
            except SpecError as exc:
                raise section.section("allowed_server_urls").error(exc.message, i) from None
        stateless: bool | None = None
        if section.raw("stateless", "auto") != "auto":
            stateless = section.boolean("stateless", False)
        return cls(servers=servers, packs=packs, stateless=stateless,
                   access_key_max_ttl_s=section.integer("access_key_max_ttl_s", 86400, minimum=60),
                   max_tool_rounds=section.integer("max_tool_rounds", 8, minimum=1),
                   allowed_server_urls=tuple(urls))


def _expanded(group: Section, name: str) -> Any:
    """A server's raw mapping with ``${VAR}`` expanded in its header and env values and its OAuth client
    secret (the guide's ``client_secret: "${CALENDAR_CLIENT_SECRET}"``)."""
    raw = group.raw(name)
    if not isinstance(raw, dict):
        return raw
    out = dict(raw)
    for key in ("headers", "env"):
        values = raw.get(key)
        if isinstance(values, dict):
            expanded: dict[Any, Any] = {}
            for k, v in values.items():
                try:
                    expanded[k] = expand_env(v, group.environ) if isinstance(v, str) else v
                except MissingEnv as exc:
                    raise group.section(name).section(key).error(
                        f"environment variable {exc.name} is not set", k) from None
            out[key] = expanded
    per_user = raw.get("per_user")
    if isinstance(per_user, dict) and isinstance(per_user.get("client_secret"), str):
        try:
            out["per_user"] = {**per_user, "client_secret": expand_env(per_user["client_secret"], group.environ)}
        except MissingEnv as exc:
            raise group.section(name).section("per_user").error(
                f"environment variable {exc.name} is not set", "client_secret") from None
    return out
