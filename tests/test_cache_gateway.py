"""The response cache end to end: a gateway process, a mock vendor that counts what it receives, and the
official openai and anthropic SDKs, streamed and not, on chat, messages and responses."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway, wait_until_known
from tests.mock_openai import MockVendor
from tests.test_guardrails_answer_gateway import LEAK

MODEL = "mocklab/parrot"


def parrot(mock: MockVendor) -> str:
    """The mock vendor and its priced model ``mocklab/parrot`` (the catalog section left open for more)."""
    return f"""
vendors:
  mock: {{type: openai, base_url: "{mock.base_url}", api_key: sk-mock}}
catalog:
  models:
    mocklab/parrot:
      name: Parrot
      context_window: 32768
      max_output: 4096
      capabilities: [streaming, tools]
      routes:
        mock: {{vendor_model_id: parrot, price: {{input: 1.0, output: 2.0}}}}
"""


def config(mock: MockVendor) -> str:
    return parrot(mock) + """    mocklab/reverse:
      name: Reverse
      context_window: 32768
      capabilities: [streaming]
      routes:
        mock: {vendor_model_id: reverse, price: {input: 1.0, output: 2.0}}
logging: {level: full, flush_interval: 0.1}
cache:
  enabled: true
  policies: {warm: {allow_temperature: true}}
policies:
  warm: {targets: [mocklab/parrot]}
