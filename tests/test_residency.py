"""Data residency: regions per route, region rules per project, key and request, end to end.

A real gateway process with three OpenAI-compatible vendor instances on the mock vendor (one per region) and
one in the EU that refuses connections; callers are the official OpenAI SDK and plain HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from interlock.config import load_settings
from interlock.configfile import ConfigError
from interlock.core.regions import BUILTIN_REGIONS, RegionRule
from interlock.vendors.registry import VENDOR_TABLE
from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, free_port, start_gateway
from tests.mock_openai import MockVendor

MSG = [{"role": "user", "content": "Hello there"}]


# ---------------------------------------------------------------- the table and the config


def test_regions_group_into_jurisdictions_by_the_vendors_own_names() -> None:
    t = BUILTIN_REGIONS
    assert [t.jurisdiction(r) for r in ("eu-central-1", "westeurope", "europe-west4")] == ["eu", "eu", "eu"]
    assert [t.jurisdiction(r) for r in ("eu-west-2", "uksouth", "europe-west2")] == ["uk", "uk", "uk"]
    assert [t.jurisdiction(r) for r in ("eu-central-2", "switzerlandnorth", "europe-west6")] == ["ch", "ch", "ch"]
    assert [t.jurisdiction(r) for r in ("us-east-1", "eastus2", "us-central1")] == ["us", "us", "us"]
    assert t.jurisdiction("eu") == "eu" and t.jurisdiction("mars-1") is None
    eu = frozenset({"eu"})
    assert t.admits(eu, ("eu-central-1",)) and t.admits(eu, ("eu-central-1", "westeurope"))
    # Every region a route may run in must be allowed; a route with no known region never is.
    assert not t.admits(eu, ("eu-central-1", "us-east-1")) and not t.admits(eu, ())
    # A request narrows with regions of an allowed jurisdiction; it widens with another one, or with a whole
    # jurisdiction when only some of its regions are allowed.
    assert t.narrower(eu, ["eu-central-1", "eu"]) == []
    assert t.narrower(eu, ["us", "us-east-1"]) == ["us", "us-east-1"]
    assert t.narrower(frozenset({"eu-central-1"}), ["eu"]) == ["eu"]
    mine = t.extended({"eu": ["fra-dc-1"], "apac": ["eu-central-1"]})
    assert mine.jurisdiction("fra-dc-1") == "eu" and mine.jurisdiction("eu-central-1") == "apac"
    assert RegionRule("the project's", frozenset({"uk", "eu"})).text() == "eu, uk"


def _settings(tmp_path: Path, text: str, **environ: str) -> Any:
    path = tmp_path / "interlock.yaml"
    path.write_text(text)
    return load_settings(path, vendor_table=VENDOR_TABLE, environ=environ)


def test_the_config_declares_and_derives_regions(tmp_path: Path) -> None:
    settings = _settings(tmp_path, """
regions:
  jurisdictions: {eu: [fra-dc-1]}
vendors:
  azure-eu: {type: openai, base_url: "https://x.openai.azure.com/openai", regions: [swedencentral]}
  local: {type: openai, base_url: "http://127.0.0.1:9/v1", regions: fra-dc-1}
  bedrock: {region: eu-west-3}
  vertex: {project: p, location: europe-west4}
""", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b")
    regions = {vid: v.regions for vid, v in settings.vendors.items()}
    assert regions["azure-eu"] == ("swedencentral",) and regions["local"] == ("fra-dc-1",)
    assert regions["bedrock"] == ("eu-west-3",) and regions["vertex"] == ("europe-west4",)
    assert regions["openai"] == ()  # a global vendor: no region unless declared
    assert settings.regions.jurisdiction("fra-dc-1") == "eu"


@pytest.mark.parametrize(("text", "where"), [
    ("vendors:\n  x: {type: openai, base_url: 'http://h/v1', regions: [mars-1]}\n", "unknown region or jurisdiction 'mars-1'"),
    ("vendors:\n  x: {type: openai, base_url: 'http://h/v1', regions: [EU West]}\n", "is not a region or jurisdiction name"),
    ("vendors:\n  x: {type: openai, base_url: 'http://h/v1', regions: []}\n", "expected a non-empty list of region or jurisdiction names"),
    ("regions: {jurisdictions: {eu: [Bad Name]}}\n", "is not a region or jurisdiction name"),
    ("regions: {zones: {}}\n", "zones"),
])
def test_a_bad_region_in_the_config_is_refused_with_its_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, text)
    assert where in str(info.value)


# ---------------------------------------------------------------- end to end


def _config(mock: MockVendor, dead_port: int) -> str:
    routes = "\n".join(f"        {vid}: {{vendor_model_id: ok, price: {{input: 1.0, output: 2.0}}}}"
                       for vid in ("mock-us", "mock-eu", "mock-uk"))
    return f"""
