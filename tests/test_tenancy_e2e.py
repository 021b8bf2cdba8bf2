"""Tenant isolation, end to end: every public endpoint that takes an id answers only the id's project.

A real gateway process (SQLite state, then PostgreSQL with ``store:``), two
projects with a key each, and the official ``openai`` SDK where it has the
call. For every id-taking endpoint - ``GET /v1/responses/{id}``,
``GET /v1/responses/{id}/input_items``, ``DELETE /v1/responses/{id}``,
``previous_response_id`` on ``POST /v1/responses`` and ``GET /v1/generation``
- the owner gets 200, another project gets exactly what an unknown id gets
(same status, same body but for the id) and changes nothing, the admin key
gets 200, and after the owner's delete everyone gets the unknown-id answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway, wait_until_known
from tests.ledger_proxy import PgProxy
from tests.pg_util import create_database, drop_database, url

pytestmark = pytest.mark.slow
MODEL = "openai/gpt-4.1-mini"
UNKNOWN = "resp_0000000000000000000000000"


def call(gw: GatewayProcess, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
    return gw.call(method, path, body, key)


def client(gw: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


def config(store: str) -> str:
    return f"simulator: {{enabled: true, time_scale: 0}}\nlogging: {{flush_interval: 0.1}}\n{store}\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_line(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    name = create_database()
    yield f"store: {url(name)}"
    drop_database(name)


def project_keys(gw: GatewayProcess) -> tuple[str, str]:
    keys = []
    for pid in ("alpha", "beta"):
        assert call(gw, "POST", "/admin/v1/projects", MASTER_KEY, {"id": pid})[0] == 201
        status, key = call(gw, "POST", "/admin/v1/keys", MASTER_KEY, {"project": pid})
        assert status == 201
        keys.append(key["key"])
    wait_until_known(gw, *keys)
    return keys[0], keys[1]


def same_as_unknown(gw: GatewayProcess, method: str, path: str, key: str, rid: str,
                    body: Any = None) -> None:
    """``key`` gets for ``rid`` exactly what it gets for an id that never existed (but for the id)."""
    status, answer = call(gw, method, path.format(rid), key, body and json.loads(json.dumps(body).replace("{}", rid)))
    unknown_status, unknown = call(gw, method, path.format(UNKNOWN), key,
                                   body and json.loads(json.dumps(body).replace("{}", UNKNOWN)))
    assert unknown_status in (400, 404) and "error" in unknown
    assert (status, json.dumps(answer).replace(rid, "ID")) == (unknown_status, json.dumps(unknown).replace(UNKNOWN, "ID"))


def follow_up(rid: str) -> dict[str, Any]:
    return {"model": MODEL, "input": "and then?", "previous_response_id": rid, "max_output_tokens": 16}


def test_stored_responses_and_generations_are_scoped_to_the_project(tmp_path: Path, store_line: str) -> None:
    gw = start_gateway(tmp_path, config(store_line))
    try:
        alpha, beta = project_keys(gw)
        created = client(gw, alpha).responses.with_raw_response.create(model=MODEL, input="alpha's own prompt",
                                                                        max_output_tokens=16)
        rid, request_id = created.parse().id, created.headers["x-interlock-request-id"]
        admin_rid = client(gw, MASTER_KEY).responses.create(model=MODEL, input="the admin's prompt",
                                                            max_output_tokens=16).id

        # The owner and the admin key: 200 everywhere, through the official SDK.
        for key in (alpha, MASTER_KEY):
            sdk = client(gw, key)
            assert sdk.responses.retrieve(rid).id == rid
            items = sdk.responses.input_items.list(rid)
            assert [[p.text for p in getattr(i, "content", ())] for i in items.data] == [["alpha's own prompt"]]
            assert sdk.responses.create(**follow_up(rid)).previous_response_id == rid
            assert call(gw, "GET", f"/v1/generation?id={request_id}", key)[0] == 200

        # Another project: what an unknown id gets, and the SDK raises what it raises for one.
        other = client(gw, beta)
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(rid)
        with pytest.raises(openai.NotFoundError):
            other.responses.input_items.list(rid)
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(rid)
        with pytest.raises(openai.BadRequestError) as info:
            other.responses.create(**follow_up(rid))
        assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]
        same_as_unknown(gw, "GET", "/v1/responses/{}", beta, rid)
        same_as_unknown(gw, "GET", "/v1/responses/{}/input_items", beta, rid)
        same_as_unknown(gw, "DELETE", "/v1/responses/{}", beta, rid)
        same_as_unknown(gw, "POST", "/v1/responses", beta, rid, follow_up("{}"))
        status, answer = call(gw, "GET", f"/v1/generation?id={request_id}", beta)
        _, unknown = call(gw, "GET", "/v1/generation?id=req_0000000000000000000000000", beta)
        assert status == 404 and json.dumps(answer).replace(request_id, "ID") == json.dumps(unknown).replace(
            "req_0000000000000000000000000", "ID")
        # ... with no side effect: beta's delete deleted nothing.
        assert client(gw, alpha).responses.retrieve(rid).id == rid

        # A response stored by the admin key without a project is the admin's alone.
        assert client(gw, MASTER_KEY).responses.retrieve(admin_rid).id == admin_rid
        for key in (alpha, beta):
            same_as_unknown(gw, "GET", "/v1/responses/{}", key, admin_rid)

        # The owner deletes it: then it is unknown to everyone, the owner and the admin included.
        client(gw, alpha).responses.delete(rid)
        for key in (alpha, beta, MASTER_KEY):
            same_as_unknown(gw, "GET", "/v1/responses/{}", key, rid)
            same_as_unknown(gw, "GET", "/v1/responses/{}/input_items", key, rid)
            same_as_unknown(gw, "DELETE", "/v1/responses/{}", key, rid)
            same_as_unknown(gw, "POST", "/v1/responses", key, rid, follow_up("{}"))

        # Generations read back from the request log (after a restart nothing is in memory): still scoped.
        time.sleep(0.5)
        gw.stop()
        gw = start_gateway(tmp_path, config(store_line))
        for key, expected in ((alpha, 200), (beta, 404), (MASTER_KEY, 200)):
            status, answer = call(gw, "GET", f"/v1/generation?id={request_id}", key)
            assert status == expected, answer
        # Stored responses outlive the process, and keep their owner.
        assert client(gw, MASTER_KEY).responses.retrieve(admin_rid).id == admin_rid
        same_as_unknown(gw, "GET", "/v1/responses/{}", alpha, admin_rid)
    finally:
        gw.stop()


def test_a_key_of_two_projects_sees_the_project_it_names(tmp_path: Path) -> None:
    """``x-interlock-project`` picks the project a multi-project key acts for, on reads as on writes."""
    gw = start_gateway(tmp_path, config(""))
    try:
        for pid in ("alpha", "beta"):
            call(gw, "POST", "/admin/v1/projects", MASTER_KEY, {"id": pid})
        _, key = call(gw, "POST", "/admin/v1/keys", MASTER_KEY, {"project": "alpha", "projects": ["beta"]})
        time.sleep(0.7)
        as_beta = openai.OpenAI(base_url=gw.base_url, api_key=key["key"], max_retries=0,
                                default_headers={"x-interlock-project": "beta"})
        rid = as_beta.responses.create(model=MODEL, input="beta's prompt", max_output_tokens=16).id
        assert as_beta.responses.retrieve(rid).id == rid
        with pytest.raises(openai.NotFoundError):
            client(gw, key["key"]).responses.retrieve(rid)  # acting for alpha, its default project
    finally:
        gw.stop()


def test_stored_responses_in_postgresql_answer_503_while_it_is_down(tmp_path: Path) -> None:
    """The database going away is the operator's 503 (retry), never a 500 or another project's answer."""
    name = create_database()
    proxy = PgProxy()
    proxy.up()
    gw = start_gateway(tmp_path, config(f"store: {url(name, proxy.port)}"))
    try:
        rid = client(gw, MASTER_KEY).responses.create(model=MODEL, input="hi", max_output_tokens=16).id
        assert client(gw, MASTER_KEY).responses.retrieve(rid).id == rid  # (the write is done)
        proxy.down()
        for method, path, body in (("GET", f"/v1/responses/{rid}", None), ("DELETE", f"/v1/responses/{rid}", None),
                                   ("POST", "/v1/responses", follow_up(rid))):
            status, answer = call(gw, method, path, MASTER_KEY, body)
            assert status == 503 and answer["error"]["code"] == "store_unavailable", answer
            assert "127.0.0.1" not in answer["error"]["message"]
        proxy.up()
        assert client(gw, MASTER_KEY).responses.retrieve(rid).id == rid
    finally:
        gw.stop()
        proxy.close()
        drop_database(name)
