"""OAuth 2 refresh for registered users' upstream tokens (RFC 6749 §6), single-flight per credential.

The failure to avoid (Bifrost #2557): a token endpoint that is briefly down must not turn into "the user's
tokens expired". So a refresh retries transient failures (connection errors, timeouts, 5xx, 429 with its
``Retry-After``), and :class:`TokenKeeper` keeps using the current access token while it is still valid
when a refresh fails for such a reason; the stored tokens are only replaced by a successful refresh and
never cleared. A permanent refusal (``invalid_grant``, ``invalid_client``, ...) is :class:`RefreshRejected`,
whose message says the user must authorize again and quotes the endpoint's error code, never a token.
Client authentication is ``client_secret_post`` (RFC 6749 §2.3.1): the id and secret as form fields.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2

log = logging.getLogger("interlock.mcp")

#: Refresh this long before the access token expires.
SKEW_S = 60.0
#: The longest ``Retry-After`` honoured between two attempts.
MAX_RETRY_AFTER_S = 2.0
#: Statuses that may pass: request timeout, too early, too many requests (and every 5xx).
TRANSIENT = (408, 425, 429)
PERMANENT = ("invalid_grant", "invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope")


@dataclass(frozen=True, slots=True)
class OAuthClient:
    token_url: str
    client_id: str
    client_secret: str | None = None
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    access_token: str
    refresh_token: str | None = None
    #: Epoch seconds; None: unknown (used until the upstream refuses it).
    expires_at: float | None = None
    token_type: str = "Bearer"

    def to_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "expires_at": self.expires_at, "token_type": self.token_type}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OAuthTokens:
        expires = data.get("expires_at")
        return cls(str(data["access_token"]), data.get("refresh_token") or None,
                   float(expires) if isinstance(expires, int | float) else None,
                   str(data.get("token_type") or "Bearer"))

    def __repr__(self) -> str:
        return f"OAuthTokens(expires_at={self.expires_at})"


class RefreshFailed(Exception):
    """A refresh did not produce a new access token."""


class RefreshUnavailable(RefreshFailed):
    """Transient: the token endpoint could not be reached or answered 5xx/429, after retries."""


class RefreshRejected(RefreshFailed):
    """Permanent: the endpoint refused the refresh token or the client; the user must authorize again."""


async def refresh(client: OAuthClient, tokens: OAuthTokens, *, http: httpx2.AsyncClient, attempts: int = 3,
                  backoff_s: float = 0.2, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                  now: Callable[[], float] = time.time) -> OAuthTokens:
    if not tokens.refresh_token:
        raise RefreshRejected("no refresh token is stored: the registered user must authorize again")
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": client.client_id}
    if client.client_secret:
        form["client_secret"] = client.client_secret
    if client.scope:
        form["scope"] = client.scope
    last = ""
    waited = False  # the endpoint's Retry-After was honoured: no backoff on top of it
    for attempt in range(attempts):
        if attempt and not waited:
            await sleep(backoff_s * 2 ** (attempt - 1))
        waited = False
        try:
            response = await http.post(client.token_url, data=form, headers={"accept": "application/json"})
        except httpx2.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"[:200]
            continue
        if response.status_code in TRANSIENT or response.status_code >= 500:
            last = f"HTTP {response.status_code}"
            wait = _retry_after(response.headers.get("retry-after"))
            if wait is not None and attempt + 1 < attempts:
                await sleep(wait)
                waited = True
            continue
        return _parse(response, tokens, now(), secrets=(tokens.refresh_token, tokens.access_token,
                                                        client.client_secret))
    raise RefreshUnavailable(f"the token endpoint did not answer after {attempts} attempts ({last})")


def _parse(response: httpx2.Response, tokens: OAuthTokens, at: float,
           secrets: tuple[str | None, ...] = ()) -> OAuthTokens:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        code = body.get("error") if isinstance(body, dict) else None
        description = body.get("error_description") if isinstance(body, dict) else None
        detail = f"{code}" + (f": {_redacted(str(description)[:200], secrets)}" if description else "") \
            if code else f"HTTP {response.status_code}"
        raise RefreshRejected(f"the token endpoint refused the refresh ({detail}): the registered user must "
                              "authorize again")
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise RefreshRejected("the token endpoint answered without an access_token: the registered user must "
                              "authorize again")
    expires_in = body.get("expires_in")
    expires_at = at + float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else None
    # RFC 6749 §6: the server may issue a new refresh token; without one, the old one stays valid.
    refresh_token = body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None
    return OAuthTokens(body["access_token"], refresh_token or tokens.refresh_token, expires_at,
                       str(body.get("token_type") or "Bearer"))


def _redacted(text: str, secrets: tuple[str | None, ...]) -> str:
    """An endpoint's error text without our own secrets, should it quote them."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None


class TokenKeeper:
    """A valid access token per credential, refreshing at most once at a time per credential."""

    def __init__(self, http: httpx2.AsyncClient | None = None, *, skew_s: float = SKEW_S,
                 now: Callable[[], float] = time.time, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
                 ) -> None:
        self._http = http
        self.skew_s = skew_s
        self.now = now
        self.sleep = sleep
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._stale: set[Hashable] = set()

    def invalidate(self, key: Hashable) -> None:
        """The upstream refused the token we believed valid: refresh on the next use."""
        self._stale.add(key)

    async def access_token(self, key: Hashable, client: OAuthClient,
                           load: Callable[[], Awaitable[OAuthTokens | None]],
                           save: Callable[[OAuthTokens], Awaitable[None]]) -> str:
        tokens = await load()
        if tokens is None:
            raise RefreshRejected("no OAuth tokens are stored for this registered user and server")
        if not self._due(key, tokens):
            return tokens.access_token
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            # Whoever held the lock may have refreshed already: read again.
            tokens = await load()
            if tokens is None:
                raise RefreshRejected("no OAuth tokens are stored for this registered user and server")
            if not self._due(key, tokens):
                return tokens.access_token
            try:
                fresh = await refresh(client, tokens, http=self._client(), sleep=self.sleep, now=self.now)
            except RefreshUnavailable:
                if key not in self._stale and tokens.expires_at is not None and self.now() < tokens.expires_at:
                    log.warning("OAuth refresh at %s failed transiently; the current token is still valid and "
                                "stays in use", client.token_url)
                    return tokens.access_token
                raise
            await save(fresh)
            self._stale.discard(key)
            return fresh.access_token

    def _due(self, key: Hashable, tokens: OAuthTokens) -> bool:
        if key in self._stale:
            return True
        return tokens.expires_at is not None and self.now() >= tokens.expires_at - self.skew_s

    def _client(self) -> httpx2.AsyncClient:
        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=httpx2.Timeout(10.0))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
