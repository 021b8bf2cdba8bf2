"""Google credentials for Vertex AI: application default credentials through google-auth, or a service account.

Which path is used:

* with google-auth installed (the extra ``interlock[gcp]``): google-auth's application default
  credentials, scope cloud-platform - the file named by ``credentials_file`` or
  ``GOOGLE_APPLICATION_CREDENTIALS`` (a service account, an ``authorized_user`` file from
  ``gcloud auth application-default login``, an ``external_account`` file for workload identity
  federation, an impersonated service account), else gcloud's own ADC file, else the metadata
  server (GCE, GKE, Cloud Run: the vendor must be listed under ``vendors:`` with a ``project``).
  Tokens are fetched in a worker thread and refreshed ten minutes before they expire
  (:class:`CachedCredential`); a quota project in the credentials (gcloud's user login sets one)
  goes with each request as ``x-goog-user-project``, as Google's client libraries send it;
* without it: a service-account file only, through our own JWT exchange (``vertex/gcp_auth.py``).

The project comes from the config, ``GOOGLE_CLOUD_PROJECT``, or the credentials file's
``project_id`` / ``quota_project_id`` (``vertex/settings.py``): Vertex URLs name it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Mapping
from datetime import UTC
from types import MappingProxyType
from typing import Any, Protocol

from interlock.core.errors import UpstreamError
from interlock.vendors.credential_cache import CachedCredential
from interlock.vendors.transport import Transport
from interlock.vendors.vertex.gcp_auth import SCOPE, ServiceAccountTokens, load_service_account

#: The extra that installs google-auth.
EXTRA = "pip install 'interlock[gcp]'"
#: ``credential_chain`` value of a Vertex vendor whose tokens come from google-auth.
CHAIN = "google-auth"
REFRESH_BEFORE = 600.0


@functools.cache
def google_auth_installed() -> bool:
    return importlib.util.find_spec("google.auth") is not None


def well_known_file(environ: Mapping[str, str]) -> str | None:
    """gcloud's ADC file (``gcloud auth application-default login``), when it exists."""
    home = environ.get("HOME")
    folder = environ.get("CLOUDSDK_CONFIG") or (os.path.join(home, ".config", "gcloud") if home else None)
    path = os.path.join(folder, "application_default_credentials.json") if folder else None
    return path if path and os.path.isfile(path) else None


def adc(credentials_file: str | None, environ: Mapping[str, str], configured: bool) -> tuple[str | None, str | None]:
    """(credentials file, credential chain) for a Vertex vendor, decided without network."""
    if not google_auth_installed():
        return credentials_file, None
    credentials_file = credentials_file or well_known_file(environ)
    return credentials_file, CHAIN if credentials_file or configured else None


class GcpSettings(Protocol):
    """What this module reads of ``VertexSettings``."""

    @property
    def credential_chain(self) -> str | None: ...
    @property
    def credentials_file(self) -> str | None: ...


def missing(vendor: GcpSettings) -> str | None:
    """Why the vendor has no Google credential (None when it has one)."""
    if vendor.credential_chain == CHAIN:
        return None
    if vendor.credentials_file:
        kind = _file_type(vendor.credentials_file)
        if kind in (None, "service_account"):
            return None
        return f"{vendor.credentials_file!r} is a {kind!r} credentials file: {EXTRA} to use it"
    if google_auth_installed():
        return ("no credential: set GOOGLE_APPLICATION_CREDENTIALS or 'credentials_file', run gcloud auth "
                "application-default login, or list the vendor under vendors: to use the metadata server")
    return (f"no credential: set GOOGLE_APPLICATION_CREDENTIALS or 'credentials_file' (a service account), or "
            f"{EXTRA} for application default credentials (gcloud login, workload identity, metadata server)")


class TokenSource(Protocol):
    async def auth_headers(self) -> Mapping[str, str]: ...


class ApplicationDefault:
    """google-auth credentials, refreshed in a worker thread; called there."""

    def __init__(self, credentials_file: str | None) -> None:
        self.credentials_file = credentials_file
        self._credentials: Any = None
        self._request: Any = None

    def __call__(self) -> tuple[Mapping[str, str], float | None]:
        # Imported here: google-auth is the optional extra interlock[gcp].
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            loaded = self._credentials is None
            if self._credentials is None:
                path = self.credentials_file
                if path is None or path in (os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"), well_known_file(os.environ)):
                    creds, _ = google.auth.default(scopes=[SCOPE])
                else:  # the config's credentials_file: the operator's own file, not outside input
                    creds, _ = google.auth.load_credentials_from_file(path, scopes=[SCOPE])
                self._credentials, self._request = creds, google.auth.transport.requests.Request()
            # Loading may already have fetched a token (an external account's project lookup does).
            if not (loaded and self._credentials.valid):
                self._credentials.refresh(self._request)
        except google.auth.exceptions.GoogleAuthError as exc:
            raise UpstreamError(f"google-auth could not get a Vertex AI access token: {exc}",
                                code="upstream_auth_error") from None
        headers = {"authorization": f"Bearer {self._credentials.token}"}
        quota_project = getattr(self._credentials, "quota_project_id", None)
        if quota_project:
            headers["x-goog-user-project"] = str(quota_project)
        expiry = self._credentials.expiry  # naive UTC, or None
        return MappingProxyType(headers), expiry.replace(tzinfo=UTC).timestamp() if expiry is not None else None


class _AdcTokens:
    def __init__(self, credentials_file: str | None) -> None:
        self.cache = CachedCredential(ApplicationDefault(credentials_file), refresh_before=REFRESH_BEFORE)

    @property
    def exchanges(self) -> int:
        return self.cache.exchanges

    async def auth_headers(self) -> Mapping[str, str]:
        return await self.cache.get()


def token_source(vendor: GcpSettings, transport: Transport) -> TokenSource:
    """google-auth's ADC when config chose it, else our service-account flow over ``transport``."""
    if vendor.credential_chain == CHAIN:
        return _AdcTokens(vendor.credentials_file)
    path = vendor.credentials_file or ""
    kind = _file_type(path)
    if kind not in (None, "service_account"):
        raise UpstreamError(f"{path!r} is a {kind!r} credentials file; without google-auth interlock reads "
                            f"service-account files only: {EXTRA}", code="upstream_auth_error")
    return ServiceAccountTokens(load_service_account(path), transport)


def _file_type(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None  # load_service_account reports it
    kind = data.get("type") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None
