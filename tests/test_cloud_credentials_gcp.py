"""Vertex AI through google-auth's application default credentials, offline: an ``authorized_user`` file
(what ``gcloud auth application-default login`` writes) whose ``token_uri`` is a local OAuth endpoint, the
bearer token reaching the mock Vertex, refresh before and at expiry; the service-account path without google-auth.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import google.auth._cloud_sdk
import google.auth.compute_engine._metadata
import google.auth.external_account
import google.oauth2.credentials
import orjson
import pytest

from interlock.config import load_settings
from interlock.core.errors import UpstreamError
from interlock.vendors.credential_cache import CachedCredential
from interlock.vendors.registry import VENDOR_TABLE
from interlock.vendors.transport import HttpTransport
from interlock.vendors.vertex import credentials as gcp_credentials
from interlock.vendors.vertex.chat import VertexAdapter
from interlock.vendors.vertex.credentials import ApplicationDefault
from interlock.vendors.vertex.embeddings import VertexEmbedder
from interlock.vendors.vertex.gcp_auth import ServiceAccountTokens
from tests.mock_vendors.canonical import collect, reassemble, vendor_config
from tests.mock_vendors.cloud_auth import MetadataServer, OAuthTokenEndpoint
from tests.mock_vendors.server import ScriptedVendor
from tests.test_vendor_vertex import PEM, token_endpoint

FIXTURES = Path(__file__).parent / "mock_vendors" / "fixtures"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
GEMINI_PATH = "/v1/projects/proj-quota/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"


@pytest.fixture
def oauth() -> Iterator[OAuthTokenEndpoint]:
    server = OAuthTokenEndpoint().start()
    yield server
    server.stop()


@pytest.fixture
def gcp_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, oauth: OAuthTokenEndpoint) -> None:
    """No Google settings in the process environment but the test's own (google-auth reads os.environ)."""
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "VERTEX_PROJECT", "CLOUDSDK_CONFIG",
                 "GOOGLE_CLOUD_QUOTA_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud-empty"))
    # Never probe a real metadata server from a test (google-auth reads this flag when imported).
    monkeypatch.setattr(google.auth.compute_engine._metadata, "_NO_GCE_CHECK", True)
    # google-auth sends user credentials to Google's endpoint whatever the file's token_uri says.
    monkeypatch.setattr(google.oauth2.credentials, "_GOOGLE_OAUTH2_TOKEN_ENDPOINT", oauth.url)
    # ... and looks up an external account's project at Resource Manager.
    monkeypatch.setattr(google.auth.external_account, "_CLOUD_RESOURCE_MANAGER", oauth.resource_manager)


@pytest.fixture
def user_file(tmp_path: Path, oauth: OAuthTokenEndpoint) -> Path:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(oauth.authorized_user_file("proj-quota")))
    return path


def gemini_reply(vendor: ScriptedVendor) -> None:
    vendor.reply(200, (FIXTURES / "gemini_response_tools.json").read_bytes())


async def test_authorized_user_file_token_reaches_vertex(gcp_env: None, user_file: Path, oauth: OAuthTokenEndpoint,
                                                         vendor: ScriptedVendor, http: HttpTransport) -> None:
    config = vendor_config("vertex", vendor.url, {"GOOGLE_APPLICATION_CREDENTIALS": str(user_file),
                                                  "GOOGLE_CLOUD_LOCATION": "europe-west4"})
    assert config.live and config.settings.credential_chain == "google-auth" and config.settings.project == "proj-quota"
    adapter = VertexAdapter(config, http)
    gemini_reply(vendor)
    await adapter.complete(CHAT, "gemini-2.5-flash")
    assert vendor.last.path == GEMINI_PATH
    assert vendor.last.headers["authorization"] == f"Bearer {oauth.token(1)}"
    assert vendor.last.headers["x-goog-user-project"] == "proj-quota"  # as Google's client libraries send it
    assert oauth.forms[0]["grant_type"] == "refresh_token" and oauth.forms[0]["client_id"] == oauth.CLIENT_ID
    gemini_reply(vendor)
    await adapter.complete(CHAT, "gemini-2.5-flash")  # cached: no second exchange
    assert len(oauth.forms) == 1 and vendor.last.headers["authorization"] == f"Bearer {oauth.token(1)}"