vendors:
  mock-us: {{type: openai, base_url: "{mock.base_url}", api_key: sk-mock, regions: [us-east-1]}}
  mock-eu: {{type: openai, base_url: "{mock.base_url}", api_key: sk-mock, regions: [eu-central-1]}}
  mock-uk: {{type: openai, base_url: "{mock.base_url}", api_key: sk-mock, regions: [eu-west-2]}}
  dead-eu:
    type: openai
    base_url: "http://127.0.0.1:{dead_port}/v1"
    api_key: sk-mock
    regions: [eu-west-1]
    timeouts: {{connect: 1, first_byte: 2, idle: 2, total: 4}}
catalog:
  models:
    mocklab/resident:
      name: Resident
      context_window: 32768
      capabilities: [streaming]
      routes:
{routes}
    mocklab/eu-down:
      name: EU route down
      context_window: 32768
      capabilities: [streaming]
      routes:
        dead-eu: {{vendor_model_id: ok, price: {{input: 1.0, output: 2.0}}}}
        mock-us: {{vendor_model_id: ok, price: {{input: 1.0, output: 2.0}}}}
    mocklab/us-only:
      name: US only
      context_window: 32768
      capabilities: [streaming]
      routes:
        mock-us: {{vendor_model_id: ok, price: {{input: 1.0, output: 2.0}}}}
