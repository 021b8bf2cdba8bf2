"""CSRF protection for the console's state-changing requests.

Three checks, all needed to pass:

* the browser's own word: a ``Sec-Fetch-Site`` other than ``same-origin``/``none``,
  or an ``Origin`` whose host is not the one the request was sent to, is refused;
* a synchronizer token bound to the session (its random ``csrf`` secret, kept
  server-side), sent as the ``csrf_token`` form field or the ``X-CSRF-Token`` header;
* before a session exists (the sign-in form), a signed double-submit token: a random
  ``interlock_signin`` cookie and, in the form, its HMAC under the server secret,
  so another site cannot sign a browser in to its own key (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from interlock.core.exchange import Exchange

FIELD = "csrf_token"
HEADER = "x-csrf-token"
SIGNIN_COOKIE = "interlock_signin"


def cross_site(req: Exchange) -> str | None:
    """Why this request looks like it came from another site, or None."""
    site = (req.header("sec-fetch-site") or "").strip().lower()
    if site and site not in ("same-origin", "none"):
        return f"the browser marked it Sec-Fetch-Site: {site[:32]}"
    origin = req.header("origin")
    if origin is not None:
        netloc = urlsplit(origin.strip()).netloc.lower() if origin.strip() != "null" else "null"
        if netloc != (req.header("host") or "").strip().lower():
            return f"its Origin ({origin[:100]}) is not this gateway"
    return None


def same(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


class SigninTokens:
    """The sign-in form's token: HMAC of the pre-session cookie's random nonce under the server secret."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    @staticmethod
    def nonce() -> str:
        return secrets.token_urlsafe(24)

    def token(self, nonce: str) -> str:
        return hmac.new(self.secret, b"console-signin:" + nonce.encode(), hashlib.sha256).hexdigest()

    def check(self, nonce: str | None, presented: str | None) -> bool:
        return nonce is not None and same(self.token(nonce), presented)
