"""OAuth refresh and TokenKeeper against a real token endpoint (an aiohttp app on 127.0.0.1, scripted per test)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from aiohttp import web

from interlock.mcp.oauth import (
    MAX_RETRY_AFTER_S,
    OAuthClient,
    OAuthTokens,
    RefreshRejected,
    RefreshUnavailable,
    TokenKeeper,
    refresh,
)

NOW = 1_000_000.0
SECRET = "client-secret-xyz"


@dataclass
class Endpoint:
    """The token endpoint: answers from ``script`` in order (the last answer repeats), records every form."""

    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    delay: float = 0.0
    url: str = ""

    def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.script.append((status, body, headers or {}))

    async def handle(self, request: web.Request) -> web.Response:
        self.forms.append({k: str(v) for k, v in (await request.post()).items()})
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body, headers = self.script[min(len(self.forms) - 1, len(self.script) - 1)]
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers, content_type="application/json")
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint()
    app = web.Application()
    app.router.add_post("/token", ep.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ep.url = f"http://127.0.0.1:{port}/token"
    yield ep
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    client = httpx2.AsyncClient(timeout=httpx2.Timeout(5.0))
    yield client
    await client.aclose()


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(ep: Endpoint) -> OAuthClient:
    return OAuthClient(ep.url, "client-1", SECRET)


OLD = OAuthTokens("old-access-AAA", "old-refresh-RRR", NOW + 3600)


async def test_success_posts_the_refresh_form_and_computes_expires_at(endpoint: Endpoint,
                                                                      http: httpx2.AsyncClient) -> None:
    endpoint.answer(200, {"access_token": "new-access", "expires_in": 3600, "token_type": "bearer"})
    fresh = await refresh(client_for(endpoint), OLD, http=http, now=lambda: NOW)
    assert endpoint.forms == [{"grant_type": "refresh_token", "refresh_token": "old-refresh-RRR",
                               "client_id": "client-1", "client_secret": SECRET}]
    assert fresh.access_token == "new-access"
    assert fresh.expires_at == NOW + 3600
    assert fresh.token_type == "bearer"
    # No refresh_token in the answer: the old one stays valid (RFC 6749 §6).
    assert fresh.refresh_token == "old-refresh-RRR"


async def test_a_rotated_refresh_token_is_kept(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(200, {"access_token": "new-access", "refresh_token": "rotated-refresh", "expires_in": 60})
    fresh = await refresh(client_for(endpoint), OLD, http=http, now=lambda: NOW)
    assert fresh.refresh_token == "rotated-refresh"
    assert fresh.expires_at == NOW + 60


async def test_5xx_is_retried_with_exponential_backoff(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(503, {"error": "down"})
    endpoint.answer(503, {"error": "down"})
    endpoint.answer(200, {"access_token": "third-time"})
    sleeps = Sleeps()
    fresh = await refresh(client_for(endpoint), OLD, http=http, sleep=sleeps, backoff_s=0.2, now=lambda: NOW)
    assert fresh.access_token == "third-time"
    assert fresh.expires_at is None  # no expires_in: unknown
    assert len(endpoint.forms) == 3
    assert sleeps.waits == [0.2, 0.4]


async def test_429_retry_after_is_honoured_and_capped(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(429, {}, {"Retry-After": "1"})
    endpoint.answer(429, {}, {"Retry-After": "120"})
    endpoint.answer(200, {"access_token": "ok"})
    sleeps = Sleeps()
    fresh = await refresh(client_for(endpoint), OLD, http=http, sleep=sleeps, backoff_s=0.2)
    assert fresh.access_token == "ok"
    # Retry-After (1, then 120 capped) instead of the backoff, never both.
    assert sleeps.waits == [1.0, MAX_RETRY_AFTER_S]


async def test_5xx_every_time_is_unavailable(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(502, {})
    with pytest.raises(RefreshUnavailable, match="HTTP 502"):
        await refresh(client_for(endpoint), OLD, http=http, sleep=Sleeps(), attempts=3)
    assert len(endpoint.forms) == 3


async def test_invalid_grant_is_rejected_without_leaking_tokens(endpoint: Endpoint,
                                                                http: httpx2.AsyncClient) -> None:
    endpoint.answer(400, {"error": "invalid_grant", "error_description": "refresh token revoked"})
    with pytest.raises(RefreshRejected) as info:
        await refresh(client_for(endpoint), OLD, http=http, sleep=Sleeps())
    message = str(info.value)
    assert "invalid_grant" in message and "refresh token revoked" in message
    assert "authorize again" in message
    for secret in ("old-refresh-RRR", "old-access-AAA", SECRET):
        assert secret not in message
    assert len(endpoint.forms) == 1  # a permanent refusal is not retried


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_connection_refused_is_unavailable(http: httpx2.AsyncClient) -> None:
    client = OAuthClient(f"http://127.0.0.1:{_closed_port()}/token", "client-1", SECRET)
    sleeps = Sleeps()
    with pytest.raises(RefreshUnavailable, match="3 attempts"):
        await refresh(client, OLD, http=http, sleep=sleeps)
    assert sleeps.waits == [0.2, 0.4]


@pytest.mark.parametrize("body", ["{not json", {"token_type": "Bearer"}, {"access_token": ""}, ["x"]])
async def test_200_without_a_usable_access_token_is_rejected(endpoint: Endpoint, http: httpx2.AsyncClient,
                                                             body: Any) -> None:
    endpoint.answer(200, body)
    with pytest.raises(RefreshRejected, match="without an access_token"):
        await refresh(client_for(endpoint), OLD, http=http, sleep=Sleeps())


async def test_no_refresh_token_is_rejected_without_a_post(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    with pytest.raises(RefreshRejected):
        await refresh(client_for(endpoint), OAuthTokens("a"), http=http)
    assert endpoint.forms == []


def test_repr_shows_no_token() -> None:
    text = repr(OAuthTokens("access-secret-1", "refresh-secret-2", 5.0))
    assert "access-secret-1" not in text and "refresh-secret-2" not in text
    assert "5.0" in text


# ------------------------------------------------------------------------------------------ TokenKeeper


class Vault:
    """The stored tokens of one credential: ``load``/``save`` as the keeper expects."""

    def __init__(self, tokens: OAuthTokens | None) -> None:
        self.tokens = tokens
        self.saved: list[OAuthTokens] = []

    async def load(self) -> OAuthTokens | None:
        return self.tokens

    async def save(self, tokens: OAuthTokens) -> None:
        self.saved.append(tokens)
        self.tokens = tokens


def keeper(http: httpx2.AsyncClient, at: float = NOW) -> TokenKeeper:
    return TokenKeeper(http, now=lambda: at, sleep=Sleeps())


async def test_a_token_far_from_expiry_is_used_without_a_post(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    vault = Vault(OLD)
    token = await keeper(http).access_token("k", client_for(endpoint), vault.load, vault.save)
    assert token == "old-access-AAA"
    assert endpoint.forms == [] and vault.saved == []


async def test_near_expiry_refreshes_once_and_saves(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(200, {"access_token": "fresh", "refresh_token": "fresh-refresh", "expires_in": 3600})
    vault = Vault(OAuthTokens("old-access-AAA", "old-refresh-RRR", NOW + 30))  # inside the 60 s skew
    k = keeper(http)
    assert await k.access_token("k", client_for(endpoint), vault.load, vault.save) == "fresh"
    assert vault.saved == [OAuthTokens("fresh", "fresh-refresh", NOW + 3600, "Bearer")]
    assert await k.access_token("k", client_for(endpoint), vault.load, vault.save) == "fresh"
    assert len(endpoint.forms) == 1


async def test_concurrent_callers_share_one_refresh(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.delay = 0.1
    endpoint.answer(200, {"access_token": "fresh", "expires_in": 3600})
    vault = Vault(OAuthTokens("old-access-AAA", "old-refresh-RRR", NOW - 1))
    k = keeper(http)
    tokens = await asyncio.gather(*(k.access_token("k", client_for(endpoint), vault.load, vault.save)
                                    for _ in range(20)))
    assert tokens == ["fresh"] * 20
    assert len(endpoint.forms) == 1
    assert len(vault.saved) == 1


async def test_transient_failure_keeps_a_still_valid_token(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    """Bifrost #2557: the endpoint briefly down must not become "the user's tokens expired"."""
    endpoint.answer(503, {})
    vault = Vault(OAuthTokens("old-access-AAA", "old-refresh-RRR", NOW + 30))
    token = await keeper(http).access_token("k", client_for(endpoint), vault.load, vault.save)
    assert token == "old-access-AAA"
    assert len(endpoint.forms) == 3  # it did try
    assert vault.saved == []
    assert vault.tokens == OAuthTokens("old-access-AAA", "old-refresh-RRR", NOW + 30)