simulator: {{enabled: true, time_scale: 0}}
"""


@pytest.fixture(scope="module")
def gw(mock_vendor: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = start_gateway(tmp_path_factory.mktemp("residency"), _config(mock_vendor, free_port()))
    assert gateway.call("POST", "/admin/v1/projects", {"id": "euro", "regions": ["eu", "uk"]})[0] == 201
    yield gateway
    gateway.stop()


def _key(gw: GatewayProcess, **body: Any) -> str:
    status, created = gw.call("POST", "/admin/v1/keys", {"project": "euro", **body})
    assert status == 201, created
    return str(created["key"])


def _client(gw: GatewayProcess, key: str, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=20, default_headers=headers)


def test_a_project_in_the_eu_is_served_in_its_regions_and_told_why(gw: GatewayProcess) -> None:
    client = _client(gw, _key(gw))
    for _ in range(4):
        raw = client.chat.completions.with_raw_response.create(model="mocklab/resident", messages=MSG)
        assert raw.headers["x-interlock-vendor"] in ("mock-eu", "mock-uk")
    status, explained = gw.call("POST", "/v1/route/explain", {"model": "mocklab/resident", "messages": MSG},
                                key=_key(gw))
    assert status == 200, explained
    filtered = {c["target"]: c.get("filtered") for c in explained["candidates"]}
    assert filtered["mock-us/ok"] == "region: mock-us us-east-1 not in the project's regions eu, uk"
    assert filtered["mock-eu/ok"] is None and filtered["mock-uk/ok"] is None
    regions = {c["target"]: c["regions"] for c in explained["candidates"]}
    assert regions == {"mock-us/ok": ["us-east-1"], "mock-eu/ok": ["eu-central-1"], "mock-uk/ok": ["eu-west-2"]}


def test_failover_never_leaves_the_regions(gw: GatewayProcess) -> None:
    client = _client(gw, _key(gw))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="mocklab/eu-down", messages=MSG)
    err = info.value
    assert err.status_code in (502, 503, 504), err.body
    rid = err.response.headers["x-interlock-request-id"]
    record = gw.record(rid)
    attempts = json.loads(record["routing_trace"])["attempts"] if isinstance(record["routing_trace"], str) else \
        record["routing_trace"]["attempts"]
    assert {a["vendor"] for a in attempts} == {"dead-eu"}
    assert all(a["regions"] == ["eu-west-1"] for a in attempts)
    # The admin key has no region rule: the same model fails over to the US route.
    raw = _client(gw, MASTER_KEY).chat.completions.with_raw_response.create(model="mocklab/eu-down", messages=MSG)
    assert raw.headers["x-interlock-vendor"] == "mock-us"


def test_no_route_in_the_regions_is_a_403_naming_them(gw: GatewayProcess) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        _client(gw, _key(gw)).chat.completions.create(model="mocklab/us-only", messages=MSG)
    body: Any = info.value.body
    assert body["code"] == "region_not_allowed" and body["param"] == "model"
    assert "the project's regions eu, uk" in body["message"] and "mock-us/ok (mock-us us-east-1)" in body["message"]


def test_a_key_narrower_than_its_project(gw: GatewayProcess) -> None:
    client = _client(gw, _key(gw, regions=["uk"]))
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="mocklab/resident", messages=MSG)
        assert raw.headers["x-interlock-vendor"] == "mock-uk"
    # A key may not reach outside its project's regions.
    status, err = gw.call("POST", "/admin/v1/keys", {"project": "euro", "regions": ["us"]})
    assert status == 400 and err["error"]["param"] == "regions", err
    assert "only narrow its project's regions" in err["error"]["message"]
    status, err = gw.call("POST", "/admin/v1/projects", {"id": "typo", "regions": ["ue"]})
    assert status == 400 and err["error"]["param"] == "regions" and "'ue'" in err["error"]["message"]


def test_a_request_narrows_its_regions_and_may_not_widen_them(gw: GatewayProcess) -> None:
    key = _key(gw)
    narrowed = _client(gw, key, **{"x-interlock-regions": "eu-central-1"})
    raw = narrowed.chat.completions.with_raw_response.create(model="mocklab/resident", messages=MSG)
    assert raw.headers["x-interlock-vendor"] == "mock-eu"
    raw = _client(gw, key).chat.completions.with_raw_response.create(
        model="mocklab/resident", messages=MSG, extra_body={"provider": {"regions": ["uk"]}})
    assert raw.headers["x-interlock-vendor"] == "mock-uk"
    with pytest.raises(openai.PermissionDeniedError) as info:
        _client(gw, key, **{"x-interlock-regions": "us"}).chat.completions.create(
            model="mocklab/resident", messages=MSG)
    body: Any = info.value.body
    assert (body["code"], body["param"]) == ("region_not_allowed", "x-interlock-regions")
    assert "outside the project's regions eu, uk" in body["message"]
    with pytest.raises(openai.BadRequestError) as bad:
        _client(gw, key).chat.completions.create(model="mocklab/resident", messages=MSG,
                                                 extra_body={"provider": {"regions": ["atlantis"]}})
    assert (bad.value.body or {})["param"] == "provider.regions"  # type: ignore[index]
    # Malformed regions are a 400 naming the parameter, never a 500.
    for extra, headers, param in [({"provider": {"regions": [1]}}, {}, "provider.regions[0]"),
                                  ({"provider": {"regions": []}}, {}, "provider.regions"),
                                  ({}, {"x-interlock-regions": "eu,,uk"}, "x-interlock-regions"),
                                  ({"provider": {"regions": ["uk"]}}, {"x-interlock-regions": "eu"},
                                   "x-interlock-regions")]:
        with pytest.raises(openai.BadRequestError) as bad:
            _client(gw, key, **headers).chat.completions.create(model="mocklab/resident", messages=MSG,
                                                                extra_body=extra)
        assert (bad.value.body or {})["param"] == param, bad.value.body  # type: ignore[index]
    for body in ({"regions": "eu"}, {"regions": [7]}, {"regions": ["eu", None]}):
        status, err = gw.call("PATCH", "/admin/v1/projects/euro", body)
        assert status == 400 and err["error"]["param"] == "regions", err
    # The admin key, with no rule, may still choose a region.
    raw = _client(gw, MASTER_KEY, **{"x-interlock-regions": "us"}).chat.completions.with_raw_response.create(
        model="mocklab/resident", messages=MSG)
    assert raw.headers["x-interlock-vendor"] == "mock-us"


def test_the_request_log_records_each_attempts_region(gw: GatewayProcess) -> None:
    raw = _client(gw, _key(gw, regions=["eu"])).chat.completions.with_raw_response.create(
        model="mocklab/resident", messages=MSG)
    record = gw.record(raw.headers["x-interlock-request-id"])
    trace = record["routing_trace"]
    trace = json.loads(trace) if isinstance(trace, str) else trace
    assert [(a["vendor"], a["regions"]) for a in trace["attempts"]] == [("mock-eu", ["eu-central-1"])]
    # The admin API's record, as the console's request page shows it.
    from interlock.console.requests import detail_view

    status, detail = gw.call("GET", f"/admin/v1/logs/{raw.headers['x-interlock-request-id']}")
    assert status == 200 and detail["attempts"][0]["regions"] == ["eu-central-1"], detail
    assert detail_view(detail)["timeline"][1]["what"] == "attempt 1: mock-eu / mocklab/resident (eu-central-1)"


def test_spend_totals_by_region(gw: GatewayProcess) -> None:
    raw = _client(gw, _key(gw, regions=["uk"])).chat.completions.with_raw_response.create(
        model="mocklab/resident", messages=MSG)
    gw.record(raw.headers["x-interlock-request-id"])  # written: the rollups are in the same transaction
    status, by_vendor = gw.call("GET", "/admin/v1/spend?group_by=vendor")
    assert status == 200
    status, by_region = gw.call("GET", "/admin/v1/spend?group_by=region")
    assert status == 200 and by_region["group_by"] == "region", by_region
    vendors = {r["vendor"]: r for r in by_vendor["data"]}
    regions = {r["region"]: r for r in by_region["data"]}
    assert regions["eu-west-2"]["requests"] == vendors["mock-uk"]["requests"] >= 1
    assert regions["eu-central-1"]["cost_usd"] == vendors["mock-eu"]["cost_usd"]
    assert by_region["total_cost_usd"] == by_vendor["total_cost_usd"]
    status, err = gw.call("GET", "/admin/v1/spend?group_by=continent")
    assert status == 400 and "region" in err["error"]["message"]

def test_simulated_instances_in_regions_make_the_whole_path_testable_offline(tmp_path: Path) -> None:
    config = """
