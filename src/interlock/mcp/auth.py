"""Who calls the MCP endpoint, for which tool pack and registered user.

The URL names a pack and a registered user; the bearer key decides whether the caller may act for them:
the admin key (any pack), a project key (its own project's packs and users only: another project's read as
unknown, never as forbidden, so their ids do not leak), or an access key minted for exactly that
(pack, user) pair (``ik-mcp-...``), so an agent's host holding it cannot swap the user id in the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from interlock.core.errors import AuthenticationFailed, NotFound, PermissionDenied
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.governance.auth import Authenticator
from interlock.mcp.model import AccessGrant, PackSpec, RegisteredUser, ServerSpec
from interlock.mcp.settings import McpSettings

#: What an access key starts with (``mcp/store.py`` mints them).
ACCESS_KEY_PREFIX = "ik-mcp-"


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    pack: PackSpec
    #: The registered user's id (in ``pack.project``).
    user: str
    #: The key's id for the call log (a project key's id, an access key's id, or the admin key's prefix).
    key_id: str
    #: Arguments and results may be logged: the project's log level is ``full`` and no zero data retention.
    content: bool = False

    @property
    def project(self) -> str:
        return self.pack.project


class Directory(Protocol):
    """What the endpoint reads of the MCP store (``mcp/store.McpStore``)."""

    async def user(self, project: str, user_id: str) -> RegisteredUser | None: ...

    async def grant(self, key: str) -> AccessGrant | None: ...

    async def definitions(self) -> tuple[dict[str, ServerSpec], dict[str, PackSpec]]: ...


class Registry:
    """Servers and packs: the config's, then the admin API's (a config id wins: it cannot be shadowed)."""

    def __init__(self, settings: McpSettings, directory: Directory) -> None:
        self.settings = settings
        self.directory = directory

    async def current(self) -> tuple[Mapping[str, ServerSpec], Mapping[str, PackSpec]]:
        servers, packs = await self.directory.definitions()
        if not servers and not packs:
            return self.settings.servers, self.settings.packs
        return {**servers, **self.settings.servers}, {**packs, **self.settings.packs}


class McpAuth:
    def __init__(self, auth: Authenticator, registry: Registry, directory: Directory,
                 content_for: Callable[[Principal], bool], clock: Callable[[], float]) -> None:
        self.auth = auth
        self.registry = registry
        self.directory = directory
        self.content_for = content_for
        self.clock = clock

    async def caller(self, ex: Exchange, pack_id: str, user_id: str) -> Caller:
        key = _bearer(ex.header("authorization")) or (ex.header("x-api-key") or "").strip()
        if key.startswith(ACCESS_KEY_PREFIX):
            return await self._granted(key, pack_id, user_id)
        principal = self.auth.authenticate(ex.header("authorization"), ex.header("x-api-key"))
        return await self.for_principal(principal, pack_id, user_id)

    async def for_principal(self, principal: Principal, pack_id: str, user_id: str) -> Caller:
        """The caller a project or admin key makes for (pack, user): the endpoint's, and the Responses loop's."""
        _, packs = await self.registry.current()
        pack = packs.get(pack_id)
        if pack is None or (not principal.admin and principal.project != pack.project):
            raise NotFound(f"Unknown tool pack {pack_id[:64]!r}.", param="tool_pack", code="unknown_tool_pack")
        if await self.directory.user(pack.project, user_id) is None:
            raise NotFound(f"Unknown registered user {user_id[:64]!r} in project {pack.project!r}: create it with "
                           "POST /admin/v1/mcp/registered-users.", param="registered_user",
                           code="unknown_registered_user")
        if principal.admin:
            acting = self.auth.delegated(pack.project, principal.key_prefix, principal.key_prefix)
            principal = acting or Principal("admin", principal.key_prefix, pack.project)
        key_id = principal.key_id or principal.key_prefix
        return Caller(principal, pack, user_id, key_id, self.content_for(principal))

    async def _granted(self, key: str, pack_id: str, user_id: str) -> Caller:
        grant = await self.directory.grant(key)
        if grant is None:
            raise AuthenticationFailed("Unknown MCP access key.", code="invalid_api_key")
        if grant.revoked:
            raise AuthenticationFailed(f"The MCP access key {grant.id} was revoked.", code="revoked_api_key")
        if self.clock() >= grant.expires_at:
            raise AuthenticationFailed(f"The MCP access key {grant.id} has expired; mint a new one with "
                                       "POST /admin/v1/mcp/access-keys.", code="expired_api_key")
        if grant.pack != pack_id or grant.user != user_id:
            raise PermissionDenied(f"The MCP access key {grant.id} is for tool pack {grant.pack!r} and registered "
                                   f"user {grant.user!r} only.", code="access_key_scope")
        _, packs = await self.registry.current()
        pack = packs.get(pack_id)
        if pack is None or pack.project != grant.project:
            raise NotFound(f"Unknown tool pack {pack_id[:64]!r}.", param="tool_pack", code="unknown_tool_pack")
        if await self.directory.user(pack.project, user_id) is None:
            raise NotFound(f"Unknown registered user {user_id[:64]!r}.", param="registered_user",
                           code="unknown_registered_user")
        prefix = key[:12]
        principal = (self.auth.delegated(grant.project, prefix, grant.id)
                     or Principal("project", prefix, grant.project, grant.id))
        return Caller(principal, pack, user_id, grant.id, self.content_for(principal))


def _bearer(authorization: str | None) -> str:
    if not authorization:
        return ""
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""