async def test_gcloud_login_file_is_found_without_any_setting(gcp_env: None, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              oauth: OAuthTokenEndpoint, vendor: ScriptedVendor,
                                                              http: HttpTransport) -> None:
    folder = tmp_path / "gcloud"
    folder.mkdir()
    (folder / "application_default_credentials.json").write_text(json.dumps(oauth.authorized_user_file("proj-quota")))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(folder))
    # google-auth asks the gcloud binary for the project of a gcloud login; interlock reads quota_project_id.
    monkeypatch.setattr(google.auth._cloud_sdk, "get_project_id", lambda: None)
    config = vendor_config("vertex", vendor.url, {"CLOUDSDK_CONFIG": str(folder), "GOOGLE_CLOUD_LOCATION": "europe-west4"})
    assert config.live and config.settings.credentials_file == str(folder / "application_default_credentials.json")
    gemini_reply(vendor)
    await VertexAdapter(config, http).complete(CHAT, "gemini-2.5-flash")
    assert vendor.last.path == GEMINI_PATH and vendor.last.headers["authorization"] == f"Bearer {oauth.token(1)}"


async def test_adc_token_refreshes_before_and_at_expiry(gcp_env: None, user_file: Path, oauth: OAuthTokenEndpoint,
                                                        vendor: ScriptedVendor, http: HttpTransport) -> None:
    monkeypatch_env = {"GOOGLE_APPLICATION_CREDENTIALS": str(user_file), "GOOGLE_CLOUD_LOCATION": "europe-west4"}
    embedder = VertexEmbedder(vendor_config("vertex", vendor.url, monkeypatch_env), http)
    now = [time.time()]
    cache = CachedCredential(ApplicationDefault(str(user_file)), refresh_before=gcp_credentials.REFRESH_BEFORE,
                             clock=lambda: now[0])

    class Tokens:
        async def auth_headers(self) -> Mapping[str, str]:
            return await cache.get()

    embedder.tokens = Tokens()

    async def embed() -> str:
        vendor.reply(200, orjson.dumps({"predictions": [{"embeddings": {"values": [0.5],
                                                                        "statistics": {"token_count": 1}}}]}))
        await embedder.embed({"model": "m", "input": "hi"}, "text-embedding-005")
        return vendor.last.headers["authorization"]

    assert await embed() == f"Bearer {oauth.token(1)}"
    now[0] += 3599 - 300  # five minutes left: the old token serves while one refresh runs behind it
    assert await embed() == f"Bearer {oauth.token(1)}"
    for _ in range(200):
        if cache.exchanges == 2:
            break
        await asyncio.sleep(0.01)
    assert await embed() == f"Bearer {oauth.token(2)}"
    now[0] += 3600  # expired: the request waits for a new token
    assert await embed() == f"Bearer {oauth.token(3)}"
    assert len(oauth.forms) == 3 and vendor.last.path.endswith("/publishers/google/models/text-embedding-005:predict")


async def test_workload_identity_federation_exchanges_the_subject_token(
        gcp_env: None, tmp_path: Path, oauth: OAuthTokenEndpoint, vendor: ScriptedVendor, http: HttpTransport) -> None:
    subject = tmp_path / "oidc-token"
    subject.write_text(oauth.SUBJECT_TOKEN)
    path = tmp_path / "wif.json"
    path.write_text(json.dumps(oauth.external_account_file(str(subject))))
    config = vendor_config("vertex", vendor.url, {"GOOGLE_APPLICATION_CREDENTIALS": str(path),
                                                  "GOOGLE_CLOUD_PROJECT": "proj-wif"})
    assert config.live and config.settings.credential_chain == "google-auth"
    gemini_reply(vendor)
    await VertexAdapter(config, http).complete(CHAT, "gemini-2.5-flash")
    assert vendor.last.headers["authorization"] == f"Bearer {oauth.token(1)}"
    form = oauth.forms[0]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert form["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert form["subject_token"] == oauth.SUBJECT_TOKEN


async def test_refused_refresh_token_is_an_upstream_auth_error(gcp_env: None, tmp_path: Path,
                                                               oauth: OAuthTokenEndpoint, vendor: ScriptedVendor,
                                                               http: HttpTransport) -> None:
    path = tmp_path / "revoked.json"
    path.write_text(json.dumps({**oauth.authorized_user_file("proj-quota"), "refresh_token": "1//revoked"}))
    adapter = VertexAdapter(vendor_config("vertex", vendor.url, {"GOOGLE_APPLICATION_CREDENTIALS": str(path)}), http)
    with pytest.raises(UpstreamError) as info:
        await adapter.complete(CHAT, "gemini-2.5-flash")
    assert info.value.code == "upstream_auth_error" and "invalid_grant" in str(info.value)


async def test_listed_vertex_uses_adc_and_an_env_file_goes_through_google_auth_default(
        gcp_env: None, user_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oauth: OAuthTokenEndpoint,
        vendor: ScriptedVendor, http: HttpTransport) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text(f"vendors:\n  vertex:\n    project: my-proj\n    base_url: {vendor.url}\n")
    listed = load_settings(path, vendor_table=VENDOR_TABLE, environ={}).vendors["vertex"]
    assert listed.live and listed.settings.credential_chain == "google-auth" and listed.settings.credentials_file is None
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(user_file))
    adapter = VertexAdapter(listed, http)
    gemini_reply(vendor)
    await adapter.complete(CHAT, "gemini-2.5-flash")
    assert vendor.last.path.startswith("/v1/projects/my-proj/")
    assert vendor.last.headers["authorization"] == f"Bearer {oauth.token(1)}"


