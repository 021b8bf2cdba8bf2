"""AWS credentials for Bedrock: static keys, or botocore's credential chain (the extra ``interlock[aws]``).

Which is used:

* static keys (``aws_access_key_id`` / ``aws_secret_access_key`` / ``aws_session_token`` in the
  vendor's section, else ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``)
  are used whenever both keys are set and no ``profile:`` is configured, and need nothing installed;
* otherwise, with botocore installed, botocore's own chain in its order: environment, the
  ``profile:`` key or ``AWS_PROFILE`` (shared config and credentials files, SSO, assume-role,
  credential_process), web identity (``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``, STS
  AssumeRoleWithWebIdentity), container credentials (``AWS_CONTAINER_CREDENTIALS_*_URI``), instance
  metadata. It runs in a worker thread; expiring credentials are re-read from botocore (which
  refreshes them) before its own refresh window, through :class:`CachedCredential`.

Requests are signed with ``bedrock/sigv4.py`` either way. At config time (no network) :func:`chain_expected`
decides whether the chain is worth trying: a profile, a chain environment variable, a shared
config/credentials file, or a ``bedrock:`` section in the config (instance roles are only found by
asking). The region comes from the config, ``AWS_REGION``/``AWS_DEFAULT_REGION``, or the profile.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Mapping
from typing import Any, Protocol

from interlock.configfile import Section
from interlock.core.errors import UpstreamError
from interlock.vendors.bedrock.sigv4 import Credentials
from interlock.vendors.credential_cache import CachedCredential

#: The extra that installs botocore.
EXTRA = "pip install 'interlock[aws]'"
#: ``credential_chain`` value of a Bedrock vendor whose credentials come from botocore.
CHAIN = "botocore"
_PROFILE_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
_CHAIN_ENV = (*_PROFILE_ENV, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_WEB_IDENTITY_TOKEN_FILE")
#: botocore refreshes in its advisory window (15 minutes before expiry): ask it then.
REFRESH_BEFORE = 15 * 60.0


@functools.cache
def botocore_installed() -> bool:
    return importlib.util.find_spec("botocore") is not None


def _shared_files(environ: Mapping[str, str]) -> list[str]:
    home = environ.get("HOME")
    config = environ.get("AWS_CONFIG_FILE") or (os.path.join(home, ".aws", "config") if home else None)
    shared = environ.get("AWS_SHARED_CREDENTIALS_FILE") or (os.path.join(home, ".aws", "credentials") if home else None)
    return [path for path in (config, shared) if path and os.path.isfile(path)]


def chain_expected(profile: str | None, environ: Mapping[str, str], configured: bool) -> bool:
    """Whether botocore's chain may find credentials here (checked without network; botocore installed)."""
    if not botocore_installed():
        return False
    return bool(configured or profile or any(environ.get(name) for name in _CHAIN_ENV) or _shared_files(environ))


def chain_region(profile: str | None, environ: Mapping[str, str], section: Section | None) -> str | None:
    """The profile's ``region`` from the shared config file; a configured profile that does not exist is an error."""
    if not botocore_installed():
        if section is not None and section.has("profile"):
            raise section.error(f"'profile' needs botocore: {EXTRA}", "profile")
        return None
    profile = profile or next((environ[n] for n in _PROFILE_ENV if environ.get(n)), None)
    if not (profile or _shared_files(environ)):
        return None
    # Imported here: botocore is the optional extra interlock[aws], and costs its import only when used.
    import botocore.exceptions
    import botocore.session

    session = botocore.session.Session(profile=profile)
    for name, env in (("config_file", "AWS_CONFIG_FILE"), ("credentials_file", "AWS_SHARED_CREDENTIALS_FILE")):
        if environ.get(env):
            session.set_config_variable(name, environ[env])
    try:
        region = session.get_config_variable("region")
    except botocore.exceptions.ProfileNotFound:
        if section is not None and section.has("profile"):
            raise section.error(f"no AWS profile {profile!r} in the shared config or credentials file",
                                "profile") from None
        return None
    return str(region) if region else None


def missing(vendor: AwsSettings) -> str | None:
    """Why the vendor has no AWS credential (None when static keys or the chain will be used)."""
    if vendor.credential_chain == CHAIN or (vendor.aws_access_key_id and vendor.aws_secret_access_key):
        return None
    if not botocore_installed():
        return (f"no credential: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or {EXTRA} to use "
                "profiles, SSO, container and instance roles and web identity")
    return ("no credential: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE / 'profile', or "
            "list the vendor under vendors: to use botocore's credential chain (container and instance roles)")


class AwsSettings(Protocol):
    """What this module reads of ``BedrockSettings``."""

    @property
    def credential_chain(self) -> str | None: ...
    @property
    def profile(self) -> str | None: ...
    @property
    def aws_access_key_id(self) -> str | None: ...
    @property
    def aws_secret_access_key(self) -> str | None: ...
    @property
    def aws_session_token(self) -> str | None: ...


class CredentialSource(Protocol):
    async def get(self) -> Credentials: ...


class StaticCredentials:
    """Keys from the config or the environment, as they are."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    async def get(self) -> Credentials:
        return self.credentials


class BotocoreChain:
    """One botocore session's credentials, frozen for signing; called in a worker thread."""

    def __init__(self, profile: str | None) -> None:
        self.profile = profile
        self._credentials: Any = None

    def __call__(self) -> tuple[Credentials, float | None]:
        # Imported here: botocore is the optional extra interlock[aws].
        import botocore.exceptions
        import botocore.session

        try:
            if self._credentials is None:
                self._credentials = botocore.session.Session(profile=self.profile).get_credentials()
                if self._credentials is None:
                    raise UpstreamError("botocore's credential chain found no AWS credentials (environment, "
                                        "profile, web identity, container, instance metadata)",
                                        code="upstream_auth_error")
            frozen = self._credentials.get_frozen_credentials()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, RuntimeError) as exc:
            raise UpstreamError(f"botocore could not get AWS credentials: {exc}", code="upstream_auth_error") from None
        # RefreshableCredentials keeps its expiry here; botocore has no public accessor for it.
        expiry = getattr(self._credentials, "_expiry_time", None)
        return (Credentials(frozen.access_key, frozen.secret_key, frozen.token or None),
                expiry.timestamp() if expiry is not None else None)


def credential_source(vendor: AwsSettings) -> CredentialSource:
    """botocore's chain when config chose it (:func:`chain_expected`), else the static keys."""
    if vendor.credential_chain == CHAIN:
        return CachedCredential(BotocoreChain(vendor.profile), refresh_before=REFRESH_BEFORE)
    return StaticCredentials(Credentials(vendor.aws_access_key_id or "", vendor.aws_secret_access_key or "",
                                         vendor.aws_session_token))
