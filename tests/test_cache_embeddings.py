"""The response cache on ``POST /v1/embeddings``: the official openai SDK → a gateway process → the simulator.

The same cache as chat (one key space: the inbound API is part of the key), the same request controls and
headers, no temperature rule (embeddings are deterministic), and hits in the request log and spend report.
The simulator's vectors are seeded by the text, so a hit is told from a miss by the headers, the cost and
the log (a hit makes no vendor attempt), not by the vectors.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway, wait_until_known
from tests.test_ledger_gateway import wait_logged

pytestmark = pytest.mark.slow

SMALL = "openai/text-embedding-3-small"

CONFIG = f"""
simulator: {{enabled: true, time_scale: 0}}
logging: {{level: metadata, flush_interval: 0.05}}
policies:
  optin: {{targets: [{SMALL}]}}
cache:
  enabled: true
  policies: {{optin: {{enabled: false, allow_request_opt_in: true}}}}
  projects: {{emb-half: {{hit_cost_fraction: 0.5}}}}
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    g = start_gateway(tmp_path_factory.mktemp("cache-emb"), CONFIG)
    yield g
    g.stop()


def api(gw: GatewayProcess, method: str, path: str, body: Any = None, key: str = MASTER_KEY) -> tuple[int, Any]:
    return gw.call(method, path, body, key)


def project_key(gw: GatewayProcess, project: str, **settings: Any) -> str:
    assert api(gw, "POST", "/admin/v1/projects", {"id": project, **settings})[0] == 201
    status, key = api(gw, "POST", "/admin/v1/keys", {"project": project})
    assert status == 201
    return str(key["key"])


def embed(gw: GatewayProcess, text: Any, key: str = MASTER_KEY, **kw: Any) -> Any:
    client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)
    return client.embeddings.with_raw_response.create(model=kw.pop("model", SMALL), input=text, **kw)


def status(raw: Any) -> str:
    return f"{raw.headers['x-interlock-cache']}:{raw.headers.get('x-interlock-cache-reason', '')}"


def text() -> str:
    return f"embed me {uuid.uuid4().hex}"


def test_a_repeated_request_is_answered_from_the_cache(gw: GatewayProcess) -> None:
    words = text()
    first = embed(gw, words)
    assert status(first) == "miss:" and float(first.headers["x-interlock-cost-usd"]) > 0
    # ``user`` only labels the request: the same input from another end user is the same request.
    second = embed(gw, words, user="someone-else")
    assert status(second) == "hit:" and int(second.headers["x-interlock-cache-age"]) >= 0
    assert second.headers["x-interlock-cost-usd"] == "0"
    assert second.headers["x-interlock-model"] == first.headers["x-interlock-model"] == SMALL
    a, b = first.parse(), second.parse()
    assert b.data[0].embedding == a.data[0].embedding and len(b.data[0].embedding) == 1536
    assert b.model == a.model and b.usage.prompt_tokens == a.usage.prompt_tokens > 0
    assert getattr(b.usage, "cost", None) == 0 and getattr(a.usage, "cost", 0) > 0
    # The hit made no vendor call: its record has no attempt.
    hit = wait_logged(gw, second.headers["x-interlock-request-id"])
    assert hit["response_cache"] == "hit" and hit["attempts"] is None and hit["inbound"] == "openai.embeddings"


def test_every_parameter_that_changes_the_vectors_is_another_request(gw: GatewayProcess) -> None:
    words = text()
    assert status(embed(gw, words)) == "miss:"  # the SDK asks for base64 unless told otherwise
    assert status(embed(gw, words)) == "hit:"
    floats = [embed(gw, words, encoding_format="float") for _ in range(2)]
    assert [status(r) for r in floats] == ["miss:", "hit:"]
    assert floats[1].parse().data[0].embedding == floats[0].parse().data[0].embedding
    short = [embed(gw, words, dimensions=64) for _ in range(2)]
    assert [status(r) for r in short] == ["miss:", "hit:"]
    assert len(short[1].parse().data[0].embedding) == 64
    assert status(embed(gw, words, dimensions=128)) == "miss:"
    assert status(embed(gw, words + ".")) == "miss:"
    batch = [embed(gw, [words, "second"]) for _ in range(2)]
    assert [status(r) for r in batch] == ["miss:", "hit:"]
    assert [d.index for d in batch[1].parse().data] == [0, 1]
    assert status(embed(gw, ["second", words])) == "miss:"  # order is part of the request


