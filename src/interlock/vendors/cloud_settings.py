"""Config for the vendors whose credential is more than one API key (Bedrock, Vertex AI).

Kept out of ``config.py`` so that file only calls in here: Bedrock needs AWS
keys or botocore's credential chain (``aws_credentials.py``) and a region (its
URL is derived from the region), Vertex AI a service account file or google-auth's
application default credentials (``gcp_credentials.py``), a project and a
location. Each value comes from the vendor's config section (env refs allowed)
or else from the environment variables the vendors' own SDKs read, so a machine
already set up for the AWS or Google SDK works with no config at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from interlock.configfile import Section
from interlock.vendors import aws_credentials, gcp_credentials

if TYPE_CHECKING:
    from interlock.config import VendorConfig
    from interlock.core.vendor import VendorSpec

#: Config keys this module reads (added to the vendor keys config.py accepts).
KEYS = ("region", "project", "location", "credentials_file", "anthropic_version",
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile")
#: Vendor types whose liveness is decided here rather than by ``api_key``.
CLOUD_TYPES = ("bedrock", "vertex")

_AWS_REGION_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION")
_GCP_PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "VERTEX_PROJECT")
_GCP_LOCATION_ENV = ("GOOGLE_CLOUD_LOCATION", "VERTEX_LOCATION")


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((environ[n] for n in names if environ.get(n)), None)


def _secret(section: Section | None, key: str, environ: Mapping[str, str], env: str) -> str | None:
    if section is not None and section.has(key):
        return section.secret(key)[0]
    return environ.get(env) or None


def _string(section: Section | None, key: str) -> str | None:
    return section.string(key) if section is not None else None


def cloud_fields(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
                 base_url: str | None) -> dict[str, Any]:
    """Extra :class:`VendorConfig` fields for ``spec``; ``base_url`` is derived where it depends on them."""
    fields: dict[str, Any] = {"anthropic_version": _string(section, "anthropic_version")}
    if spec.type == "bedrock":
        region = _string(section, "region") or _first(environ, _AWS_REGION_ENV)
        fields.update(
            aws_access_key_id=_secret(section, "aws_access_key_id", environ, "AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=_secret(section, "aws_secret_access_key", environ, "AWS_SECRET_ACCESS_KEY"),
            aws_session_token=_secret(section, "aws_session_token", environ, "AWS_SESSION_TOKEN"),
        )
        # Static keys, else botocore's chain (vendors/aws_credentials.py); an explicit profile wins over keys.
        profile = _string(section, "profile")
        if section is not None and profile is not None and section.has("aws_access_key_id"):
            raise section.error("give either 'profile' or 'aws_access_key_id', not both", "profile")
        static = bool(fields["aws_access_key_id"] and fields["aws_secret_access_key"]) and profile is None
        use_chain = not static and aws_credentials.chain_expected(profile, environ, section is not None)
        # A configured profile is always checked (it must exist, and needs botocore).
        profile_region = aws_credentials.chain_region(profile, environ, section) if profile or not region else None
        region = region or profile_region
        fields.update(region=region, profile=profile, credential_chain=aws_credentials.CHAIN if use_chain else None)
        if base_url is None and region:
            base_url = f"https://bedrock-runtime.{region}.amazonaws.com"
    elif spec.type == "vertex":
        creds = _string(section, "credentials_file") or environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None
        # google-auth's application default credentials when installed (vendors/gcp_credentials.py).
        creds, chain = gcp_credentials.adc(creds, environ, section is not None)
        if section is not None and section.has("profile"):
            raise section.error("'profile' applies to the bedrock vendor type only", "profile")
        project = _string(section, "project") or _first(environ, _GCP_PROJECT_ENV)
        if project is None and creds is not None:
            project = _project_of(creds, section)
        location = _string(section, "location") or _first(environ, _GCP_LOCATION_ENV) or "us-central1"
        fields.update(credentials_file=creds, project=project, location=location, credential_chain=chain)
        if base_url is None:
            host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
            base_url = f"https://{host}"
    else:
        for key in KEYS[:4] + KEYS[5:]:
            if section is not None and section.has(key):
                raise section.error(f"'{key}' applies to the bedrock and vertex vendor types only", key)
    fields["base_url"] = base_url
    return fields


def _project_of(path: str, section: Section | None) -> str | None:
    """The ``project_id`` of a service-account file, so ``project`` may be left out."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        if section is not None:
            raise section.error(f"cannot read the service account file {path!r}: {exc}", "credentials_file") from None
        return None
    # A service account names its project; a gcloud user login file its quota project.
    project = (data.get("project_id") or data.get("quota_project_id")) if isinstance(data, dict) else None
    return project if isinstance(project, str) else None


def cloud_missing(vendor: VendorConfig) -> str | None:
    """Why a cloud vendor cannot run (None when it can)."""
    if vendor.spec.type == "bedrock":
        if not vendor.region:
            return "no region: set AWS_REGION or 'region' (or a profile's region, with interlock[aws])"
        return aws_credentials.missing(vendor)
    why = gcp_credentials.missing(vendor)
    if why is not None:
        return why
    if not vendor.project:
        return "no project: set GOOGLE_CLOUD_PROJECT or 'project'"
    return None
