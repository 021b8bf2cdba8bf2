"""Settings of AWS Bedrock: the region (its URL is derived from it) and where credentials come from.

Static AWS keys, or botocore's credential chain (``credentials.py``, the extra
``interlock[aws]``) with an optional ``profile``. Each value comes from the
vendor's config section (env refs allowed) or else from the environment
variables the AWS SDKs read, so a machine already set up for the AWS SDK works
with no config at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from interlock.config import VendorSettings, VendorType
from interlock.configfile import Section
from interlock.core.vendor import VendorSpec
from interlock.vendors.bedrock import credentials

_AWS_REGION_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True, slots=True)
class BedrockSettings(VendorSettings):
    decides_liveness: ClassVar[bool] = True

    region: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    #: The AWS profile botocore reads (shared config/credentials files, SSO, assume-role).
    profile: str | None = None
    #: ``credentials.CHAIN`` when botocore's chain supplies the credentials; None for static keys.
    credential_chain: str | None = None

    def missing(self) -> str | None:
        if not self.region:
            return "no region: set AWS_REGION or 'region' (or a profile's region, with interlock[aws])"
        return credentials.missing(self)

    def regions(self) -> tuple[str, ...]:
        return (self.region,) if self.region else ()


def _first_env(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((environ[n] for n in names if environ.get(n)), None)


def _secret(section: Section | None, key: str, environ: Mapping[str, str], env: str) -> str | None:
    if section is not None and section.has(key):
        return section.secret(key)[0]
    return environ.get(env) or None


def read(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
         base_url: str | None) -> tuple[BedrockSettings, str | None]:
    region = (section.string("region") if section is not None else None) or _first_env(environ, _AWS_REGION_ENV)
    key_id = _secret(section, "aws_access_key_id", environ, "AWS_ACCESS_KEY_ID")
    secret = _secret(section, "aws_secret_access_key", environ, "AWS_SECRET_ACCESS_KEY")
    # Static keys, else botocore's chain; an explicit profile wins over keys from the environment.
    profile = section.string("profile") if section is not None else None
    if section is not None and profile is not None and section.has("aws_access_key_id"):
        raise section.error("give either 'profile' or 'aws_access_key_id', not both", "profile")
    static = bool(key_id and secret) and profile is None
    chain = not static and credentials.chain_expected(profile, environ, section is not None)
    # A configured profile is always checked (it must exist, and needs botocore); the config's region wins.
    profile_region = credentials.chain_region(profile, environ, section) if profile or not region else None
    region = region or profile_region
    settings = BedrockSettings(
        region=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=_secret(section, "aws_session_token", environ, "AWS_SESSION_TOKEN"),
        profile=profile,
        credential_chain=credentials.CHAIN if chain else None,
    )
    if base_url is None and region:
        base_url = f"https://bedrock-runtime.{region}.amazonaws.com"
    return settings, base_url


SETTINGS = VendorType(("region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile"), read)