def test_request_controls(gw: GatewayProcess) -> None:
    words = text()

    def ask(**headers: str) -> str:
        return status(embed(gw, words, extra_headers=headers))

    assert ask(**{"cache-control": "no-store"}) == "bypass:no-store"
    assert ask() == "miss:"  # no-store stored nothing
    assert ask() == "hit:"
    assert ask(**{"cache-control": "no-cache"}) == "miss:"  # not read, but stored again
    assert ask(**{"x-interlock-cache": "off"}) == "bypass:request"
    assert ask(**{"x-interlock-cache-namespace": "alice"}) == "miss:"
    assert ask(**{"x-interlock-cache-namespace": "alice"}) == "hit:"
    assert ask(**{"x-interlock-cache-namespace": "bob", "x-interlock-cache-ttl": "1"}) == "miss:"
    time.sleep(1.2)
    assert ask(**{"x-interlock-cache-namespace": "bob"}) == "miss:"  # it lived one second
    for header, value in (("x-interlock-cache-ttl", "0"), ("x-interlock-cache-namespace", "a b"),
                          ("x-interlock-cache", "maybe")):
        with pytest.raises(openai.BadRequestError) as info:
            embed(gw, words, extra_headers={header: value})
        assert info.value.body["param"] == header  # type: ignore[index]


def test_opt_in_where_the_policy_allows_it(gw: GatewayProcess) -> None:
    words = text()
    plain = embed(gw, words, model="optin")
    assert "x-interlock-cache" not in plain.headers  # off for this policy
    asked = [embed(gw, words, model="optin", extra_headers={"x-interlock-cache": "on"}) for _ in range(2)]
    assert [status(r) for r in asked] == ["miss:", "hit:"]


def test_projects_never_share_and_zdr_stores_nothing(gw: GatewayProcess) -> None:
    keys = {p: project_key(gw, p) for p in ("emb-a", "emb-b")}
    keys["emb-zdr"] = project_key(gw, "emb-zdr", zero_data_retention=True)
    wait_until_known(gw, *keys.values())
    words = text()
    assert [status(embed(gw, words, keys[p])) for p in ("emb-a", "emb-a", "emb-b")] == ["miss:", "hit:", "miss:"]
    before = api(gw, "GET", "/admin/v1/cache")[1]
    zdr = [status(embed(gw, words, keys["emb-zdr"])) for _ in range(2)]
    assert zdr == ["bypass:zero_data_retention"] * 2
    after = api(gw, "GET", "/admin/v1/cache")[1]
    assert (after["entries"], after["stores"]) == (before["entries"], before["stores"])
    # An admin DELETE of one project's answers covers its embeddings.
    status_code, out = api(gw, "DELETE", "/admin/v1/cache?project=emb-a")
    assert status_code == 200 and out["deleted"] == 1
    assert status(embed(gw, words, keys["emb-a"])) == "miss:"
    assert status(embed(gw, words, keys["emb-b"])) == "hit:"


def test_a_hit_is_logged_with_what_it_saved_and_charged_the_projects_fraction(gw: GatewayProcess) -> None:
    keys = {"emb-free": project_key(gw, "emb-free"), "emb-half": project_key(gw, "emb-half")}
    wait_until_known(gw, *keys.values())
    words = text()
    for project, key in keys.items():
        answers = [embed(gw, words, key) for _ in range(2)]
        assert [status(r) for r in answers] == ["miss:", "hit:"]
        miss, hit = (wait_logged(gw, r.headers["x-interlock-request-id"]) for r in answers)
        assert miss["response_cache"] == "miss" and miss["cost_picousd"] > 0 and miss["cache_saved_usd"] is None
        assert hit["response_cache"] == "hit" and hit["cache_saved_picousd"] == miss["cost_picousd"]
        assert hit["input_tokens"] == miss["input_tokens"] and hit["model"] == miss["model"] == SMALL
        charged = 0 if project == "emb-free" else round(miss["cost_picousd"] * 0.5)
        assert hit["cost_picousd"] == charged
        assert float(answers[1].headers["x-interlock-cost-usd"]) == pytest.approx(charged / 1e12)
    deadline = time.monotonic() + 10
    while True:  # the rollup is written with the records; poll in case a batch is still in flight
        _, spend = api(gw, "GET", "/admin/v1/spend?group_by=project")
        rows = {r["project"]: r for r in spend["data"] if r["project"] in keys}
        if len(rows) == 2 and all(r["cache_hits"] == 1 for r in rows.values()):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
    assert rows["emb-free"]["saved_picousd"] == rows["emb-half"]["saved_picousd"] > 0
    assert rows["emb-half"]["cost_picousd"] > rows["emb-free"]["cost_picousd"]
