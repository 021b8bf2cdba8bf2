"""The vendor registry: every folder's declaration, the live vendors built from them, typed settings in the config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest

from interlock.config import ConfigError, VendorSettings, VendorTable, VendorType, load_settings
from interlock.configfile import Section
from interlock.core.vendor import VendorSpec
from interlock.vendors.bedrock.settings import BedrockSettings
from interlock.vendors.declaration import VendorPackage
from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
from interlock.vendors.registry import BY_TYPE, PACKAGES, VENDOR_TABLE, build_vendors, catalog_ids
from interlock.vendors.transport import HttpTransport
from interlock.vendors.vertex.settings import VertexSettings

#: Enough environment for every built-in vendor with a credential to be live.
ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k", "COHERE_API_KEY": "k",
       "GROQ_API_KEY": "k", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"}


def test_every_package_declares_its_specs_adapter_and_usage() -> None:
    assert [p.type for p in PACKAGES] == list(BY_TYPE) == list(VENDOR_TABLE.types)
    for package in PACKAGES:
        assert isinstance(package, VendorPackage)
        assert package.specs, package.type
        assert all(spec.type == package.type for spec in package.specs)
        assert callable(package.chat) and package.usage
        assert package.settings is VENDOR_TABLE.types[package.type]
    ids = [spec.id for package in PACKAGES for spec in package.specs]
    assert ids == list(VENDOR_TABLE.specs)
    assert len(ids) == len(set(ids))
    # Anthropic publishes no embeddings endpoint; every other vendor type has one.
    assert {p.type for p in PACKAGES if p.embedder is None} == {"anthropic"}


def test_custom_vendor_types_are_every_declared_type() -> None:
    # The simulator too: a further simulated instance (one per region, say) is served in-process.
    assert set(VENDOR_TABLE.custom_types) == set(BY_TYPE)


def test_build_vendors_gives_each_live_vendor_its_packages_adapters() -> None:
    settings = load_settings(None, vendor_table=VENDOR_TABLE, environ=ENV)
    live = build_vendors(settings, HttpTransport(), None)
    expected = {v.id for v in settings.live_vendors()} - {"simulator"}  # no in-process transport given
    assert set(live) == expected
    assert {"openai", "anthropic", "google", "bedrock", "cohere", "groq"} <= expected
    for vid, runtime in live.items():
        package = BY_TYPE[runtime.spec.type]
        assert runtime.spec is VENDOR_TABLE.specs[vid]
        assert (runtime.embedder is None) == (package.embedder is None)
    assert isinstance(live["groq"].adapter, OpenAICompatAdapter)
    with_simulator = build_vendors(settings, HttpTransport(), HttpTransport())
    assert isinstance(with_simulator["simulator"].adapter, OpenAICompatAdapter)


def load(tmp_path: Path, text: str, table: VendorTable = VENDOR_TABLE, **env: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "interlock.yaml"
    path.write_text(text)
    return load_settings(path, vendor_table=table, environ=env)


@pytest.mark.parametrize(("text", "fragment"), [
    ("vendors:\n  openai:\n    regoin: x\n", "interlock.yaml:3: vendors.openai.regoin: unknown key (did you mean 'region'?)"),
    ("vendors:\n  openai:\n    region: eu-west-1\n",
     "interlock.yaml:3: vendors.openai.region: 'region' applies to the bedrock vendor type only"),
    ("vendors:\n  google:\n    anthropic_version: x\n",
     "vendors.google.anthropic_version: 'anthropic_version' applies to the anthropic and vertex vendor types only"),
    ("vendors:\n  vertex:\n    credentials_file: /nonexistent/sa.json\n",
     "vendors.vertex.credentials_file: cannot read the service account file"),
])
def test_vendor_sections_are_checked_by_their_type(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert fragment in str(info.value)


def test_typed_settings_come_from_the_section_or_the_environment(tmp_path: Path) -> None:
    text = "vendors:\n  bedrock:\n    region: us-west-2\n  vertex:\n    project: p\n    location: global\n"
    settings = load(tmp_path, text, AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="s", AWS_REGION="eu-west-1",
                    GOOGLE_APPLICATION_CREDENTIALS="/sa.json")
    bedrock, vertex = settings.vendors["bedrock"], settings.vendors["vertex"]
    assert bedrock.settings_as(BedrockSettings).region == "us-west-2"
    assert bedrock.base_url == "https://bedrock-runtime.us-west-2.amazonaws.com" and bedrock.live
    assert "AKID" not in repr(bedrock)
    # google-auth (a dev dependency) reads the file as application default credentials.
    assert vertex.settings_as(VertexSettings) == VertexSettings(None, "p", "global", "/sa.json", "google-auth")
    assert vertex.base_url == "https://aiplatform.googleapis.com" and vertex.live
    missing = load_settings(None, vendor_table=VENDOR_TABLE, environ={}).vendors["bedrock"]
    assert not missing.live and missing.why_not_live() == ("no region: set AWS_REGION or 'region' "
                                                          "(or a profile's region, with interlock[aws])")
    with pytest.raises(TypeError):
        bedrock.settings_as(VertexSettings)


@dataclass(frozen=True, slots=True)
class _ToySettings(VendorSettings):
    flavour: str = "plain"


def _read_toy(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
              base_url: str | None) -> tuple[_ToySettings, str | None]:
    flavour = section.choice("flavour", "plain", ("plain", "spicy")) if section is not None else "plain"
    return _ToySettings(flavour), base_url or "http://toy.internal"


def test_the_config_knows_only_the_vendors_it_is_handed(tmp_path: Path) -> None:
    toy = VendorSpec("toy", "Toy", "toy", None, ("TOY_KEY",))
    table = VendorTable(MappingProxyType({"toy": toy}),
                        MappingProxyType({"toy": VendorType(("flavour",), _read_toy)}))
    settings = load(tmp_path, "vendors:\n  toy:\n    flavour: spicy\n", table, TOY_KEY="t")
    assert list(settings.vendors) == ["toy"]
    config = settings.vendors["toy"]
    assert config.settings_as(_ToySettings).flavour == "spicy" and config.base_url == "http://toy.internal"
    assert config.live
    with pytest.raises(ConfigError, match=r"interlock.yaml:3: vendors.toy.flavour: expected one of"):
        load(tmp_path, "vendors:\n  toy:\n    flavour: sour\n", table)
    with pytest.raises(ConfigError, match="unknown vendor type 'openai'"):
        load(tmp_path, "vendors:\n  mine:\n    type: openai\n", table)


@pytest.mark.parametrize(("vendor", "pid", "org", "variants"), [
    ("bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic",
     ["claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet-20250219-v1", "claude-3-7-sonnet-20250219"]),
    ("bedrock", "anthropic.claude-opus-4-7", "anthropic", ["claude-opus-4-7"]),
    ("vertex", "deepseek-ai/deepseek-v3.1-maas", "deepseek-ai", ["deepseek-v3.1-maas", "deepseek-v3.1"]),
    ("fireworks", "accounts/fireworks/models/glm-5p1", None, ["glm-5p1"]),
    ("openrouter", "~anthropic/claude-sonnet-latest", "anthropic", ["claude-sonnet-latest"]),
    ("groq", "llama-3.3-70b-versatile", None, ["llama-3.3-70b-versatile"]),
])
def test_catalog_id_readers(vendor: str, pid: str, org: str | None, variants: list[str]) -> None:
    assert catalog_ids(vendor).split(pid) == (org, variants)
    assert catalog_ids(vendor).org_ids_first is (vendor != "vertex")
