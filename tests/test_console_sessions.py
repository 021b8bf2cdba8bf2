"""Console sessions over the governance store, on SQLite and PostgreSQL, with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from interlock.console.limits import AddressLimiter
from interlock.console.sessions import CACHE_SECONDS, Sessions, read_cookie
from interlock.console.signin import safe_next
from interlock.core.errors import AuthenticationFailed
from interlock.governance.auth import Authenticator, MasterKey, digest
from interlock.governance.model import ApiKey, Definitions, Project
from interlock.governance.store import GovStore, PostgresGovStore, SQLiteGovStore
from tests.fake_clock import FakeClock

SECRET = b"test-secret"
ADMIN = "ik-admin-test-key"
PROJECT_KEY = "ik-project-test-key"


class Cookie:
    """An exchange that carries only a cookie header."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def header(self, name: str) -> str | None:
        return f"interlock_session={self.token}" if name == "cookie" and self.token else None


def definitions(revoked: float | None = None) -> Definitions:
    key = ApiKey("key_1", "alpha", "console", PROJECT_KEY[:12], digest(SECRET, PROJECT_KEY), revoked_at=revoked)
    return Definitions.build(2, [Project("alpha", "Alpha")], [key], [], [])


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GovStore]:
    gov: GovStore
    if request.param == "sqlite":
        gov = SQLiteGovStore(tmp_path / "interlock.db")
    else:
        gov = PostgresGovStore(request.getfixturevalue("pg_url"))
    await gov.version()  # migrated
    yield gov
    await gov.close()


def authenticator(clock: FakeClock) -> Authenticator:
    auth = Authenticator(SECRET, MasterKey(digest(SECRET, ADMIN), ADMIN[:12], None, "test"), clock=clock)
    auth.load(definitions())
    return auth


async def test_a_session_resolves_until_it_expires(store: GovStore) -> None:
    clock = FakeClock()
    sessions = Sessions(store, authenticator(clock), hours=1, clock=clock)
    token, session = await sessions.start(ADMIN)
    assert session.principal.admin and session.who.startswith("admin (")
    rows = await store.fetch("SELECT token_digest, key_digest FROM console_sessions")
    # Neither the cookie token nor the key is stored.
    assert rows and token not in rows[0] and ADMIN not in str(rows)
    resolved = await sessions.resolve(Cookie(token))  # type: ignore[arg-type]
    assert resolved is not None and resolved.csrf == session.csrf
    assert await sessions.resolve(Cookie("forged")) is None  # type: ignore[arg-type]
    assert await sessions.resolve(Cookie(None)) is None  # type: ignore[arg-type]
    clock.advance(3600)
    assert await sessions.resolve(Cookie(token)) is None  # type: ignore[arg-type]


async def test_sign_out_is_immediate_here_and_bounded_elsewhere(store: GovStore) -> None:
    clock = FakeClock()
    auth = authenticator(clock)
    here = Sessions(store, auth, hours=1, clock=clock)
    other = Sessions(store, auth, hours=1, clock=clock)  # another worker
    token, session = await here.start(PROJECT_KEY)
    assert session.principal.project == "alpha" and session.who.startswith("alpha (")
    assert await other.resolve(Cookie(token)) is not None  # type: ignore[arg-type]
    await here.end(session)
    assert await here.resolve(Cookie(token)) is None  # type: ignore[arg-type]
    clock.advance(CACHE_SECONDS)
    assert await other.resolve(Cookie(token)) is None  # type: ignore[arg-type]


async def test_a_revoked_key_ends_its_sessions(store: GovStore) -> None:
    clock = FakeClock()
    auth = authenticator(clock)
    sessions = Sessions(store, auth, hours=1, clock=clock)
    token, _ = await sessions.start(PROJECT_KEY)
    auth.load(definitions(revoked=clock.time()))
    assert await sessions.resolve(Cookie(token)) is None  # type: ignore[arg-type]


async def test_a_wrong_key_starts_no_session(store: GovStore) -> None:
    clock = FakeClock()
    sessions = Sessions(store, authenticator(clock), hours=1, clock=clock)
    with pytest.raises(AuthenticationFailed, match="Incorrect API key"):
        await sessions.start("ik-wrong-key-000000")
    assert await store.fetch("SELECT token_digest FROM console_sessions") == []


def test_safe_next_refuses_other_hosts() -> None:
    for hostile in ("//evil.com", "https://evil", "/\\evil", "\\\\evil", "javascript:x", "/a\r\nb", "", "evil"):
        assert safe_next(hostile) == "/console/playground", hostile
    assert safe_next("/models?lab=openai") == "/models?lab=openai"


def test_failure_limiter_counts_per_address_in_a_window() -> None:
    clock = FakeClock()
    limiter = AddressLimiter(2, 60, clock)
    limiter.add("a")
    assert limiter.retry_after("a") is None
    limiter.add("a")
    assert limiter.retry_after("a") is not None and limiter.retry_after("b") is None
    clock.advance(61)
    assert limiter.retry_after("a") is None


def test_malformed_cookie_headers_read_as_none() -> None:
    class Raw:
        def header(self, name: str) -> str | None:
            return 'interlock_session="unterminated; x' if name == "cookie" else None

    read_cookie(Raw(), "interlock_session")  # type: ignore[arg-type]  # no exception, whatever it reads
