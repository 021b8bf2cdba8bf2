"""Console sessions: a random cookie token, kept server-side in the governance store.

The browser holds only ``interlock_session`` = ``secrets.token_urlsafe(32)``;
the ``console_sessions`` table (``governance/schema.py``, SQLite or PostgreSQL,
so every worker and replica shares it) keeps that token's SHA-256, the HMAC
digest of the key that signed in (never the key), the session's CSRF secret and
its expiry. Each use re-resolves the caller from the key digest against the
live key table (:meth:`Authenticator.authenticate_digest`), so revoking or
expiring the key ends its sessions. Rows read from the store are cached in this
process for :data:`CACHE_SECONDS`; signing out drops the row and this process's
cache entry at once, so another worker may honour a signed-out cookie for at
most that long.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.errors import GatewayError
from interlock.core.exchange import Exchange
from interlock.core.principal import Principal
from interlock.governance.auth import Authenticator
from interlock.governance.store import GovStore

COOKIE = "interlock_session"
#: How long a session row read from the store is trusted in this process (seconds).
CACHE_SECONDS = 5.0
_CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class Row:
    key_digest: str
    csrf: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who it is (resolved now), its CSRF token and when it ends."""

    token_digest: str
    principal: Principal
    csrf: str
    expires_at: float

    @property
    def who(self) -> str:
        """How the header names the caller: ``admin`` or the project, with the key's prefix."""
        name = "admin" if self.principal.admin else (self.principal.project or "project")
        return f"{name} ({self.principal.key_prefix}…)"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def over_tls(req: Exchange) -> bool:
    """Whether the browser reached us over HTTPS: TLS here, or a TLS-terminating proxy says so in
    x-forwarded-proto."""
    return req.tls or (req.header("x-forwarded-proto") or "").split(",")[0].strip().lower() == "https"


def read_cookie(req: Exchange, name: str) -> str | None:
    raw = req.header("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


def set_cookie(req: Exchange, name: str, value: str, max_age: int) -> tuple[str, str]:
    """A ``set-cookie`` header: HttpOnly, SameSite=Strict, Path=/, Max-Age, Secure over TLS (0 clears it)."""
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    morsel["max-age"] = max_age
    if over_tls(req):
        morsel["secure"] = True
    return "set-cookie", morsel.OutputString()


class Sessions:
    """Creates, resolves and ends console sessions over the governance store."""

    def __init__(self, store: GovStore, auth: Authenticator, hours: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.auth = auth
        self.lifetime = hours * 3600.0
        self.clock = clock
        #: token digest -> (row, monotonic time it was read).
        self._cache: dict[str, tuple[Row, float]] = {}

    async def start(self, key: str) -> tuple[str, Session]:
        """Sign in with ``key`` (raises the authenticator's 401/403); returns the cookie token and session."""
        principal = self.auth.authenticate(f"Bearer {key}", None)
        token = secrets.token_urlsafe(32)
        now = self.clock.time()
        row = Row(self.auth.digest(key), secrets.token_urlsafe(32), now + self.lifetime)
        digest = token_digest(token)
        await self.store.transaction([(
            "INSERT INTO console_sessions (token_digest, key_digest, csrf, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)", (digest, row.key_digest, row.csrf, now, row.expires_at))])
        await self._purge(now)
        return token, Session(digest, principal, row.csrf, row.expires_at)

    async def resolve(self, req: Exchange) -> Session | None:
        """The request's session, or None (no cookie, unknown, expired, or its key no longer valid)."""
        token = read_cookie(req, COOKIE)
        if token is None or len(token) > 128:
            return None
        digest = token_digest(token)
        row = await self._row(digest)
        if row is None or self.clock.time() >= row.expires_at:
            return None
        try:
            principal = self.auth.authenticate_digest(row.key_digest)
        except GatewayError:
            return None
        return Session(digest, principal, row.csrf, row.expires_at)

    async def end(self, session: Session) -> None:
        """Sign out: the row is deleted, so the cookie is refused from now on (here at once)."""
        self._cache.pop(session.token_digest, None)
        await self.store.transaction([("DELETE FROM console_sessions WHERE token_digest = ?",
                                       (session.token_digest,))])

    async def _row(self, digest: str) -> Row | None:
        now = self.clock.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return cached[0]
        rows = await self.store.fetch("SELECT key_digest, csrf, expires_at FROM console_sessions "
                                      "WHERE token_digest = ?", (digest,))
        if not rows:
            self._cache.pop(digest, None)
            return None
        row = Row(str(rows[0][0]), str(rows[0][1]), float(rows[0][2]))
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (row, now)
        return row

    async def _purge(self, now: float) -> None:
        await self.store.transaction([("DELETE FROM console_sessions WHERE expires_at <= ?", (now,))])
