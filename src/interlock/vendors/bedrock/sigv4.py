"""AWS Signature Version 4 for request headers, implemented here so Bedrock needs no AWS SDK.

Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html,
checked against AWS's published SigV4 test-suite vectors (tests/test_vendor_sigv4.py).

The path signed must be the path as it goes on the wire - the URL's path as
written (a Bedrock model id's ``:`` is sent as ``%3A``); the canonical URI
then percent-encodes it once more, as AWS does for every service but S3. The
derived signing key is cached per (secret, date, region, service): it changes
once a day, and deriving it is four HMACs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from yarl import URL

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


_KEYS: dict[tuple[str, str, str, str], bytes] = {}


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    cache_key = (secret, date, region, service)
    key = _KEYS.get(cache_key)
    if key is None:
        k = _hmac(("AWS4" + secret).encode("utf-8"), date)
        k = _hmac(k, region)
        k = _hmac(k, service)
        key = _hmac(k, "aws4_request")
        if len(_KEYS) > 64:
            _KEYS.clear()
        _KEYS[cache_key] = key
    return key


def _uri_encode(text: str, *, slash: bool) -> str:
    return quote(text, safe="-_.~/" if slash else "-_.~")


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((_uri_encode(unquote(name), slash=False), _uri_encode(unquote(value), slash=False)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      payload_hash: str) -> tuple[str, str]:
    """(canonical request, signed header names) - ``headers`` are the ones to sign."""
    items = sorted((k.lower().strip(), " ".join(str(v).split())) for k, v in headers.items())
    signed = ";".join(k for k, _ in items)
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in items)
    uri = _uri_encode(path or "/", slash=True)
    return "\n".join((method.upper(), uri, canonical_query(query), canonical_headers, signed, payload_hash)), signed


def signature(creds: Credentials, method: str, path: str, query: str, headers: Mapping[str, str],
              payload_hash: str, amz_date: str, region: str, service: str) -> tuple[str, str]:
    """(hex signature, signed header names) for a request whose ``headers`` include host and x-amz-date."""
    creq, signed = canonical_request(method, path, query, headers, payload_hash)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode("utf-8")).hexdigest()))
    key = signing_key(creds.secret_access_key, amz_date[:8], region, service)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest(), signed


def sign_headers(creds: Credentials, method: str, url: str, body: bytes, region: str, service: str,
                 headers: Mapping[str, str], now: datetime | None = None) -> dict[str, str]:
    """``headers`` plus x-amz-date, x-amz-content-sha256, the session token and Authorization (Host is signed)."""
    parsed = URL(url)
    amz_date = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    payload_hash = hashlib.sha256(body).hexdigest()
    # The Host header aiohttp will send: the port only when it is not the scheme's default.
    host = parsed.raw_host or ""
    if parsed.explicit_port and parsed.port != {"http": 80, "https": 443}.get(parsed.scheme):
        host = f"{host}:{parsed.port}"
    signed_headers = {k.lower(): v for k, v in headers.items()}
    signed_headers.update({"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
    if creds.session_token:
        signed_headers["x-amz-security-token"] = creds.session_token
    # The path exactly as written in the URL: that is what aiohttp puts on the request line.
    rest = url.split("://", 1)[-1]
    path, _, query = ("/" + rest.split("/", 1)[1] if "/" in rest else "/").partition("?")
    sig, names = signature(creds, method, path, query, signed_headers, payload_hash, amz_date, region, service)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    # Signed, but not sent by us: the HTTP client writes Host itself (a second one is a 400).
    out = {k: v for k, v in signed_headers.items() if k != "host"}
    out["authorization"] = (f"{ALGORITHM} Credential={creds.access_key_id}/{scope}, SignedHeaders={names}, "
                            f"Signature={sig}")
    return out