async def test_transient_failure_with_an_expired_token_raises(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(503, {})
    vault = Vault(OAuthTokens("old-access-AAA", "old-refresh-RRR", NOW - 1))
    with pytest.raises(RefreshUnavailable):
        await keeper(http).access_token("k", client_for(endpoint), vault.load, vault.save)
    assert vault.saved == []


async def test_rejection_is_raised_and_nothing_is_saved(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(400, {"error": "invalid_grant"})
    vault = Vault(OAuthTokens("old-access-AAA", "old-refresh-RRR", NOW - 1))
    with pytest.raises(RefreshRejected, match="invalid_grant"):
        await keeper(http).access_token("k", client_for(endpoint), vault.load, vault.save)
    assert vault.saved == []


async def test_invalidate_forces_a_refresh(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(200, {"access_token": "after-invalidate", "expires_in": 3600})
    vault = Vault(OLD)
    k = keeper(http)
    assert await k.access_token("k", client_for(endpoint), vault.load, vault.save) == "old-access-AAA"
    assert endpoint.forms == []
    k.invalidate("k")
    assert await k.access_token("k", client_for(endpoint), vault.load, vault.save) == "after-invalidate"
    assert len(endpoint.forms) == 1 and len(vault.saved) == 1
    # Refreshed: no longer stale.
    assert await k.access_token("k", client_for(endpoint), vault.load, vault.save) == "after-invalidate"
    assert len(endpoint.forms) == 1


async def test_invalidated_token_is_not_reused_on_transient_failure(endpoint: Endpoint,
                                                                    http: httpx2.AsyncClient) -> None:
    endpoint.answer(503, {})
    vault = Vault(OLD)
    k = keeper(http)
    k.invalidate("k")  # the upstream refused it: returning it again would fail the same way
    with pytest.raises(RefreshUnavailable):
        await k.access_token("k", client_for(endpoint), vault.load, vault.save)
    assert vault.saved == []


async def test_no_stored_tokens_is_rejected(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    vault = Vault(None)
    with pytest.raises(RefreshRejected):
        await keeper(http).access_token("k", client_for(endpoint), vault.load, vault.save)


def test_tokens_json_round_trip() -> None:
    tokens = OAuthTokens("a", "r", NOW, "Bearer")
    assert OAuthTokens.from_json(tokens.to_json()) == tokens
    assert OAuthTokens.from_json({"access_token": "a", "expires_at": "soon"}).expires_at is None


async def test_an_error_description_never_echoes_our_secrets(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    endpoint.answer(400, {"error": "invalid_grant", "error_description": f"token {OLD.refresh_token} is revoked"})
    with pytest.raises(RefreshRejected) as info:
        await refresh(client_for(endpoint), OLD, http=http)
    assert "[redacted]" in str(info.value) and str(OLD.refresh_token) not in str(info.value)
