"""Registered users' credentials at rest: AES-256-GCM under a key from the environment.

A sealed value is ``v1:<key id>:<urlsafe base64 of nonce ‖ ciphertext ‖ tag>``; the key id is the first 8 hex
characters of the key's SHA-256, so a value names the key that opens it and rotation can keep old keys for
reading. The associated data binds a value to its row (project, user, server): copied to another user's
row, it does not open. The key is ``INTERLOCK_ENCRYPTION_KEY`` (32 bytes, as 64 hex characters or URL-safe
base64); ``INTERLOCK_ENCRYPTION_OLD_KEYS`` (comma-separated) opens values sealed before a rotation. Without
the variable a key is generated once in the state directory (mode 0600) and a warning says to set one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("interlock.mcp")

ENV_KEY = "INTERLOCK_ENCRYPTION_KEY"
ENV_OLD = "INTERLOCK_ENCRYPTION_OLD_KEYS"
KEY_FILE = "encryption-key"


class SealError(Exception):
    """A value could not be sealed or opened (never carries the value or a key)."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise SealError(f"{where} is not 32 bytes as 64 hex characters or URL-safe base64") from None
    if len(raw) != 32:
        raise SealError(f"{where} must be 32 bytes (64 hex characters or 43 URL-safe base64 characters), "
                        f"not {len(raw)}")
    return raw


class Sealer:
    def __init__(self, current: bytes, old: Sequence[bytes] = ()) -> None:
        self.current_id = key_id(current)
        self._current = AESGCM(current)
        self._keys = {key_id(k): AESGCM(k) for k in (*old, current)}

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        nonce = secrets.token_bytes(12)
        box = self._current.encrypt(nonce, plaintext, aad)
        return f"v1:{self.current_id}:{base64.urlsafe_b64encode(nonce + box).decode()}"

    def open(self, sealed: str, aad: bytes) -> bytes:
        version, _, rest = sealed.partition(":")
        kid, _, payload = rest.partition(":")
        if version != "v1" or not payload:
            raise SealError("not a sealed value")
        aead = self._keys.get(kid)
        if aead is None:
            raise SealError(f"sealed under key {kid}, which is neither {ENV_KEY} nor one of {ENV_OLD}")
        try:
            raw = base64.urlsafe_b64decode(payload)
            return aead.decrypt(raw[:12], raw[12:], aad)
        except (InvalidTag, ValueError, binascii.Error):
            raise SealError("the sealed value does not open: altered, or moved from another row") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], state_dir: Path) -> Sealer:
        old = [parse_key(k, f"{ENV_OLD}[{i}]") for i, k in enumerate(environ.get(ENV_OLD, "").split(","))
               if k.strip()]
        text = environ.get(ENV_KEY)
        if text:
            return cls(parse_key(text, ENV_KEY), old)
        return cls(_state_key(state_dir), old)


def aad(project: str, user: str, server: str) -> bytes:
    return "\0".join((project, user, server)).encode()


def _state_key(state_dir: Path) -> bytes:
    path = state_dir / KEY_FILE
    try:
        return parse_key(path.read_text(), str(path))
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker wrote it first
        return parse_key(path.read_text(), str(path))
    try:
        os.write(fd, secrets.token_hex(32).encode())
    finally:
        os.close(fd)
    log.warning("MCP credentials are sealed with a key generated in %s: set %s in production (and keep it out "
                "of the database's backups)", path, ENV_KEY)
    return parse_key(path.read_text(), str(path))
