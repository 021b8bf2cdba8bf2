"""Bedrock through botocore's credential chain, offline: a shared-config profile, container credentials
(expiry and refresh) and web identity against a local STS - each request verified by SigV4 at the mock Bedrock.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.config import ConfigError, VendorConfig, load_settings
from interlock.core.errors import UpstreamError
from interlock.vendors.bedrock import credentials as aws_credentials
from interlock.vendors.bedrock.chat import BedrockAdapter
from interlock.vendors.bedrock.credentials import BotocoreChain, StaticCredentials
from interlock.vendors.bedrock.embeddings import BedrockEmbedder
from interlock.vendors.bedrock.sigv4 import Credentials, signature
from interlock.vendors.credential_cache import CachedCredential
from interlock.vendors.registry import VENDOR_TABLE
from interlock.vendors.transport import HttpTransport
from tests.mock_vendors.canonical import vendor_config
from tests.mock_vendors.cloud_auth import ContainerCredentials, InstanceMetadata, MockSts
from tests.mock_vendors.server import Received, Reply, ScriptedVendor

FIXTURES = Path(__file__).parent / "mock_vendors" / "fixtures"
CLAUDE = "anthropic.claude-3-7-sonnet-20250219-v1:0"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A process environment with no AWS settings but the test's own (botocore reads os.environ)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    env = {"AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env


def setenv(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **values: str) -> dict[str, str]:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
        env[name] = value
    return env


def verified(creds: Credentials, region: str, reply: Reply) -> Any:
    """A mock Bedrock handler that recomputes the SigV4 signature with ``creds``, as AWS does."""

    def handle(req: Received) -> Reply:
        auth = req.headers["authorization"]
        names = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        scope = auth.split("Credential=")[1].split(",")[0].split("/")
        expected, _ = signature(creds, req.method, req.raw_path, req.query, {n: req.headers[n] for n in names},
                                req.headers["x-amz-content-sha256"], req.headers["x-amz-date"], scope[2], scope[3])
        if (scope[0] != creds.access_key_id or auth.split("Signature=")[1] != expected or scope[2] != region
                or req.headers.get("x-amz-security-token") != creds.session_token
                or (creds.session_token and "x-amz-security-token" not in names)):
            return Reply(403, b'{"message":"The security token included in the request is invalid."}')
        return reply

    return handle


def converse_reply() -> Reply:
    return Reply(200, (FIXTURES / "bedrock_converse_tools.json").read_bytes())


def bedrock(env: dict[str, str], url: str) -> VendorConfig:
    config = vendor_config("bedrock", url, env)
    assert config.live, config.why_not_live()
    return config


async def test_shared_config_profile_signs_with_its_keys_and_region(
        aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, vendor: ScriptedVendor, http: HttpTransport) -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text("[default]\nregion = us-east-1\n\n[profile team]\nregion = eu-west-3\n")
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        "[team]\naws_access_key_id = AKIAPROFILETEAM\naws_secret_access_key = team/secret+key\n")
    env = setenv(monkeypatch, aws_env, AWS_PROFILE="team")
    config = bedrock(env, vendor.url)
    assert config.settings.region == "eu-west-3" and config.settings.credential_chain == "botocore"
    vendor.handle_with(verified(Credentials("AKIAPROFILETEAM", "team/secret+key"), "eu-west-3", converse_reply()))
    out = await BedrockAdapter(config, http).complete(CHAT, CLAUDE)
    assert out.status == 200 and "x-amz-security-token" not in vendor.last.headers


async def test_profile_key_in_the_config_file_beats_env_keys(aws_env: dict[str, str], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, vendor: ScriptedVendor,
                                                             http: HttpTransport) -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text(
        "[profile ops]\nregion = ap-south-1\naws_access_key_id = AKIAOPS\naws_secret_access_key = ops-secret\n")
    env = setenv(monkeypatch, aws_env, AWS_ACCESS_KEY_ID="AKIAENV", AWS_SECRET_ACCESS_KEY="env-secret")
    path = tmp_path / "interlock.yaml"
    path.write_text(f"vendors:\n  bedrock:\n    profile: ops\n    base_url: {vendor.url}\n")
    config = load_settings(path, vendor_table=VENDOR_TABLE, environ=env).vendors["bedrock"]
    assert config.live and config.settings.region == "ap-south-1" and config.settings.profile == "ops"
    path.write_text(f"vendors:\n  bedrock:\n    profile: ops\n    region: us-west-2\n    base_url: {vendor.url}\n")
    assert load_settings(path, vendor_table=VENDOR_TABLE, environ=env).vendors["bedrock"].settings.region == "us-west-2"  # the config's region wins
    vendor.handle_with(verified(Credentials("AKIAOPS", "ops-secret"), "ap-south-1", converse_reply()))
    assert (await BedrockAdapter(config, http).complete(CHAT, CLAUDE)).status == 200


async def test_assume_role_profile_signs_sts_with_the_source_profile(
        aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, vendor: ScriptedVendor, http: HttpTransport) -> None:
    sts = MockSts().start()
    try:
        Path(aws_env["AWS_CONFIG_FILE"]).write_text(
            "[profile bedrock]\nrole_arn = arn:aws:iam::123456789012:role/bedrock-invoke\nsource_profile = base\n"
            "role_session_name = interlock-gw\nregion = eu-central-1\n")
        Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
            "[base]\naws_access_key_id = AKIABASEUSER\naws_secret_access_key = base/secret\n")
        env = setenv(monkeypatch, aws_env, AWS_PROFILE="bedrock", AWS_ENDPOINT_URL_STS=sts.url)
        config = bedrock(env, vendor.url)
        assert config.settings.region == "eu-central-1"
        assumed = Credentials(MockSts.ASSUMED_KEY, MockSts.ASSUMED_SECRET, MockSts.ASSUMED_SESSION)
        vendor.handle_with(verified(assumed, "eu-central-1", converse_reply()))
        assert (await BedrockAdapter(config, http).complete(CHAT, CLAUDE)).status == 200
        form = sts.forms[-1]
        assert form["Action"] == "AssumeRole" and form["RoleSessionName"] == "interlock-gw"
        assert form["RoleArn"] == "arn:aws:iam::123456789012:role/bedrock-invoke"
        # STS saw a request signed by the source profile's keys.
        headers, body = sts.requests[-1]
        auth = headers["authorization"]
        names = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        scope = auth.split("Credential=")[1].split(",")[0].split("/")
        expected, _ = signature(Credentials("AKIABASEUSER", "base/secret"), "POST", "/", "",
                                {n: headers[n] for n in names}, hashlib.sha256(body).hexdigest(),
                                headers["x-amz-date"], scope[2], scope[3])
        assert scope[0] == "AKIABASEUSER" and scope[3] == "sts" and auth.split("Signature=")[1] == expected
    finally:
        sts.stop()


@pytest.mark.parametrize("region", ["", "    region: eu-west-1\n"])
def test_an_unknown_profile_is_a_config_error_naming_the_key(aws_env: dict[str, str], tmp_path: Path,
                                                             region: str) -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text("[profile ops]\nregion = ap-south-1\n")
    path = tmp_path / "interlock.yaml"
    path.write_text(f"vendors:\n  bedrock:\n    profile: opps\n{region}")
    with pytest.raises(ConfigError, match=r"vendors\.bedrock\.profile.*no AWS profile 'opps'"):
        load_settings(path, vendor_table=VENDOR_TABLE, environ=aws_env)


async def test_container_credentials_are_cached_and_refreshed_before_expiry(
        aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, vendor: ScriptedVendor, http: HttpTransport) -> None:
    # Twelve minutes of life: inside botocore's advisory window (15), outside its mandatory one (10), so
    # botocore fetches anew whenever it is asked - and interlock asks only when its own cache says so.
    endpoint = ContainerCredentials(lifetime=12 * 60).start()
    try:
        env = setenv(monkeypatch, aws_env, AWS_CONTAINER_CREDENTIALS_FULL_URI=endpoint.url,
                     AWS_CONTAINER_AUTHORIZATION_TOKEN=endpoint.token, AWS_REGION="eu-west-1")
        adapter = BedrockAdapter(bedrock(env, vendor.url), http)
        now = [time.time()]
        cache = CachedCredential(BotocoreChain(None), refresh_before=aws_credentials.REFRESH_BEFORE,
                                 clock=lambda: now[0])
        adapter.credentials = cache

        def expect_keys(n: int) -> None:
            vendor.handle_with(verified(Credentials(*endpoint.keys(n)), "eu-west-1", converse_reply()))

        async def call() -> None:
            assert (await adapter.complete(CHAT, CLAUDE)).status == 200

        expect_keys(2)  # botocore's first load, then its advisory refresh on first use
        await call()
        calls = len(endpoint.calls)
        assert calls == 2 and all(c["authorization"] == endpoint.token for c in endpoint.calls)
        expect_keys(2)
        await call()  # cached: no fetch, no thread
        assert len(endpoint.calls) == calls and cache.exchanges == 1
        now[0] += 31  # in the refresh window: served from the cache while one refresh runs behind it
        expect_keys(2)
        await call()
        for _ in range(200):
            if cache.exchanges == 2:
                break
            await asyncio.sleep(0.01)
        assert cache.exchanges == 2 and len(endpoint.calls) == 3
        expect_keys(3)
        await call()
        now[0] += 12 * 60  # expired by interlock's clock: the request waits for new keys
        expect_keys(4)
        await call()
        assert cache.exchanges == 3 and len(endpoint.calls) == 4
    finally:
        endpoint.stop()


async def test_web_identity_through_a_local_sts(aws_env: dict[str, str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch, vendor: ScriptedVendor,
                                                http: HttpTransport) -> None:
    sts = MockSts().start()
    try:
        token_file = tmp_path / "token"
        token_file.write_text("eyJhbGciOiJSUzI1NiJ9.service-account-token.sig")
        env = setenv(monkeypatch, aws_env, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file), AWS_REGION="eu-west-1",
                     AWS_ROLE_ARN="arn:aws:iam::123456789012:role/bedrock-invoke",
                     AWS_ROLE_SESSION_NAME="interlock-test", AWS_ENDPOINT_URL_STS=sts.url)
        config = bedrock(env, vendor.url)
        creds = Credentials(MockSts.ACCESS_KEY, MockSts.SECRET, MockSts.SESSION)
        vendor.handle_with(verified(creds, "eu-west-1", converse_reply()))
        adapter = BedrockAdapter(config, http)
        assert (await adapter.complete(CHAT, CLAUDE)).status == 200
        assert vendor.last.headers["x-amz-security-token"] == MockSts.SESSION
        form = sts.forms[-1]
        assert form["Action"] == "AssumeRoleWithWebIdentity" and form["Version"] == "2011-06-15"
        assert form["RoleArn"] == "arn:aws:iam::123456789012:role/bedrock-invoke"
        assert form["RoleSessionName"] == "interlock-test"
        assert form["WebIdentityToken"] == token_file.read_text()
        # The embeddings adapter shares the chat adapter's credential handling.
        vendor.handle_with(verified(creds, "eu-west-1", Reply(200, orjson.dumps({"embedding": [0.5],
                                                                                 "inputTextTokenCount": 2}))))
        out = await BedrockEmbedder(config, http).embed({"model": "m", "input": "hi"}, "amazon.titan-embed-text-v2:0")
        assert out.vectors == [[0.5]] and out.input_tokens == 2
    finally:
        sts.stop()


async def test_instance_role_when_bedrock_is_listed(aws_env: dict[str, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, vendor: ScriptedVendor,
                                                    http: HttpTransport) -> None:
    imds = InstanceMetadata().start()
    try:
        env = setenv(monkeypatch, aws_env, AWS_EC2_METADATA_DISABLED="false",
                     AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url)
        path = tmp_path / "interlock.yaml"
        path.write_text(f"vendors:\n  bedrock:\n    region: eu-west-1\n    base_url: {vendor.url}\n")
        config = load_settings(path, vendor_table=VENDOR_TABLE, environ=env).vendors["bedrock"]
        assert config.live and config.settings.credential_chain == "botocore"
        creds = Credentials(InstanceMetadata.ACCESS_KEY, InstanceMetadata.SECRET, InstanceMetadata.SESSION)
        vendor.handle_with(verified(creds, "eu-west-1", converse_reply()))
        assert (await BedrockAdapter(config, http).complete(CHAT, CLAUDE)).status == 200
        assert ("PUT", "/latest/api/token") in imds.requests
        assert ("GET", f"/latest/meta-data/iam/security-credentials/{InstanceMetadata.ROLE}") in imds.requests
    finally:
        imds.stop()


async def test_no_credentials_found_by_the_chain_is_an_upstream_auth_error(
        aws_env: dict[str, str], tmp_path: Path, http: HttpTransport) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text("vendors:\n  bedrock:\n    region: eu-west-1\n    base_url: http://127.0.0.1:9\n")
    config = load_settings(path, vendor_table=VENDOR_TABLE, environ=aws_env).vendors["bedrock"]
    assert config.live and config.settings.credential_chain == "botocore"  # listed: instance roles are found by asking
    with pytest.raises(UpstreamError) as info:
        await BedrockAdapter(config, http).complete(CHAT, CLAUDE)
    assert info.value.code == "upstream_auth_error" and "found no AWS credentials" in str(info.value)


def test_static_keys_need_no_botocore_and_without_either_the_vendor_says_what_to_do(
        aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(aws_credentials, "botocore_installed", lambda: False)
        keys = {"AWS_ACCESS_KEY_ID": "AKIDSTATIC", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
        static = vendor_config("bedrock", "http://x", keys)
        assert static.live and static.settings.credential_chain is None
        source = aws_credentials.credential_source(static.settings)
        assert isinstance(source, StaticCredentials) and source.credentials.access_key_id == "AKIDSTATIC"
        bare = vendor_config("bedrock", "http://x", {"AWS_REGION": "us-east-1", "AWS_PROFILE": "team"})
        assert not bare.live and "pip install 'interlock[aws]'" in bare.why_not_live()
        assert "AWS_ACCESS_KEY_ID" in bare.why_not_live()
    # With botocore but nothing that points at a credential: told how to point at one.
    nothing = vendor_config("bedrock", "http://x", {"AWS_REGION": "us-east-1"})
    assert not nothing.live and "AWS_PROFILE" in nothing.why_not_live()


def test_profile_and_static_keys_in_one_section_is_a_config_error(aws_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text("vendors:\n  bedrock:\n    profile: ops\n    aws_access_key_id: AKIA\n"
                    "    aws_secret_access_key: s\n")
    with pytest.raises(ConfigError, match=r"vendors\.bedrock\.profile.*not both"):
        load_settings(path, vendor_table=VENDOR_TABLE, environ=aws_env)


def test_profile_without_botocore_is_a_config_error(aws_env: dict[str, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_credentials, "botocore_installed", lambda: False)
    path = tmp_path / "interlock.yaml"
    path.write_text("vendors:\n  bedrock:\n    profile: ops\n    region: eu-west-1\n")
    with pytest.raises(ConfigError, match=r"vendors\.bedrock\.profile.*interlock\[aws\]"):
        load_settings(path, vendor_table=VENDOR_TABLE, environ=aws_env)
