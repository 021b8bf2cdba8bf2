"""A hard budget never admits a request whose price is unknown (real gateways, the mock OpenAI vendor, the SDKs).

Found: a key with a hard budget of $0.0002/day made unlimited calls through a custom ``type: openai``
vendor with no known price (cost recorded as $0, no warning).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, clean_env, start_gateway
from tests.mock_openai import MockVendor

pytestmark = pytest.mark.slow


def _config(mock: MockVendor, extra: str = "") -> str:
    return f"""
vendors:
  custom:
    type: openai
    base_url: {mock.base_url}
    api_key: sk-mock
catalog:
  models:
    mocklab/priced:
      name: Priced mock
      context_window: 32768
      max_output: 4096
      capabilities: [streaming]
      routes:
        custom: {{vendor_model_id: priced, price: {{input: 1.0, output: 2.0}}}}
policies:
  mixed:
    targets: [custom/free-model, mocklab/priced]
  only-unpriced:
    targets: [custom/free-a, custom/free-b]
logging: {{flush_interval: 0.2}}
{extra}
"""


def admin(gw: GatewayProcess, path: str, body: Any) -> Any:
    req = urllib.request.Request(gw.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def budget_key(gw: GatewayProcess, project: str) -> str:
    admin(gw, "/admin/v1/projects", {"id": project})
    key = admin(gw, "/admin/v1/keys", {"project": project, "budget": {"amount_usd": "0.0002", "period": "daily"}})
    return str(key["key"])


@pytest.fixture(scope="module")
def gw(module_mock: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("unpriced"), _config(module_mock))
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def key(gw: GatewayProcess) -> str:
    return budget_key(gw, "tight")


def client(gw: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)


def test_unpriced_route_is_refused_with_402_price_unknown_in_each_api_shape(gw: GatewayProcess, key: str,
                                                                            module_mock: MockVendor) -> None:
    before = len(module_mock.requests)
    oc = client(gw, key)
    for _ in range(3):  # found: unlimited calls at $0
        with pytest.raises(openai.APIStatusError) as info:
            oc.chat.completions.create(model="custom/ok", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 402
        err = info.value.body
        assert isinstance(err, dict) and err["code"] == "price_unknown", err
        assert "'custom/ok'" in err["message"] and "governance.unpriced" in err["message"]
    with pytest.raises(openai.APIStatusError) as info:
        oc.chat.completions.create(model="custom/ok", stream=True, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 402
    with pytest.raises(openai.APIStatusError) as info:
        oc.responses.create(model="custom/ok", input="hi")
    assert info.value.status_code == 402 and isinstance(info.value.body, dict)
    assert info.value.body["code"] == "price_unknown"
    with pytest.raises(openai.APIStatusError) as info:
        oc.embeddings.create(model="custom/embed", input="hi")
    assert info.value.status_code == 402 and isinstance(info.value.body, dict)
    assert info.value.body["code"] == "price_unknown" and "'custom/embed'" in info.value.body["message"]
    ac = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        ac.messages.create(model="custom/ok", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert ainfo.value.status_code == 402
    body = ainfo.value.body
    assert isinstance(body, dict) and body["type"] == "error" and "'custom/ok'" in body["error"]["message"]
    assert len(module_mock.requests) == before  # nothing reached the vendor


def test_a_priced_route_still_answers_under_the_same_budget(gw: GatewayProcess, key: str) -> None:
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model="mocklab/priced", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert raw.http_response.status_code == 200
    assert float(raw.headers["x-interlock-cost-usd"]) > 0
    # The same route named vendor/model: the config's price applies to it too.
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model="custom/priced", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert raw.http_response.status_code == 200 and float(raw.headers["x-interlock-cost-usd"]) > 0


def test_policy_skips_the_unpriced_target_with_a_reason(gw: GatewayProcess, key: str) -> None:
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model="mixed", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-interlock-route"] == "custom/priced"
    assert "custom/free-model skipped: price unknown" in raw.headers["x-interlock-route-reason"]
    body = {"model": "mixed", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    for who, filtered in ((key, True), (MASTER_KEY, False)):
        req = urllib.request.Request(gw.url + "/v1/route/explain", data=json.dumps(body).encode(), method="POST",
                                     headers={"authorization": f"Bearer {who}", "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            explained = json.loads(resp.read())
        cands = {c["target"]: c for c in explained["candidates"]}
        if filtered:
            assert explained["order"] == ["custom/priced"]
            assert cands["custom/free-model"]["filtered"].startswith("price unknown, and a hard budget applies")
        else:  # the admin key is under no budget
            assert explained["order"][0] == "custom/free-model" and cands["custom/free-model"]["eligible"]
    with pytest.raises(openai.APIStatusError) as info:
        client(gw, key).chat.completions.create(model="only-unpriced", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 402 and isinstance(info.value.body, dict)
    assert info.value.body["code"] == "price_unknown"
    assert "'custom/free-a'" in info.value.body["message"] and "'custom/free-b'" in info.value.body["message"]


def test_without_a_hard_budget_unpriced_routes_answer(gw: GatewayProcess) -> None:
    admin(gw, "/admin/v1/projects", {"id": "free"})
    key = admin(gw, "/admin/v1/keys", {"project": "free"})["key"]
    out = client(gw, key).chat.completions.create(model="custom/ok", max_tokens=5,
                                                  messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content


def test_start_up_lists_unpriced_routes(gw: GatewayProcess) -> None:
    out = gw.output()
    assert "unpriced routes" in out and "passed through by name on: custom" in out


def test_unpriced_allow_admits_them(module_mock: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> None:
    gw = start_gateway(tmp_path_factory.mktemp("allow"), _config(module_mock, "governance: {unpriced: allow}"))
    try:
        key = budget_key(gw, "tight")
        out = client(gw, key).chat.completions.create(model="custom/ok", max_tokens=5,
                                                      messages=[{"role": "user", "content": "hi"}])
        assert out.choices[0].message.content
        assert "governance.unpriced: allow admits them" in gw.output()
    finally:
        gw.stop()


def test_unpriced_setting_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text("governance:\n  poll_interval_s: 0.5\n  unpriced: maybe\n")
    proc = subprocess.run([sys.executable, "-m", "interlock", "serve", "--config", str(path), "--port", "1"],
                          capture_output=True, text=True, timeout=60,
                          env=clean_env(INTERLOCK_HOME=str(tmp_path / "state")))
    assert proc.returncode == 2
    assert "interlock.yaml:3: governance.unpriced: expected one of refuse, allow, got 'maybe'" in proc.stderr
