"""OAuth refresh against a real token endpoint: retries, permanent refusals, single flight, and the tokens
kept through a transient failure (the failure mode of Bifrost #2557)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from aiohttp import web

from interlock.mcp.oauth import (
    OAuthClient,
    OAuthTokens,
    RefreshRejected,
    RefreshUnavailable,
    TokenKeeper,
    refresh,
)


class Endpoint:
    """Answers scripted per test (``script``: list of (status, body, headers)); the last repeats."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, dict[str, str]]] = [(200, {"access_token": "new", "expires_in": 3600,
                                                                    "refresh_token": "r2"}, {})]
        self.forms: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.forms.append(dict(await request.post()))  # type: ignore[arg-type]
        status, body, headers = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        await asyncio.sleep(0.01)
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
    async with httpx2.AsyncClient() as client:
        yield client


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


OLD = OAuthTokens("old-access", "r1", time.time() + 3600)


async def test_refresh_sends_the_grant_and_keeps_or_rotates_the_refresh_token(endpoint: Endpoint,
                                                                              http: httpx2.AsyncClient) -> None:
    client = OAuthClient(endpoint.url, "cid", "csecret", "tools")
    fresh = await refresh(client, OLD, http=http, now=lambda: 1000.0)
    assert endpoint.forms[0] == {"grant_type": "refresh_token", "refresh_token": "r1", "client_id": "cid",
                                 "client_secret": "csecret", "scope": "tools"}
    assert (fresh.access_token, fresh.refresh_token, fresh.expires_at) == ("new", "r2", 4600.0)
    endpoint.script = [(200, {"access_token": "newer"}, {})]
    assert (await refresh(client, fresh, http=http)).refresh_token == "r2"  # none issued: the old one stays


async def test_transient_failures_are_retried_then_reported(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    client = OAuthClient(endpoint.url, "cid")
    sleeps = Sleeps()
    endpoint.script = [(503, {}, {}), (429, {}, {"retry-after": "30"}), (200, {"access_token": "ok"}, {})]
    assert (await refresh(client, OLD, http=http, sleep=sleeps, attempts=3)).access_token == "ok"
    assert sleeps.waits == [0.2, 2.0, 0.4]  # backoff, the capped Retry-After, backoff
    endpoint.script = [(502, {}, {})]
    with pytest.raises(RefreshUnavailable, match="HTTP 502"):
        await refresh(client, OLD, http=http, sleep=Sleeps())
    with pytest.raises(RefreshUnavailable):
        await refresh(OAuthClient("http://127.0.0.1:1/token", "cid"), OLD, http=http, sleep=Sleeps())


@pytest.mark.parametrize(("status", "body", "needle"), [
    (400, {"error": "invalid_grant", "error_description": "the refresh token was revoked"}, "invalid_grant"),
    (401, {"error": "invalid_client"}, "invalid_client"),
    (200, "{not json", "without an access_token"),
    (200, {"token_type": "Bearer"}, "without an access_token"),
])
async def test_permanent_refusals_say_authorize_again(endpoint: Endpoint, http: httpx2.AsyncClient, status: int,
                                                      body: Any, needle: str) -> None:
    endpoint.script = [(status, body, {})]
    with pytest.raises(RefreshRejected) as info:
        await refresh(OAuthClient(endpoint.url, "cid"), OLD, http=http)
    message = str(info.value)
    assert needle in message and "authorize again" in message
    assert "r1" not in message and "old-access" not in message
    assert "old-access" not in repr(OLD)


class Stored:
    def __init__(self, tokens: OAuthTokens) -> None:
        self.tokens = tokens
        self.saved: list[OAuthTokens] = []

    async def load(self) -> OAuthTokens | None:
        return self.tokens

    async def save(self, tokens: OAuthTokens) -> None:
        self.saved.append(tokens)
        self.tokens = tokens


async def test_keeper_refreshes_once_for_many_callers(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    keeper = TokenKeeper(http)
    client = OAuthClient(endpoint.url, "cid")
    valid = Stored(OAuthTokens("valid", "r1", time.time() + 3600))
    assert await keeper.access_token("k1", client, valid.load, valid.save) == "valid"
    assert endpoint.forms == []  # far from expiry: no request at all
    due = Stored(OAuthTokens("due", "r1", time.time() + 10))
    tokens = await asyncio.gather(*(keeper.access_token("k2", client, due.load, due.save) for _ in range(20)))
    assert set(tokens) == {"new"} and len(endpoint.forms) == 1 and len(due.saved) == 1
    keeper.invalidate("k1")  # the upstream refused "valid": refresh on the next use
    assert await keeper.access_token("k1", client, valid.load, valid.save) == "new"


async def test_a_transient_failure_never_discards_tokens(endpoint: Endpoint, http: httpx2.AsyncClient) -> None:
    keeper = TokenKeeper(http, sleep=Sleeps())
    client = OAuthClient(endpoint.url, "cid")
    endpoint.script = [(503, {}, {})]
    # Due for refresh but still valid: the current token goes on working, nothing is saved.
    soon = Stored(OAuthTokens("still-good", "r1", time.time() + 30))
    assert await keeper.access_token("k", client, soon.load, soon.save) == "still-good"
    assert soon.saved == []
    # Already expired: the call cannot go on, and the stored tokens stay as they were.
    expired = Stored(OAuthTokens("expired", "r1", time.time() - 5))
    with pytest.raises(RefreshUnavailable):
        await keeper.access_token("k", client, expired.load, expired.save)
    assert expired.saved == [] and expired.tokens.refresh_token == "r1"
    # The endpoint is back: the same refresh token works.
    endpoint.script = [(200, {"access_token": "back"}, {})]
    assert await keeper.access_token("k", client, expired.load, expired.save) == "back"
    with pytest.raises(RefreshRejected, match="no OAuth tokens"):
        await keeper.access_token("none", client, _nothing, expired.save)


async def _nothing() -> OAuthTokens | None:
    return None
