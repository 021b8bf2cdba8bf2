"""Settings of Vertex AI: credentials, project and location (its URL is derived from the location).

Credentials are a service-account file, or google-auth's application default
credentials (``credentials.py``, the extra ``interlock[gcp]``). Each value comes
from the vendor's config section (env refs allowed) or else from the environment
variables Google's SDKs read; the project defaults to the credentials file's own.
``anthropic_version`` applies to Claude models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from interlock.config import VendorType
from interlock.configfile import Section
from interlock.core.vendor import VendorSpec
from interlock.vendors.anthropic.settings import AnthropicSettings
from interlock.vendors.vertex import credentials

_GCP_PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "VERTEX_PROJECT")
_GCP_LOCATION_ENV = ("GOOGLE_CLOUD_LOCATION", "VERTEX_LOCATION")


@dataclass(frozen=True, slots=True)
class VertexSettings(AnthropicSettings):
    """Anthropic's settings (for Claude on Vertex) plus Google Cloud's."""

    decides_liveness: ClassVar[bool] = True

    project: str | None = None
    location: str = "us-central1"
    credentials_file: str | None = None
    #: ``credentials.CHAIN`` when google-auth's application default credentials supply the tokens.
    credential_chain: str | None = None

    def missing(self) -> str | None:
        why = credentials.missing(self)
        if why is not None:
            return why
        if not self.project:
            return "no project: set GOOGLE_CLOUD_PROJECT or 'project'"
        return None

    def regions(self) -> tuple[str, ...]:
        # "global" serves from wherever Google chooses: no region a residency rule could admit.
        return () if self.location == "global" else (self.location,)


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((environ[n] for n in names if environ.get(n)), None)


def read(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
         base_url: str | None) -> tuple[VertexSettings, str | None]:
    def string(key: str) -> str | None:
        return section.string(key) if section is not None else None

    creds = string("credentials_file") or environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None
    # google-auth's application default credentials when installed.
    creds, chain = credentials.adc(creds, environ, section is not None)
    project = string("project") or _first(environ, _GCP_PROJECT_ENV)
    if project is None and creds is not None:
        project = _project_of(creds, section)
    location = string("location") or _first(environ, _GCP_LOCATION_ENV) or "us-central1"
    if base_url is None:
        host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
        base_url = f"https://{host}"
    return VertexSettings(string("anthropic_version"), project, location, creds, chain), base_url


def _project_of(path: str, section: Section | None) -> str | None:
    """The project a credentials file names, so ``project`` may be left out."""
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


SETTINGS = VendorType(("project", "location", "credentials_file", "anthropic_version"), read)