simulator: {enabled: true, time_scale: 0}
vendors:
  sim-eu: {type: simulator, regions: [europe-west4]}
  sim-us: {type: simulator, regions: [us-central1]}
catalog:
  models:
    openai/gpt-4.1-mini:
      routes:
        sim-us: {vendor_model_id: openai/gpt-4.1-mini, price: {input: 0.1, output: 0.2}}
        sim-eu: {vendor_model_id: openai/gpt-4.1-mini, price: {input: 0.4, output: 1.6}}
"""
    gateway = start_gateway(tmp_path / "gw", config)
    try:
        assert gateway.call("POST", "/admin/v1/projects", {"id": "eu-only", "regions": ["eu"]})[0] == 201
        status, created = gateway.call("POST", "/admin/v1/keys", {"project": "eu-only"})
        assert status == 201
        client = _client(gateway, created["key"])
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(model="openai/gpt-4.1-mini", messages=MSG)
            assert raw.headers["x-interlock-vendor"] == "sim-eu"
            assert raw.parse().choices[0].message.content
        stream = client.chat.completions.create(model="openai/gpt-4.1-mini", messages=MSG, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        raw = _client(gateway, MASTER_KEY, **{"x-interlock-regions": "us"}).chat.completions.with_raw_response.create(
            model="openai/gpt-4.1-mini", messages=MSG)
        assert raw.headers["x-interlock-vendor"] == "sim-us"
        record = gateway.record(raw.headers["x-interlock-request-id"])
        assert record["simulated"] in (1, True)
    finally:
        gateway.stop()


def test_policies_check_reports_a_policy_no_project_region_can_use(tmp_path: Path) -> None:
    config = tmp_path / "interlock.yaml"
    config.write_text("""
simulator: {enabled: true, time_scale: 0}
vendors:
  sim-us: {type: simulator, regions: [us-east-1]}
  sim-eu: {type: simulator, regions: [eu-west-1]}
catalog:
  models:
    openai/gpt-4.1-mini:
      routes:
        sim-us: {vendor_model_id: openai/gpt-4.1-mini, price: {input: 0.1, output: 0.2}}
    openai/gpt-4.1-nano:
      routes:
        sim-eu: {vendor_model_id: openai/gpt-4.1-nano, price: {input: 0.1, output: 0.2}}
policies:
  us-only: {targets: [openai/gpt-4.1-mini]}
  anywhere: {targets: [openai/gpt-4.1-mini, openai/gpt-4.1-nano]}
""")
    env = clean_env(INTERLOCK_HOME=str(tmp_path / "state"), INTERLOCK_MASTER_KEY=MASTER_KEY)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "interlock", *args, "--config", str(config)],
                              capture_output=True, text=True, env=env, timeout=60)

    assert cli("policies", "check").returncode == 0  # no project has regions yet
    made = cli("projects", "create", "euro", "--regions", "eu")
    assert made.returncode == 0, made.stderr
    bad = cli("projects", "create", "typo", "--regions", "ue")
    assert bad.returncode != 0 and "regions" in bad.stderr and "'ue'" in bad.stderr
    out = cli("policies", "check")
    assert out.returncode == 1, out.stdout + out.stderr
    assert ("policy us-only: no target runs in project euro's regions eu: sim-us/openai/gpt-4.1-mini "
            "(sim-us us-east-1)") in out.stdout
    assert "anywhere" not in out.stdout and "2 policies checked: 1 problem" in out.stdout
    # The same finding is a warning when the gateway starts.
    gateway = start_gateway(tmp_path / "gw", config.read_text(), dict(env))
    try:
        gateway.stop()
        assert "warning: policy us-only: no target runs in project euro's regions eu" in gateway.output()
    finally:
        gateway.stop()


def test_an_instance_of_a_built_in_vendor_per_region(tmp_path: Path) -> None:
    settings = _settings(tmp_path, """
