"""Settings of AWS Bedrock: the region (its URL is derived from it) and the AWS keys.

Each value comes from the vendor's config section (env refs allowed) or else
from the environment variables the AWS SDKs read, so a machine already set up
for the AWS SDK works with no config at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from interlock.config import VendorSettings, VendorType
from interlock.configfile import Section
from interlock.core.vendor import VendorSpec

_AWS_REGION_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True, slots=True)
class BedrockSettings(VendorSettings):
    decides_liveness: ClassVar[bool] = True

    region: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)

    def missing(self) -> str | None:
        if not self.region:
            return "no region: set AWS_REGION or 'region'"
        if not (self.aws_access_key_id and self.aws_secret_access_key):
            return "no credential: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        return None


def _first_env(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((environ[n] for n in names if environ.get(n)), None)


def _secret(section: Section | None, key: str, environ: Mapping[str, str], env: str) -> str | None:
    if section is not None and section.has(key):
        return section.secret(key)[0]
    return environ.get(env) or None


def read(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
         base_url: str | None) -> tuple[BedrockSettings, str | None]:
    region = (section.string("region") if section is not None else None) or _first_env(environ, _AWS_REGION_ENV)
    settings = BedrockSettings(
        region=region,
        aws_access_key_id=_secret(section, "aws_access_key_id", environ, "AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=_secret(section, "aws_secret_access_key", environ, "AWS_SECRET_ACCESS_KEY"),
        aws_session_token=_secret(section, "aws_session_token", environ, "AWS_SESSION_TOKEN"),
    )
    if base_url is None and region:
        base_url = f"https://bedrock-runtime.{region}.amazonaws.com"
    return settings, base_url


SETTINGS = VendorType(("region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"), read)
