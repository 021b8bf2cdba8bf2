"""Google service-account credentials → OAuth access tokens, for Vertex AI.

The service account's key signs a JWT (RS256) that is exchanged at the
account's ``token_uri`` for an access token (RFC 7523, the "JWT bearer" grant:
https://developers.google.com/identity/protocols/oauth2/service-account#httprest).
Tokens live an hour. The hot path must never wait for one once the first
exists: a token is refreshed in the background when less than
``refresh_before`` seconds remain, and only a token that is about to expire
(or none at all) makes a request wait - and then every waiting request shares
one exchange.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from interlock.core.errors import UpstreamError
from interlock.core.vendor import Timeouts
from interlock.vendors.transport import Transport

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_LIFETIME = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_service_account(path: str) -> dict[str, Any]:
    """The service-account JSON, checked for the fields the exchange needs."""
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError) as exc:
        raise UpstreamError(f"cannot read the Vertex AI service account file {path!r}: {exc}",
                            code="upstream_auth_error") from None
    missing = [k for k in ("client_email", "private_key") if not isinstance(info.get(k), str)]
    if missing:
        raise UpstreamError(f"the service account file {path!r} lacks {', '.join(missing)}", code="upstream_auth_error")
    return dict(info)


class ServiceAccountTokens:
    """Access tokens for one service account, cached and refreshed ahead of expiry."""

    def __init__(self, info: Mapping[str, Any], transport: Transport, *, timeouts: Timeouts | None = None,
                 refresh_before: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        key = serialization.load_pem_private_key(str(info["private_key"]).encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise UpstreamError("the service account key is not an RSA key", code="upstream_auth_error")
        self._key = key
        self._email = str(info["client_email"])
        self._key_id = info.get("private_key_id")
        self.token_uri = str(info.get("token_uri") or "https://oauth2.googleapis.com/token")
        self._transport = transport
        self._timeouts = timeouts or Timeouts(connect=10, first_byte=30, idle=30, total=60)
        self._refresh_before = refresh_before
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._pending: asyncio.Task[None] | None = None
        self.exchanges = 0

    def assertion(self, now: int) -> str:
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
        if isinstance(self._key_id, str):
            header["kid"] = self._key_id
        claims = {"iss": self._email, "scope": SCOPE, "aud": self.token_uri, "iat": now, "exp": now + _LIFETIME}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    async def token(self) -> str:
        remaining = self._expires_at - self._clock()
        if self._token is not None and remaining > 60:
            if remaining < self._refresh_before and self._pending is None:
                self._pending = asyncio.ensure_future(self._refresh())
                self._pending.add_done_callback(self._refreshed)
            return self._token
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._refresh())
            self._pending.add_done_callback(self._refreshed)
        await asyncio.shield(self._pending)
        assert self._token is not None
        return self._token

    async def auth_headers(self) -> dict[str, str]:
        """The request headers that carry the token."""
        return {"authorization": f"Bearer {await self.token()}"}

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._pending = None
        if not task.cancelled():
            # Retrieved so a failed *background* refresh is not reported as unhandled: the current
            # token stays in use and the next request tries again. A waiting request gets the error.
            task.exception()

    async def _refresh(self) -> None:
        now = int(self._clock())
        body = urlencode({"grant_type": GRANT, "assertion": self.assertion(now)}).encode()
        resp = await self._transport.request("POST", self.token_uri,
                                             {"content-type": "application/x-www-form-urlencoded"}, body,
                                             self._timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise UpstreamError(f"Google refused the Vertex AI service account (HTTP {resp.status}): "
                                f"{raw[:200].decode('utf-8', 'replace')}", code="upstream_auth_error")
        try:
            data = orjson.loads(raw)
            token = str(data["access_token"])
            lifetime = float(data.get("expires_in", _LIFETIME))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise UpstreamError("Google's token endpoint sent an unreadable answer", code="upstream_auth_error") from None
        self.exchanges += 1
        self._token = token
        self._expires_at = now + lifetime