vendors:
  azure-eu: {like: azure, base_url: "https://acme-eu.openai.azure.com", api_key: k, regions: [swedencentral],
             api_version: "2024-10-21"}
  bedrock-us: {like: bedrock, region: us-east-1}
""", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b", AZURE_OPENAI_ENDPOINT="https://acme-us.openai.azure.com")
    eu, azure = settings.vendors["azure-eu"], settings.vendors["azure"]
    assert eu.like == "azure" and eu.spec.auth == azure.spec.auth == "api-key" and eu.regions == ("swedencentral",)
    assert eu.base_url == "https://acme-eu.openai.azure.com" and eu.spec.base_url_env is None
    assert settings.vendors["bedrock-us"].regions == ("us-east-1",) and settings.vendors["bedrock-us"].live
    assert azure.spec.name == "Azure OpenAI" and eu.spec.name == "Azure OpenAI (azure-eu)"
    renamed = _settings(tmp_path, "vendors:\n  openai: {name: OpenAI (EU org)}\n  x: {like: openai, name: Acme}\n")
    assert renamed.vendors["openai"].spec.name == "OpenAI (EU org)" and renamed.vendors["x"].spec.name == "Acme"
    assert renamed.vendors["openai"].spec.type == "openai" and renamed.vendors["anthropic"].spec.name == "Anthropic"
    for text, where in [("vendors:\n  x: {like: nobody}\n", "'like' names a built-in vendor"),
                        ("vendors:\n  openai: {like: azure}\n", "is itself a built-in vendor"),
                        ("vendors:\n  x: {like: anthropic, type: openai}\n", "is of type 'anthropic'")]:
        with pytest.raises(ConfigError) as info:
            _settings(tmp_path, text)
        assert where in str(info.value)


def test_an_instance_serves_the_catalog_routes_of_the_vendor_it_is_like(tmp_path: Path,
                                                                        mock_vendor: MockVendor) -> None:
    config = f"""
simulator: {{enabled: true, time_scale: 0}}
vendors:
  openai-eu: {{like: openai, base_url: "{mock_vendor.base_url}", api_key: sk-eu, regions: [eu-central-1]}}
"""
    gateway = start_gateway(tmp_path / "gw", config)
    try:
        assert gateway.call("POST", "/admin/v1/projects", {"id": "eu", "regions": ["eu"]})[0] == 201
        _, created = gateway.call("POST", "/admin/v1/keys", {"project": "eu"})
        raw = _client(gateway, created["key"]).chat.completions.with_raw_response.create(
            model="openai/gpt-4.1-mini", messages=MSG)
        assert raw.headers["x-interlock-vendor"] == "openai-eu"
        assert mock_vendor.last("gpt-4.1-mini")["headers"]["Authorization"] == "Bearer sk-eu"
        assert raw.parse().usage is not None and raw.parse().usage.cost > 0  # type: ignore[attr-defined]
    finally:
        gateway.stop()


async def test_the_console_spend_page_totals_by_region() -> None:
    from interlock.console.spend import SpendPage

    class Rollup:
        async def read_rollup(self, query: object) -> list[tuple[Any, ...]]:
            return [("2026-12-01", "mock-eu", 3_000_000, 0, 3), ("2026-12-01", "mock-eu2", 1_000_000, 0, 1),
                    ("2026-12-01", "mock-us", 5_000_000, 0, 5), ("2026-12-01", "gone", 7, 0, 1)]

    page = SpendPage(None, None, Rollup())  # type: ignore[arg-type]
    page.regions = {"mock-eu": ("eu-central-1",), "mock-eu2": ("eu-central-1",), "mock-us": ("us-east-1",)}
    view = await page.view({"by": "day", "group": "region", "from": "2026-12-01", "to": "2026-12-01",
                            "project": ""}, admin=True)
    assert sorted(view["csv"]) == [("2026-12-01", "eu-central-1", 4_000_000, 0, 4),
                                   ("2026-12-01", "us-east-1", 5_000_000, 0, 5), ("2026-12-01", "—", 7, 0, 1)]

