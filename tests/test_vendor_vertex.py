"""Vertex AI: service-account JWT exchange on a mock token endpoint, token caching/refresh, both publishers' URLs."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from interlock.core.errors import UpstreamError
from interlock.vendors.transport import HttpTransport
from interlock.vendors.vertex.chat import VertexAdapter
from interlock.vendors.vertex.gcp_auth import GRANT, SCOPE, ServiceAccountTokens
from interlock.vendors.vertex.settings import VertexSettings
from tests.mock_vendors.canonical import collect, reassemble, vendor_config
from tests.mock_vendors.server import Received, Reply, ScriptedVendor

FIXTURES = Path(__file__).parent / "mock_vendors" / "fixtures"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_endpoint(token: str, expires_in: int = 3600) -> Any:
    """The mock token URI: verifies the RS256 assertion with the public key, as Google does."""

    def handle(req: Received) -> Reply:
        form = parse_qs(req.body.decode())
        assert form["grant_type"] == [GRANT]
        head, claims, sig = form["assertion"][0].split(".")
        try:
            KEY.public_key().verify(_unb64(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:  # noqa: BLE001 - any verification failure is a refusal, as at Google
            return Reply(400, b'{"error":"invalid_grant","error_description":"Invalid JWT Signature."}')
        header, body = orjson.loads(_unb64(head)), orjson.loads(_unb64(claims))
        assert header == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
        assert body["iss"] == "sa@proj.iam.gserviceaccount.com" and body["scope"] == SCOPE
        assert body["aud"].endswith("/token") and body["exp"] - body["iat"] == 3600
        return Reply(200, orjson.dumps({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}))

    return handle


@pytest.fixture
def creds(tmp_path: Path, vendor: ScriptedVendor) -> Path:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "proj-from-file", "private_key_id": "key-1",
                                "private_key": PEM, "client_email": "sa@proj.iam.gserviceaccount.com",
                                "token_uri": f"{vendor.url}/token"}))
    return path


def adapter(vendor: ScriptedVendor, http: HttpTransport, creds: Path) -> VertexAdapter:
    config = vendor_config("vertex", vendor.url, {"GOOGLE_APPLICATION_CREDENTIALS": str(creds),
                                                  "GOOGLE_CLOUD_LOCATION": "europe-west4"})
    assert config.settings_as(VertexSettings).project == "proj-from-file" and config.live
    return VertexAdapter(config, http)


async def test_gemini_on_vertex(vendor: ScriptedVendor, http: HttpTransport, creds: Path) -> None:
    vendor.handle_with(token_endpoint("ya29.first"))
    vendor.reply(200, (FIXTURES / "gemini_response_tools.json").read_bytes())
    a = adapter(vendor, http, creds)
    out = await a.complete({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "gemini-2.5-flash")
    call = vendor.last
    assert call.path == ("/v1/projects/proj-from-file/locations/europe-west4/publishers/google/models/"
                         "gemini-2.5-flash:generateContent")
    assert call.headers["authorization"] == "Bearer ya29.first" and "x-goog-api-key" not in call.headers
    assert out.data["choices"][0]["finish_reason"] == "tool_calls"
    # The token is cached: a second call makes no exchange.
    vendor.reply(200, (FIXTURES / "gemini_response_tools.json").read_bytes())
    await a.complete({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "gemini-2.5-flash")
    assert a.tokens.exchanges == 1 and vendor.last.headers["authorization"] == "Bearer ya29.first"


async def test_claude_on_vertex_raw_predict(vendor: ScriptedVendor, http: HttpTransport, creds: Path) -> None:
    vendor.handle_with(token_endpoint("ya29.claude"))
    vendor.reply(200, chunks=[(FIXTURES / "anthropic_stream_thinking_tools.sse").read_bytes()])
    a = adapter(vendor, http, creds)
    source = await a.stream({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "claude-sonnet-4-5@20250929")
    sent = vendor.last
    assert sent.path == ("/v1/projects/proj-from-file/locations/europe-west4/publishers/anthropic/models/"
                         "claude-sonnet-4-5@20250929:streamRawPredict")
    body = sent.json()
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body and body["stream"] is True
    assert sent.headers["authorization"] == "Bearer ya29.claude" and "x-api-key" not in sent.headers
    out = reassemble(await collect(source))
    assert out["finish_reason"] == "tool_calls" and len(out["message"]["tool_calls"]) == 2


async def test_token_refreshes_in_the_background_before_expiry(vendor: ScriptedVendor, http: HttpTransport,
                                                               creds: Path) -> None:
    now = [1_000_000.0]
    info = json.loads(creds.read_text())
    tokens = ServiceAccountTokens(info, http, refresh_before=600, clock=lambda: now[0])
    vendor.handle_with(token_endpoint("t1"))
    assert await tokens.token() == "t1"
    now[0] += 3600 - 300  # 5 minutes left: still served, refresh starts behind it
    vendor.handle_with(token_endpoint("t2"))
    assert await tokens.token() == "t1"
    for _ in range(100):
        if tokens.exchanges == 2:
            break
        await asyncio.sleep(0.01)
    assert await tokens.token() == "t2" and tokens.exchanges == 2


async def test_refused_service_account_is_an_upstream_auth_error(vendor: ScriptedVendor, http: HttpTransport,
                                                                 creds: Path) -> None:
    vendor.reply(400, b'{"error":"invalid_grant"}')
    a = adapter(vendor, http, creds)
    with pytest.raises(UpstreamError) as info:
        await a.complete({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "gemini-2.5-flash")
    assert info.value.code == "upstream_auth_error" and info.value.status == 502


def test_vertex_is_not_live_without_credentials() -> None:
    config = vendor_config("vertex", "http://x", {})
    assert not config.live and "GOOGLE_APPLICATION_CREDENTIALS" in config.why_not_live()
    bedrock = vendor_config("bedrock", "http://x", {"AWS_REGION": "us-east-1"})
    assert not bedrock.live and "AWS_ACCESS_KEY_ID" in bedrock.why_not_live()