async def test_metadata_server_when_vertex_is_listed_with_a_project(
        gcp_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vendor: ScriptedVendor,
        http: HttpTransport) -> None:
    server = MetadataServer().start()
    try:
        monkeypatch.setattr(google.auth.compute_engine._metadata, "_NO_GCE_CHECK", False)
        monkeypatch.setattr(google.auth.compute_engine._metadata, "_GCE_METADATA_HOST", server.host)
        monkeypatch.setenv("GCE_METADATA_IP", server.host)
        path = tmp_path / "interlock.yaml"
        path.write_text(f"vendors:\n  vertex:\n    project: proj-gke\n    base_url: {vendor.url}\n")
        config = load_settings(path, vendor_table=VENDOR_TABLE, environ={}).vendors["vertex"]
        assert config.live and config.settings.credential_chain == "google-auth" and config.settings.credentials_file is None
        adapter = VertexAdapter(config, http)
        vendor.reply(200, chunks=[(FIXTURES / "anthropic_stream_thinking_tools.sse").read_bytes()])
        out = reassemble(await collect(await adapter.stream(CHAT, "claude-sonnet-4-5@20250929")))
        assert out["finish_reason"] == "tool_calls"
        assert vendor.last.headers["authorization"] == f"Bearer {server.token(1)}"
        assert vendor.last.path.startswith("/v1/projects/proj-gke/locations/us-central1/publishers/anthropic/")
        assert any(p.startswith("/computeMetadata/v1/instance/service-accounts/") and "/token" in p
                   for p in server.paths)
    finally:
        server.stop()


async def test_without_google_auth_service_accounts_still_work_and_others_say_what_to_do(
        gcp_env: None, user_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vendor: ScriptedVendor,
        http: HttpTransport) -> None:
    monkeypatch.setattr(gcp_credentials, "google_auth_installed", lambda: False)
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps({"type": "service_account", "project_id": "proj-sa", "private_key_id": "key-1",
                              "private_key": PEM, "client_email": "sa@proj.iam.gserviceaccount.com",
                              "token_uri": f"{vendor.url}/token"}))
    config = vendor_config("vertex", vendor.url, {"GOOGLE_APPLICATION_CREDENTIALS": str(sa)})
    assert config.live and config.settings.credential_chain is None
    adapter = VertexAdapter(config, http)
    assert isinstance(adapter.tokens, ServiceAccountTokens)
    vendor.handle_with(token_endpoint("ya29.sa"))
    gemini_reply(vendor)
    await adapter.complete(CHAT, "gemini-2.5-flash")
    assert vendor.last.headers["authorization"] == "Bearer ya29.sa" and "x-goog-user-project" not in vendor.last.headers
    user = vendor_config("vertex", vendor.url, {"GOOGLE_APPLICATION_CREDENTIALS": str(user_file)})
    assert not user.live and "'authorized_user' credentials file: pip install 'interlock[gcp]'" in user.why_not_live()
    with pytest.raises(UpstreamError, match=r"'authorized_user' credentials file.*interlock\[gcp\]"):
        VertexAdapter(user, http)
    nothing = vendor_config("vertex", vendor.url, {})
    assert not nothing.live and "pip install 'interlock[gcp]'" in nothing.why_not_live()
    assert "GOOGLE_APPLICATION_CREDENTIALS" in nothing.why_not_live()
    assert os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") is None
