"""With whose credentials a call reaches an upstream: the server's static ones, plus the registered user's.

A server with ``per_user`` gets the user's own API key (a header, or a stdio child's environment variable)
or OAuth access token (refreshed by ``oauth.TokenKeeper`` shortly before it expires; a transient refresh
failure leaves the stored tokens alone). The result is an :class:`~interlock.mcp.upstream.Access`, whose
fingerprint keys the upstream session: one user's credential never serves another's call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from interlock.mcp.auth import Caller
from interlock.mcp.model import Credential, ServerSpec
from interlock.mcp.oauth import OAuthTokens, RefreshRejected, RefreshUnavailable, TokenKeeper
from interlock.mcp.upstream import Access


class CredentialProblem(Exception):
    """The registered user's credential is missing, of the wrong kind, or could not be refreshed.

    ``transient``: a refresh failed for a reason that may pass (the token endpoint is down); else the user
    must supply or authorize again. ``code`` is the error type clients see."""

    def __init__(self, message: str, code: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


class CredentialStore(Protocol):
    async def credential(self, project: str, user_id: str, server: str) -> Credential | None: ...

    async def save_oauth_tokens(self, project: str, user_id: str, server: str,
                                tokens: Mapping[str, Any]) -> None: ...


class Credentials:
    def __init__(self, store: CredentialStore, tokens: TokenKeeper) -> None:
        self.store = store
        self.tokens = tokens

    async def access(self, spec: ServerSpec, caller: Caller) -> Access:
        per_user = spec.per_user
        if per_user is None:
            return Access(spec.headers, spec.env)
        project, user, server = caller.project, caller.user, spec.name
        credential = await self.store.credential(project, user, server)
        where = f"PUT /admin/v1/mcp/registered-users/{user}/credentials/{server}"
        if credential is None:
            raise CredentialProblem(f"registered user {user!r} has no credential for MCP server {server!r} "
                                    f"(set one with {where})", "credential_missing")
        if credential.kind != per_user.type:
            raise CredentialProblem(f"MCP server {server!r} takes a per-user {per_user.type} credential; registered "
                                    f"user {user!r} has a {credential.kind} one ({where})", "credential_mismatch")
        headers = dict(spec.headers)
        env = dict(spec.env)
        if per_user.type == "api_key":
            value = credential.api_key or ""
            if per_user.env:
                env[per_user.env] = value
            else:
                headers[per_user.header] = per_user.prefix + value
            return Access(headers, env)
        client = per_user.oauth
        assert client is not None  # parse_server requires it for type oauth

        async def load() -> OAuthTokens | None:
            stored = await self.store.credential(project, user, server)
            return OAuthTokens.from_json(stored.oauth) if stored is not None and stored.oauth else None

        async def save(tokens: OAuthTokens) -> None:
            await self.store.save_oauth_tokens(project, user, server, tokens.to_json())

        try:
            token = await self.tokens.access_token((project, user, server), client, load, save)
        except RefreshRejected as exc:
            raise CredentialProblem(str(exc), "credential_rejected") from None
        except RefreshUnavailable as exc:
            raise CredentialProblem(f"could not refresh registered user {user!r}'s OAuth token for MCP server "
                                    f"{server!r}, try again: {exc}", "credential_refresh_unavailable",
                                    transient=True) from None
        headers[per_user.header] = "Bearer " + token
        return Access(headers, env)
