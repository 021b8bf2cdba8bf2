"""Who is calling: the admin (master) key and project keys.

Keys are never stored: only an HMAC-SHA256 digest under a server secret, so a
copy of the state directory does not leak working keys. A presented key is
looked up by its digest in an in-memory table (the hot path never waits on
SQL), then compared with :func:`hmac.compare_digest`. The admin key comes from
``INTERLOCK_MASTER_KEY`` or is generated once, stored as a digest and printed
once. Project keys (``ik-`` + 32 random bytes) are loaded from the governance
store at start and replaced whenever the definitions change
(:meth:`Authenticator.load`, called by the governance poller).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.errors import AuthenticationFailed, PermissionDenied
from interlock.core.principal import Principal
from interlock.core.regions import RegionRule
from interlock.governance.model import ApiKey, Definitions
from interlock.guardrails.settings import GuardrailConfig, ProjectGuardrails

MASTER_META = "master_key_digest"
MASTER_PREFIX_META = "master_key_prefix"


KEY_PREFIX = "ik-"


def new_key() -> str:
    """A project key: ``ik-`` + 32 random bytes, URL-safe base64 (shown once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


SECRET_META = "secret_verifier"


class SecretMismatch(Exception):
    """The governance store was set up under another key-hashing secret."""


def secret_verifier(secret: bytes) -> str:
    """What the store keeps of the secret: an HMAC of a fixed text under it (it does not reveal the secret)."""
    return hmac.new(secret, b"interlock key-hashing secret verifier v1", hashlib.sha256).hexdigest()


async def check_secret(store: GovStoreLike, secret: bytes, where: str) -> None:
    """Refuse a secret other than the one the store's keys were hashed under (recorded by the first start).

    Two replicas with different secrets would each refuse the other's keys with a bare 401; this says why.
    """
    stored = await store.meta(SECRET_META, secret_verifier(secret))
    if not hmac.compare_digest(stored, secret_verifier(secret)):
        raise SecretMismatch(
            f"the governance store {where} was set up with another key-hashing secret: keys created by the "
            "other replicas would be refused (401). Give every replica that shares this store the same "
            "INTERLOCK_SECRET - the value the first one used (or its state directory's 'secret' file).")


class GovStoreLike(Protocol):
    async def meta(self, key: str, default: str) -> str: ...


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


class MetaStore(Protocol):
    """Where the admin key's digest is kept: the state directory's database (``ledger.store.SQLiteStore``)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


def ensure_master_key(store: MetaStore, secret: bytes, environ: Mapping[str, str]) -> MasterKey:
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


def reset_master_key(store: MetaStore, secret: bytes) -> str:
    key = "ik-admin-" + secrets.token_urlsafe(32)
    store.set_meta(MASTER_META, digest(secret, key))
    store.set_meta(MASTER_PREFIX_META, visible_prefix(key))
    return key


_DIGEST_CACHE = 4096


class Authenticator:
    __slots__ = ("_admin", "_admin_as", "_clock", "_digests", "_guardrails", "_keys", "_mac", "_master_digest",
                 "_projects", "_secret")

    def __init__(self, secret: bytes, master: MasterKey, clock: Clock = SYSTEM_CLOCK,
                 guardrails: GuardrailConfig | None = None) -> None:
        self._secret = secret
        self._clock = clock
        #: The config's per-project guardrail entries, combined with each project's own on load.
        self._guardrails = guardrails or GuardrailConfig()
        #: HMAC-SHA256 keyed with the secret and nothing hashed yet: a copy per request skips the key setup.
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)
        self._master_digest = master.digest.encode()
        self._admin = Principal("admin", master.prefix)
        #: digest (hex, bytes) -> (key, its principal per project it may name).
        self._keys: dict[bytes, tuple[ApiKey, dict[str, Principal]]] = {}
        self._admin_as: dict[str, Principal] = {}
        self._projects: frozenset[str] = frozenset()
        #: Digests of keys recently accepted, so a returning caller skips the HMAC (a few µs). Only
        #: keys that matched are remembered (random guesses cannot grow it) and it is bounded; the
        #: verdict itself (revoked, expired, project) is still taken from the live table every time.
        self._digests: dict[str, bytes] = {}

    def digest(self, key: str) -> str:
        return digest(self._secret, key)

    def load(self, defs: Definitions) -> None:
        """Replace the project-key table (one reference swap: requests in flight see old or new, never half)."""
        keys: dict[bytes, tuple[ApiKey, dict[str, Principal]]] = {}
        zdr = {p.id for p in defs.projects.values() if p.zero_data_retention}
        guard: dict[str, ProjectGuardrails | None] = {
            p.id: self._guardrails.override_for(p.id, p.guardrails) for p in defs.projects.values()}
        regions = {p.id: (RegionRule("the project's", frozenset(p.regions)),) if p.regions else ()
                   for p in defs.projects.values()}
        for k in defs.keys.values():
            own = (RegionRule("the key's", frozenset(k.regions)),) if k.regions else ()
            principals = {p: Principal("project", k.prefix, p, k.id, k.allowed_models, zero_data_retention=p in zdr,
                                       guardrails=guard[p], regions=regions[p] + own)
                          for p in (k.project, *k.projects) if p in defs.projects}
            keys[k.digest.encode()] = (k, principals)
        self._admin_as = {p: Principal("admin", self._admin.key_prefix, p, zero_data_retention=p in zdr,
                                       guardrails=guard[p], regions=regions[p])
                          for p in defs.projects}
        self._projects = frozenset(defs.projects)
        self._keys = keys

    def authenticate(self, authorization: str | None, api_key: str | None,
                     project: str | None = None) -> Principal:
        """The caller, from ``Authorization: Bearer`` or ``x-api-key``; ``project`` is ``x-interlock-project``."""
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
        presented = self._digests.get(key)
        known = presented is not None
        if presented is None:
            mac = self._mac.copy()
            mac.update(key.encode())
            presented = mac.hexdigest().encode()
        is_master = hmac.compare_digest(presented, self._master_digest)
        if not known and (is_master or presented in self._keys):
            if len(self._digests) >= _DIGEST_CACHE:
                self._digests.clear()
            self._digests[key] = presented
        if is_master:
            if project is None:
                return self._admin
            admin = self._admin_as.get(project)
            if admin is None:
                raise PermissionDenied(f"x-interlock-project names an unknown project {project[:64]!r}.",
                                       param="x-interlock-project", code="unknown_project")
            return admin
        entry = self._keys.get(presented)
        # The table is keyed by digest; the constant-time comparison is what accepts the key.
        if entry is None or not hmac.compare_digest(entry[0].digest.encode(), presented):
            raise AuthenticationFailed(f"Incorrect API key provided: {_redact(key)}.")
        return self._project_principal(entry, project)

    def delegated(self, project: str, key_prefix: str, key_id: str) -> Principal | None:
        """A caller acting for ``project`` with a credential of its own (an MCP access key): the project's
        zero data retention and guardrails, no model restrictions. None when the project does not exist."""
        base = self._admin_as.get(project)
        if base is None:
            return None
        return Principal("project", key_prefix, project, key_id, zero_data_retention=base.zero_data_retention,
                         guardrails=base.guardrails, regions=base.regions)

    def authenticate_digest(self, key_digest: str) -> Principal:
        """The caller whose key has this stored digest (a console session): revoked, expired or unknown
        keys are refused as :meth:`authenticate` refuses them, against the live table."""
        presented = key_digest.encode()
        if hmac.compare_digest(presented, self._master_digest):
            return self._admin
        entry = self._keys.get(presented)
        if entry is None or not hmac.compare_digest(entry[0].digest.encode(), presented):
            raise AuthenticationFailed("The key this session signed in with is no longer known.",
                                       code="invalid_api_key")
        return self._project_principal(entry, None)

    def _project_principal(self, entry: tuple[ApiKey, dict[str, Principal]], project: str | None) -> Principal:
        k, principals = entry
        if k.revoked_at is not None:
            raise AuthenticationFailed(f"The API key {k.prefix}… ({k.id}) was revoked.", code="revoked_api_key")
        if k.expires_at is not None and self._clock.time() >= k.expires_at:
            reason = "was rotated and its overlap window ended" if k.replaced_by else "has expired"
            raise AuthenticationFailed(f"The API key {k.prefix}… ({k.id}) {reason}.", code="expired_api_key")
        principal = principals.get(project or k.project)
        if principal is None:
            if project is not None:
                raise PermissionDenied(f"This key may not use project {project[:64]!r}; it belongs to "
                                       f"{k.project!r}.", param="x-interlock-project", code="project_not_allowed")
            raise PermissionDenied(f"The project {k.project!r} of this key no longer exists.",
                                   code="project_not_found")
        return principal


def _redact(key: str) -> str:
    """Enough of an unknown key for its owner to recognise it, never enough to use or look it up."""
    return "*" * len(key) if len(key) <= 12 else key[:6] + "…"
