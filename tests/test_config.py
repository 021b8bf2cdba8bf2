"""Config validation: every error names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.config import ConfigError, load_settings
from interlock.vendors.registry import VENDOR_TABLE


def load(tmp_path: Path, text: str, **env: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "interlock.yaml"
    path.write_text(text)
    return load_settings(path, vendor_table=VENDOR_TABLE, environ=env)


def test_embedded_default_serves_the_simulator() -> None:
    settings = load_settings(None, vendor_table=VENDOR_TABLE, environ={})
    assert settings.simulator_enabled
    assert [v.id for v in settings.live_vendors()] == ["simulator"]
    assert settings.server.port == 8400
    assert settings.server.state_dir == Path(".interlock")


def test_interlock_home_sets_the_state_dir() -> None:
    assert load_settings(None, vendor_table=VENDOR_TABLE, environ={"INTERLOCK_HOME": "/tmp/x"}).server.state_dir == Path("/tmp/x")


def test_a_vendor_is_live_when_its_credential_is_present() -> None:
    settings = load_settings(None, vendor_table=VENDOR_TABLE, environ={"GROQ_API_KEY": "gsk-1"})
    live = {v.id for v in settings.live_vendors()}
    assert live == {"groq", "simulator"}
    assert settings.vendors["groq"].api_key == "gsk-1"
    assert "gsk-1" not in repr(settings.vendors["groq"])
    assert "GROQ_API_KEY" in settings.vendors["openai"].why_not_live() or "OPENAI_API_KEY" in settings.vendors["openai"].why_not_live()


def test_config_file_disables_the_simulator_unless_asked(tmp_path: Path) -> None:
    assert not load(tmp_path, "server: {port: 9000}\n").simulator_enabled
    assert load(tmp_path, "simulator: {enabled: true}\n").simulator_enabled


def test_env_references_for_credentials(tmp_path: Path) -> None:
    text = "vendors:\n  openai:\n    api_key: ${MY_KEY}\n  local:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n"
    settings = load(tmp_path, text, MY_KEY="sk-abc")
    assert settings.vendors["openai"].api_key == "sk-abc"
    assert settings.vendors["openai"].live
    assert settings.vendors["local"].live
    missing = load(tmp_path, text)
    assert not missing.vendors["openai"].live
    assert "MY_KEY" in missing.vendors["openai"].why_not_live()


@pytest.mark.parametrize(("text", "fragment"), [
    ("server:\n  port: abc\n", "interlock.yaml:2: server.port: expected an integer"),
    ("server:\n  prot: 1\n", "interlock.yaml:2: server.prot: unknown key (did you mean 'port'?)"),
    ("vendors:\n  openai:\n    timeouts:\n      connect: -1\n", "interlock.yaml:4: vendors.openai.timeouts.connect: expected a positive number"),
    ("vendors:\n  mine:\n    base_url: http://x\n", "interlock.yaml:2: vendors.mine: 'mine' is not a built-in vendor"),
    ("vendors:\n  mine:\n    type: soap\n    base_url: http://x\n", "interlock.yaml:3: vendors.mine.type: unknown vendor type"),
    ("vendors:\n  openai:\n    base_url: ftp://x\n", "interlock.yaml:3: vendors.openai.base_url: expected an http:// or https:// URL"),
    ("aliases:\n  fast: gpt\n", "interlock.yaml:2: aliases.fast: an alias must name a model as vendor/model"),
    ("logging:\n  enabled: maybe\n", "interlock.yaml:2: logging.enabled: expected true or false"),
    ("server: [1, 2]\n", "interlock.yaml:1: server: expected a mapping"),
    ("server:\n  port: 1\n  port: 2\n", "interlock.yaml:3: server.port: duplicate key"),
    ("server:\n  port: [\n", "not valid YAML"),
    ("bogus: 1\n", "interlock.yaml:1: bogus: unknown key"),
])
def test_errors_name_the_key_and_line(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert fragment in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings(tmp_path / "nope.yaml", vendor_table=VENDOR_TABLE, environ={})


def test_azure_uses_deployments_and_api_key_header(tmp_path: Path) -> None:
    text = ("vendors:\n  azure:\n    base_url: https://r.openai.azure.com\n    api_key: ${AZ}\n"
            "    deployments:\n      gpt-4.1-mini: prod-mini\n")
    settings = load(tmp_path, text, AZ="az-key")
    from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
    from interlock.vendors.transport import HttpTransport

    adapter = OpenAICompatAdapter(settings.vendors["azure"], HttpTransport())
    assert adapter.url("gpt-4.1-mini") == ("https://r.openai.azure.com/openai/deployments/prod-mini/chat/completions"
                                           "?api-version=2024-10-21")
    assert adapter._headers["api-key"] == "az-key"
    assert "authorization" not in adapter._headers
