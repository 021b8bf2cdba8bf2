"""Who is calling: the admin (master) key and, later, project keys.

Keys are never stored: only an HMAC-SHA256 digest under a server secret, so a
copy of the state directory does not leak working keys. Comparison is in
constant time. The admin key comes from ``INTERLOCK_MASTER_KEY`` or is
generated once, stored as a digest and printed once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from interlock.errors import AuthenticationFailed
from interlock.ledger.store import SQLiteStore

MASTER_META = "master_key_digest"
MASTER_PREFIX_META = "master_key_prefix"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "admin" (project keys arrive with governance)
    key_prefix: str


def server_secret(state_dir: Path, environ: Mapping[str, str]) -> bytes:
    """The HMAC secret: ``INTERLOCK_SECRET``, else a random one kept in the state directory."""
    env = environ.get("INTERLOCK_SECRET")
    if env:
        return env.encode()
    path = state_dir / "secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, value)
        finally:
            os.close(fd)
        return value
    except FileExistsError:
        return path.read_bytes()


def digest(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def visible_prefix(key: str) -> str:
    return key[:12]


@dataclass(frozen=True, slots=True)
class MasterKey:
    digest: str
    prefix: str
    #: The plaintext, only when it was generated just now (to print it once).
    generated: str | None
    source: str


def ensure_master_key(store: SQLiteStore, secret: bytes, environ: Mapping[str, str]) -> MasterKey:
    env = environ.get("INTERLOCK_MASTER_KEY")
    if env:
        return MasterKey(digest(secret, env), visible_prefix(env), None, "INTERLOCK_MASTER_KEY")
    stored = store.get_meta(MASTER_META)
    if stored is not None:
        return MasterKey(stored, store.get_meta(MASTER_PREFIX_META) or "ik-admin-", None, "state directory")
    key = "ik-admin-" + secrets.token_urlsafe(32)
    store.set_meta(MASTER_META, digest(secret, key))
    store.set_meta(MASTER_PREFIX_META, visible_prefix(key))
    return MasterKey(digest(secret, key), visible_prefix(key), key, "generated")


def reset_master_key(store: SQLiteStore, secret: bytes) -> str:
    key = "ik-admin-" + secrets.token_urlsafe(32)
    store.set_meta(MASTER_META, digest(secret, key))
    store.set_meta(MASTER_PREFIX_META, visible_prefix(key))
    return key


class Authenticator:
    __slots__ = ("_admin", "_master_digest", "_secret")

    def __init__(self, secret: bytes, master: MasterKey) -> None:
        self._secret = secret
        self._master_digest = master.digest.encode()
        self._admin = Principal("admin", master.prefix)

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        key: str | None = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                key = value.strip()
        if key is None and api_key:
            key = api_key.strip()
        if not key:
            raise AuthenticationFailed(
                "Missing API key: send 'Authorization: Bearer <key>' (or 'x-api-key: <key>'). The admin key is "
                "INTERLOCK_MASTER_KEY or the one printed when the gateway first started.", code="missing_api_key")
        presented = hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(presented, self._master_digest):
            return self._admin
        raise AuthenticationFailed(f"Incorrect API key provided: {_redact(key)}.")


def _redact(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return key[:6] + "*" * 8 + key[-4:]