"""


@pytest.fixture(scope="module")
def gw(module_mock: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    g = start_gateway(tmp_path_factory.mktemp("cache"), config(module_mock))
    yield g
    g.stop()


def api(gw: GatewayProcess, method: str, path: str, body: Any = None, key: str = MASTER_KEY) -> tuple[int, Any]:
    return gw.call(method, path, body, key)


def oa(gw: GatewayProcess, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


def prompt() -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Say this back: {uuid.uuid4().hex}"}]


def received(mock: MockVendor, text: str) -> int:
    """How many requests the vendor received whose body contains ``text``."""
    return sum(text in json.dumps(r["body"]) for r in mock.requests)


def chat(gw: GatewayProcess, messages: list[dict[str, str]], key: str = MASTER_KEY, **kw: Any) -> Any:
    kw.setdefault("temperature", 0)
    return oa(gw, key).chat.completions.with_raw_response.create(model=kw.pop("model", MODEL), messages=messages,
                                                                 **kw)


def test_a_repeated_request_is_answered_from_the_cache(gw: GatewayProcess, module_mock: MockVendor) -> None:
    messages = prompt()
    first = chat(gw, messages)
    assert first.headers["x-interlock-cache"] == "miss"
    assert float(first.headers["x-interlock-cost-usd"]) > 0
    # The same request spelled differently (key order, 0 vs 0.0) is the same request.
    second = chat(gw, [{"content": messages[0]["content"], "role": "user"}], temperature=0.0)
    assert second.headers["x-interlock-cache"] == "hit"
    assert int(second.headers["x-interlock-cache-age"]) >= 0
    assert second.headers["x-interlock-cost-usd"] == "0"
    assert second.headers["x-interlock-vendor"] == "mock"
    assert received(module_mock, messages[0]["content"]) == 1
    a, b = first.parse(), second.parse()
    assert a.choices[0].message.content == b.choices[0].message.content == messages[0]["content"]
    assert b.usage is not None and b.usage.total_tokens == a.usage.total_tokens  # type: ignore[union-attr]
    assert getattr(b.usage, "cost", None) == 0
    # The replayed answer is the one sent (the cache stores the body sent, for Chat Completions), but its cost.
    sent, replayed = first.http_response.json(), second.http_response.json()
    assert sent["usage"].pop("cost") > 0 and replayed["usage"].pop("cost") == 0
    assert sent == replayed and "logprobs" in sent["choices"][0]
    # Any changed parameter is another request.
    third = chat(gw, messages, max_tokens=50)
    assert third.headers["x-interlock-cache"] == "miss"
    assert received(module_mock, messages[0]["content"]) == 2


def test_a_streamed_request_is_replayed_as_a_stream(gw: GatewayProcess, module_mock: MockVendor) -> None:
    messages = prompt()
    texts = []
    for expected in ("miss", "hit"):
        raw = chat(gw, messages, stream=True, stream_options={"include_usage": True})
        assert raw.headers["x-interlock-cache"] == expected
        chunks = list(raw.parse())
        texts.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
        usage = chunks[-1].usage
        assert usage is not None and usage.total_tokens > 0
        assert (getattr(usage, "cost", None) == 0) == (expected == "hit")
    assert texts[0] == texts[1] == messages[0]["content"]
    assert received(module_mock, messages[0]["content"]) == 1
    # The non-streamed request is not the streamed one.
    assert chat(gw, messages).headers["x-interlock-cache"] == "miss"


def test_anthropic_messages_hit_streamed_and_not(gw: GatewayProcess, module_mock: MockVendor) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)
    text = prompt()[0]["content"]
    for _ in range(2):
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, extra_body={"temperature": 0},
                                                       messages=[{"role": "user", "content": text}])
        assert raw.parse().content[0].text == text  # type: ignore[union-attr]
    assert raw.headers["x-interlock-cache"] == "hit"
    events = []
    for _ in range(2):
        with client.messages.stream(model=MODEL, max_tokens=100, extra_body={"temperature": 0},
                                    messages=[{"role": "user", "content": text}]) as stream:
            events.append([e.type for e in stream])
            assert stream.get_final_message().content[0].text == text  # type: ignore[union-attr]
    assert events[0] == events[1] and "message_stop" in events[1]
    assert received(module_mock, text) == 2  # one per shape: messages, and messages streamed


def test_responses_api_hit(gw: GatewayProcess, module_mock: MockVendor) -> None:
    text = prompt()[0]["content"]
    out = [oa(gw).responses.with_raw_response.create(model=MODEL, input=text, temperature=0, store=False)
           for _ in range(2)]
    assert [r.headers["x-interlock-cache"] for r in out] == ["miss", "hit"]
    assert out[1].parse().output_text == text
    assert received(module_mock, text) == 1


def test_what_is_not_cached(gw: GatewayProcess, module_mock: MockVendor) -> None:
    messages = prompt()
    # Sampling at the vendor's default temperature, or above 0: a bypass that says why.
    for kw in ({"temperature": None}, {"temperature": 0.7}):
        raw = oa(gw).chat.completions.with_raw_response.create(model=MODEL, messages=messages,
                                                               **({} if kw["temperature"] is None else kw))
        assert (raw.headers["x-interlock-cache"], raw.headers["x-interlock-cache-reason"]) == ("bypass", "temperature")
    # ... unless the policy allows it.
    assert [chat(gw, messages, model="warm", temperature=0.7).headers["x-interlock-cache"]
            for _ in range(2)] == ["miss", "hit"]
    # n > 1 without a seed.
    raw = chat(gw, messages, n=2)
    assert raw.headers["x-interlock-cache-reason"] == "n_without_seed"
    # Errors and truncated streams are never stored.
    for model, stream in (("mock/status-400", False), ("mock/truncate", True)):
        for _ in range(2):
            with pytest.raises(openai.APIError):
                raw = chat(gw, [{"role": "user", "content": f"{model} {uuid.uuid4().hex}"}], model=model,
                           stream=stream)
                list(raw.parse())
    assert sum(r["body"]["model"] == "truncate" for r in module_mock.requests) >= 2
    assert sum(r["body"]["model"] == "status-400" for r in module_mock.requests) >= 2


def test_request_controls(gw: GatewayProcess, module_mock: MockVendor) -> None:
    messages = prompt()
    text = messages[0]["content"]

    def status(**headers: str) -> str:
        raw = chat(gw, messages, extra_headers=headers)
        return f"{raw.headers['x-interlock-cache']}:{raw.headers.get('x-interlock-cache-reason', '')}"

    assert status(**{"cache-control": "no-store"}) == "bypass:no-store"
    assert status() == "miss:"  # no-store stored nothing
    assert status() == "hit:"
    assert status(**{"cache-control": "no-cache"}) == "miss:"  # not read, but stored again
    assert received(module_mock, text) == 3
    assert status(**{"x-interlock-cache": "off"}) == "bypass:request"
    assert status(**{"x-interlock-cache-namespace": "alice"}) == "miss:"
    assert status(**{"x-interlock-cache-namespace": "alice"}) == "hit:"
    assert status(**{"x-interlock-cache-namespace": "bob", "x-interlock-cache-ttl": "1"}) == "miss:"
    time.sleep(1.2)
    assert status(**{"x-interlock-cache-namespace": "bob"}) == "miss:"  # it lived one second
    for header, value in (("x-interlock-cache-ttl", "0"), ("x-interlock-cache-ttl", "soon"),
                          ("x-interlock-cache-namespace", "a b"), ("x-interlock-cache", "maybe")):
        with pytest.raises(openai.BadRequestError) as info:
            chat(gw, messages, extra_headers={header: value})
        assert info.value.body["param"] == header  # type: ignore[index]


def test_projects_never_share_answers_and_zdr_stores_nothing(gw: GatewayProcess, module_mock: MockVendor) -> None:
    keys = {}
    for pid, body in (("cache-a", {}), ("cache-b", {}), ("cache-zdr", {"zero_data_retention": True})):
        assert api(gw, "POST", "/admin/v1/projects", {"id": pid, **body})[0] == 201
        status, key = api(gw, "POST", "/admin/v1/keys", {"project": pid})
        assert status == 201
        keys[pid] = key["key"]
    wait_until_known(gw, *keys.values())
    messages = prompt()
    assert [chat(gw, messages, keys[p]).headers["x-interlock-cache"]
            for p in ("cache-a", "cache-a", "cache-b")] == ["miss", "hit", "miss"]
    before = api(gw, "GET", "/admin/v1/cache")[1]["entries"]
    zdr = [chat(gw, messages, keys["cache-zdr"]) for _ in range(2)]
    assert {(r.headers["x-interlock-cache"], r.headers["x-interlock-cache-reason"]) for r in zdr} == {
        ("bypass", "zero_data_retention")}
    assert api(gw, "GET", "/admin/v1/cache")[1]["entries"] == before
    # Deleting one project's answers leaves the other's.
    status, out = api(gw, "DELETE", "/admin/v1/cache?project=cache-a")
    assert status == 200 and out["deleted"] == 1
    assert chat(gw, messages, keys["cache-a"]).headers["x-interlock-cache"] == "miss"
    assert chat(gw, messages, keys["cache-b"]).headers["x-interlock-cache"] == "hit"
    assert api(gw, "DELETE", "/admin/v1/cache?model=nobody/none")[1]["deleted"] == 0
    assert api(gw, "DELETE", "/admin/v1/cache?colour=red")[0] == 400
    assert api(gw, "GET", "/admin/v1/cache", key=keys["cache-a"])[0] == 403


def test_a_tightened_guardrail_blocks_a_cached_answer(gw: GatewayProcess) -> None:
    assert api(gw, "POST", "/admin/v1/projects", {"id": "cache-guard"})[0] == 201
    _, key = api(gw, "POST", "/admin/v1/keys", {"project": "cache-guard"})
    wait_until_known(gw, key["key"])
    messages = [{"role": "user", "content": LEAK[::-1] + uuid.uuid4().hex}]  # the answer holds a key
    assert chat(gw, messages, key["key"], model="mocklab/reverse").headers["x-interlock-cache"] == "miss"
    status, _ = api(gw, "PATCH", "/admin/v1/projects/cache-guard", {"guardrails": {"secrets": {"action": "block"}}})
    assert status == 200
    deadline = time.monotonic() + 10
    while True:
        try:
            raw = chat(gw, messages, key["key"], model="mocklab/reverse")
        except openai.BadRequestError as err:
            assert err.body["code"] == "content_blocked"  # type: ignore[index]
            assert err.response.headers["x-interlock-cache"] == "hit"
            break
        assert raw.headers["x-interlock-cache"] == "hit"
        assert time.monotonic() < deadline, "the tightened policy never reached the worker"
        time.sleep(0.2)


def test_statistics_and_metrics(gw: GatewayProcess) -> None:
    messages = prompt()
    chat(gw, messages)
    chat(gw, messages)
    status, stats = api(gw, "GET", "/admin/v1/cache")
    assert status == 200 and stats["backend"] == "memory" and stats["hits"] >= 1 and stats["entries"] >= 1
    assert stats["bytes"] > 0 and 0 < stats["hit_rate"] < 1 and stats["saved_usd"] > 0
    with urllib.request.urlopen(gw.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert 'interlock_cache_requests_total{result="hit"}' in text
    assert "interlock_cache_saved_usd" in text and "interlock_cache_entries" in text
