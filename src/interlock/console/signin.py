"""Signing in and out of the console: ``/console/signin`` (GET form, POST key) and ``POST /console/signout``.

The key is posted once, checked by the authenticator and turned into a server-side
session (:mod:`interlock.console.sessions`); the browser keeps only the session
cookie. Failed attempts are limited per client address (:class:`~interlock.console.limits.AddressLimiter`).
Every POST passes the CSRF checks of :mod:`interlock.console.csrf`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from jinja2 import Environment

from interlock.console.csrf import FIELD, SIGNIN_COOKIE, SigninTokens, cross_site, same
from interlock.console.limits import AddressLimiter
from interlock.console.sessions import COOKIE, Session, Sessions, read_cookie, set_cookie
from interlock.console.web import redirect, send_page
from interlock.core.errors import GatewayError
from interlock.core.exchange import Exchange

SIGNIN = "/console/signin"
HOME = "/console/playground"
_FORM_LIMIT = 16 * 1024
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(value: str | None) -> str:
    """A same-site path to return to after sign-in; anything else (``//evil``, ``https://...``) is the home."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return HOME
    if _UNSAFE.search(value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return HOME
    return value


def signin_url(next_path: str) -> str:
    return f"{SIGNIN}?next={quote(next_path, safe='/')}"


def viewer(session: Session | None) -> dict[str, Any]:
    """The template values of the header's sign-in part."""
    if session is None:
        return {"viewer": None, "csrf": ""}
    return {"viewer": session.who, "csrf": session.csrf}


async def read_form(req: Exchange) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body, first value of each field; None for another type."""
    kind = (req.header("content-type") or "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = await req.body(_FORM_LIMIT)
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


class SignIn:
    """The sign-in page, its POST and sign-out."""

    def __init__(self, env: Environment, sessions: Sessions, tokens: SigninTokens,
                 limiter: AddressLimiter) -> None:
        self.env = env
        self.sessions = sessions
        self.tokens = tokens
        self.limiter = limiter

    def _form(self, req: Exchange, status: int, next_path: str, error: str = "",
              headers: list[tuple[str, str]] | None = None) -> None:
        nonce = read_cookie(req, SIGNIN_COOKIE) or self.tokens.nonce()
        cookie = set_cookie(req, SIGNIN_COOKIE, nonce, 3600)
        send_page(req, self.env, status, "signin.html",
                  {"title": "Sign in", "active": "signin", "next": next_path, "error": error,
                   "token": self.tokens.token(nonce), **viewer(None)}, [cookie, *(headers or [])])

    def refuse(self, req: Exchange, status: int, title: str, message: str) -> None:
        send_page(req, self.env, status, "error.html", {"title": title, "message": message, "active": ""})

    async def route(self, req: Exchange) -> None:
        """``/console/signin``: the form (GET, HEAD) or the key (POST)."""
        if req.method == "POST":
            await self.submit(req)
        else:
            await self.page(req)

    async def page(self, req: Exchange) -> None:
        next_path = safe_next(parse_qs(req.query).get("next", [""])[0])
        if await self.sessions.resolve(req) is not None:
            redirect(req, next_path)
            return
        self._form(req, 200, next_path)

    async def submit(self, req: Exchange) -> None:
        if (why := cross_site(req)) is not None:
            self.refuse(req, 403, "Cross-site request refused", f"This sign-in was refused: {why}.")
            return
        client = req.client_host
        wait = self.limiter.retry_after(client)
        if wait is not None:
            send_page(req, self.env, 429, "error.html",
                      {"title": "Too many attempts", "active": "",
                       "message": f"Too many failed sign-ins from this address; try again in {wait} s."},
                      [("retry-after", str(wait))])
            return
        form = await read_form(req)
        if form is None:
            self.refuse(req, 415, "Unsupported form encoding",
                        "Send the sign-in form as application/x-www-form-urlencoded.")
            return
        next_path = safe_next(form.get("next"))
        if not self.tokens.check(read_cookie(req, SIGNIN_COOKIE), form.get(FIELD)):
            self.refuse(req, 403, "Sign-in form expired",
                        f"The form's CSRF token ('{FIELD}') is missing or does not match this browser's "
                        "sign-in cookie. Reload the sign-in page and try again.")
            return
        key = form.get("key", "").strip()
        if not key:
            self._form(req, 400, next_path, "Enter a key in the 'key' field: the admin key or a project key.")
            return
        try:
            token, session = await self.sessions.start(key)
        except GatewayError:
            self.limiter.add(client)
            self._form(req, 401, next_path, "The key in the 'key' field was not accepted.")
            return
        lifetime = round(session.expires_at - self.sessions.clock.time())
        redirect(req, next_path, [set_cookie(req, COOKIE, token, lifetime), set_cookie(req, SIGNIN_COOKIE, "", 0)])

    async def signout(self, req: Exchange) -> None:
        if (why := cross_site(req)) is not None:
            self.refuse(req, 403, "Cross-site request refused", f"This sign-out was refused: {why}.")
            return
        session = await self.sessions.resolve(req)
        if session is None:
            redirect(req, SIGNIN, [set_cookie(req, COOKIE, "", 0)])
            return
        form = await read_form(req) or {}
        if not same(session.csrf, form.get(FIELD)):
            self.refuse(req, 403, "Missing CSRF token",
                        f"Sign-out needs the form's CSRF token ('{FIELD}'); it is missing or invalid.")
            return
        await self.sessions.end(session)
        redirect(req, SIGNIN, [set_cookie(req, COOKIE, "", 0)])
