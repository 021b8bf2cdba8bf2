"""``/admin/v1/mcp``: a gateway run in-process, called through its RSGI entry with the admin and project keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.app import Gateway
from interlock.mcp.model import ToolCall
from tests.conftest import MASTER_KEY
from tests.inprocess import Proto, Scope, running_gateway

CONFIG = """
simulator: {enabled: true, time_scale: 0}
mcp:
  servers:
    docs: {url: "http://127.0.0.1:9/mcp", per_user: {type: api_key}, headers: {X-Static: "static-secret"}}
    cal:
      url: "http://127.0.0.1:9/cal"
      per_user: {type: oauth, token_url: "http://127.0.0.1:9/token", client_id: cid}
    plain: {url: "http://127.0.0.1:9/plain"}
  tool_packs:
    support: {project: acme, tools: ["docs/*", "cal/*"]}
    beta-pack: {project: beta, tools: ["plain/*"]}
  access_key_max_ttl_s: 7200
"""
USER_SECRET = "sk-user-very-secret-value-42"
OAUTH_SECRET = "oauth-refresh-very-secret"

Call = Any


class Api:
    def __init__(self, gw: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.gw, self.loop = gw, loop
        self.bodies: list[bytes] = []

    def __call__(self, method: str, path: str, body: Any = None, key: str = MASTER_KEY, query: str = "",
                 raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (b"" if body is None else orjson.dumps(body))

        async def run() -> Proto:
            proto = Proto(data)
            scope = Scope(method, path, {"authorization": f"Bearer {key}", "host": "127.0.0.1:4000",
                                         "content-type": "application/json", "content-length": str(len(data))})
            scope.query_string = query
            await self.gw.__rsgi__(scope, proto)  # type: ignore[arg-type]
            return proto

        proto = self.loop.run_until_complete(run())
        out = b"".join(proto.chunks)
        self.bodies.append(out)
        assert proto.status is not None
        return proto.status, orjson.loads(out) if out else None


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_gateway(CONFIG, tmp_path_factory.mktemp("mcp-admin")) as (gw, loop):
        call = Api(gw, loop)
        for pid in ("acme", "beta"):
            assert call("POST", "/admin/v1/projects", {"id": pid})[0] == 201
        yield call


def project_key(api: Api, project: str) -> str:
    status, data = api("POST", "/admin/v1/keys", {"project": project})
    assert status == 201
    loop = api.loop
    loop.run_until_complete(api.gw.governance.poll())
    return str(data["key"])


def test_users_crud_and_isolation(api: Api) -> None:
    acme, beta = project_key(api, "acme"), project_key(api, "beta")
    assert api("POST", "/admin/v1/mcp/registered-users", {"id": "u-1", "name": "Ada"}, key=acme)[0] == 201
    status, err = api("POST", "/admin/v1/mcp/registered-users", {"id": "u-1"}, key=acme)
    assert status == 409 and err["error"]["param"] == "id"
    status, err = api("POST", "/admin/v1/mcp/registered-users", {"id": "u-2"})
    assert status == 400 and err["error"]["param"] == "project"  # the admin key names the project
    assert api("POST", "/admin/v1/mcp/registered-users", {"id": "u-2", "project": "acme"})[0] == 201
    assert api("POST", "/admin/v1/mcp/registered-users", {"id": "u-1", "project": "beta"})[0] == 201
    status, err = api("POST", "/admin/v1/mcp/registered-users", {"id": "x", "project": "nope"})
    assert status == 404 and err["error"]["param"] == "project"
    status, err = api("POST", "/admin/v1/mcp/registered-users", {"id": "u-9", "project": "acme"}, key=beta)
    assert status == 403 and err["error"]["type"] == "permission_error"
    for bad, param in (({"id": "bad id!"}, "id"), ({"id": "u-5", "name": 7}, "name"), ({"id": "u", "x": 1}, "x")):
        status, err = api("POST", "/admin/v1/mcp/registered-users", bad, key=acme)
        assert status == 400 and err["error"]["param"] == param
    assert api("POST", "/admin/v1/mcp/registered-users", raw=b"{nope", key=acme)[0] == 400
    assert api("POST", "/admin/v1/mcp/registered-users", raw=b"[1]", key=acme)[0] == 400
    assert api("POST", "/admin/v1/mcp/registered-users", raw=b"x" * 70_000, key=acme)[0] == 413

    status, page = api("GET", "/admin/v1/mcp/registered-users", key=acme, query="limit=1")
    assert status == 200 and [u["id"] for u in page["data"]] == ["u-1"] and page["has_more"]
    _, page2 = api("GET", "/admin/v1/mcp/registered-users", key=acme, query=f"limit=1&after={page['last_id']}")
    assert [u["id"] for u in page2["data"]] == ["u-2"]
    assert [u["project"] for u in api("GET", "/admin/v1/mcp/registered-users", key=beta)[1]["data"]] == ["beta"]
    assert api("GET", "/admin/v1/mcp/registered-users", key=beta, query="project=acme")[0] == 403
    assert api("GET", "/admin/v1/mcp/registered-users", query="limit=0")[0] == 400
    assert len(api("GET", "/admin/v1/mcp/registered-users")[1]["data"]) == 3

    assert api("GET", "/admin/v1/mcp/registered-users/u-2", key=acme)[1]["name"] == ""
    assert api("GET", "/admin/v1/mcp/registered-users/u-2", key=beta)[0] == 404  # beta has no u-2: 404
    assert api("GET", "/admin/v1/mcp/registered-users/u-1", key=beta)[1]["project"] == "beta"
    assert api("GET", "/admin/v1/mcp/registered-users/u-2")[0] == 400  # admin: which project?
    assert api("DELETE", "/admin/v1/mcp/registered-users/u-2", key=beta)[0] == 404
    assert api("DELETE", "/admin/v1/mcp/registered-users/u-2", query="project=acme")[1]["deleted"] is True
    assert api("GET", "/admin/v1/mcp/registered-users/u-2", query="project=acme")[0] == 404


def test_credentials_never_shown(api: Api) -> None:
    acme, beta = project_key(api, "acme"), project_key(api, "beta")
    api("POST", "/admin/v1/mcp/registered-users", {"id": "cred-user"}, key=acme)
    path = "/admin/v1/mcp/registered-users/cred-user/credentials"
    status, out = api("PUT", f"{path}/docs", {"api_key": USER_SECRET}, key=acme)
    assert status == 200 and out["kind"] == "api_key" and out["server"] == "docs" and out["expires_at"] is None
    status, out = api("PUT", f"{path}/cal", {"oauth": {"access_token": "at-1", "refresh_token": OAUTH_SECRET,
                                                       "expires_in": 3600}}, key=acme)
    assert status == 200 and out["kind"] == "oauth" and time.time() < out["expires_at"] <= time.time() + 3600
    for body, server, param in (({"oauth": {"access_token": "a"}}, "docs", "oauth"),
                                ({"api_key": "k"}, "cal", "api_key"), ({"api_key": "k"}, "plain", "server"),
                                ({"api_key": "k", "oauth": {}}, "docs", "api_key"), ({}, "docs", "api_key"),
                                ({"api_key": ""}, "docs", "api_key"), ({"oauth": {"refresh_token": "r"}}, "cal",
                                                                       "oauth.access_token"),
                                ({"oauth": {"access_token": "a", "expires_in": -1}}, "cal", "oauth.expires_in"),
                                ({"oauth": "x"}, "cal", "oauth")):
        status, err = api("PUT", f"{path}/{server}", body, key=acme)
        assert (status, err["error"]["param"]) == (400, param), body
    assert api("PUT", f"{path}/nope", {"api_key": "k"}, key=acme)[0] == 404
    assert api("PUT", f"{path}/docs", {"api_key": "k"}, key=beta)[0] == 404  # beta has no such user
    status, listed = api("GET", path, key=acme)
    assert status == 200 and [(c["server"], c["kind"]) for c in listed["data"]] == [("cal", "oauth"),
                                                                                   ("docs", "api_key")]
    assert api("GET", path, key=beta)[0] == 404
    loop = api.loop
    cred = loop.run_until_complete(api.gw.mcp.store.credential("acme", "cred-user", "docs"))
    assert cred is not None and cred.api_key == USER_SECRET
    rows = loop.run_until_complete(api.gw.governance.store.fetch("SELECT sealed FROM mcp_credentials"))
    assert rows and USER_SECRET not in str(rows) and OAUTH_SECRET not in str(rows)
    assert api("DELETE", f"{path}/docs", key=acme)[1]["deleted"] is True
    assert api("DELETE", f"{path}/docs", key=acme)[0] == 404
    assert api("GET", "/admin/v1/mcp/registered-users/cred-user", key=acme)[1]["credentials"][0]["server"] == "cal"
    # Nothing any response said carried a secret.
    every = b"".join(api.bodies)
    for secret in (USER_SECRET, OAUTH_SECRET, "static-secret"):
        assert secret.encode() not in every


def test_access_keys(api: Api) -> None:
    acme, beta = project_key(api, "acme"), project_key(api, "beta")
    api("POST", "/admin/v1/mcp/registered-users", {"id": "k-user"}, key=acme)
    status, minted = api("POST", "/admin/v1/mcp/access-keys", {"tool_pack": "support", "registered_user": "k-user"},
                         key=acme)
    assert status == 201 and minted["key"].startswith("ik-mcp-") and minted["project"] == "acme"
    assert minted["expires_at"] == pytest.approx(time.time() + 3600, abs=5)
    assert set(minted) >= {"id", "key", "tool_pack", "registered_user", "project", "expires_at"}
    for body, status_, param in (
            ({"tool_pack": "beta-pack", "registered_user": "k-user"}, 404, "tool_pack"),   # another project's
            ({"tool_pack": "nope", "registered_user": "k-user"}, 404, "tool_pack"),
            ({"tool_pack": "support", "registered_user": "ghost"}, 404, "registered_user"),
            ({"tool_pack": "support", "registered_user": "k-user", "ttl_s": 59}, 400, "ttl_s"),
            ({"tool_pack": "support", "registered_user": "k-user", "ttl_s": 7201}, 400, "ttl_s"),
            ({"tool_pack": "support", "registered_user": "k-user", "ttl_s": 100.5}, 400, "ttl_s"),
            ({"tool_pack": "support", "registered_user": "k-user", "ttl_s": True}, 400, "ttl_s"),
            ({"registered_user": "k-user"}, 400, "tool_pack")):
        status, err = api("POST", "/admin/v1/mcp/access-keys", body, key=acme)
        assert (status, err["error"]["param"]) == (status_, param), body
    # The pack's project decides; beta's key cannot mint for acme's pack, the admin key can.
    assert api("POST", "/admin/v1/mcp/access-keys", {"tool_pack": "support", "registered_user": "k-user"},
               key=beta)[0] == 404
    status, by_admin = api("POST", "/admin/v1/mcp/access-keys", {"tool_pack": "support",
                                                                  "registered_user": "k-user", "ttl_s": 7200})
    assert status == 201 and by_admin["project"] == "acme"
    listed = api("GET", "/admin/v1/mcp/access-keys", key=acme)[1]["data"]
    assert {k["id"] for k in listed} == {minted["id"], by_admin["id"]}
    assert all("key" not in k for k in listed) and minted["key"].encode() not in api.bodies[-1]
    assert api("GET", "/admin/v1/mcp/access-keys", key=beta)[1]["data"] == []
    assert api("GET", f"/admin/v1/mcp/access-keys/{minted['id']}", key=beta)[0] == 404
    assert api("DELETE", f"/admin/v1/mcp/access-keys/{minted['id']}", key=beta)[0] == 404
    grant = api.loop.run_until_complete(api.gw.mcp.store.grant(minted["key"]))
    assert grant is not None and not grant.revoked and grant.user == "k-user" and grant.pack == "support"
    status, revoked = api("DELETE", f"/admin/v1/mcp/access-keys/{minted['id']}", key=acme)
    assert status == 200 and revoked["revoked"] and revoked["revoked_at"] is not None
    grant = api.loop.run_until_complete(api.gw.mcp.store.grant(minted["key"]))
    assert grant is not None and grant.revoked  # this worker: at once


def test_servers_admin_only(api: Api) -> None:
    acme = project_key(api, "acme")
    assert api("GET", "/admin/v1/mcp/servers", key=acme)[0] == 403
    status, listed = api("GET", "/admin/v1/mcp/servers")
    assert status == 200 and [s["name"] for s in listed["data"]] == ["cal", "docs", "plain"]
    assert listed["data"][1]["headers"] == ["X-Static"] and b"static-secret" not in api.bodies[-1]
    body = {"name": "search", "url": "http://127.0.0.1:9/s", "headers": {"X-Key": "admin-server-secret"}}
    status, created = api("POST", "/admin/v1/mcp/servers", body)
    assert status == 201 and created["source"] == "admin" and b"admin-server-secret" not in api.bodies[-1]
    assert api("POST", "/admin/v1/mcp/servers", body)[0] == 409
    assert api("POST", "/admin/v1/mcp/servers", {**body, "name": "docs"})[0] == 409
    status, err = api("POST", "/admin/v1/mcp/servers", {"name": "x", "url": "ftp://h"})
    assert status == 400 and err["error"]["param"] == "url"
    status, err = api("POST", "/admin/v1/mcp/servers", {"name": "x", "url": "http://h", "timeout_s": "slow"})
    assert status == 400 and err["error"]["param"] == "timeout_s"
    assert api("POST", "/admin/v1/mcp/servers", {"url": "http://h"})[1]["error"]["param"] == "name"
    assert api("PUT", "/admin/v1/mcp/servers/docs", {"url": "http://h"})[0] == 409
    assert api("DELETE", "/admin/v1/mcp/servers/docs")[0] == 409
    assert api("GET", "/admin/v1/mcp/servers/nope")[0] == 404
    status, put = api("PUT", "/admin/v1/mcp/servers/search", {"url": "http://127.0.0.1:9/s2"})
    assert status == 200 and put["url"] == "http://127.0.0.1:9/s2"
    assert api("GET", "/admin/v1/mcp/servers/search")[1]["url"] == "http://127.0.0.1:9/s2"
    # Packs use it; while they do, it cannot be deleted.
    assert api("POST", "/admin/v1/mcp/tool-packs", {"id": "searching", "tools": ["search/*"]}, key=acme)[0] == 201
    assert api("DELETE", "/admin/v1/mcp/servers/search")[0] == 409
    assert api("DELETE", "/admin/v1/mcp/tool-packs/searching", key=acme)[0] == 200
    assert api("DELETE", "/admin/v1/mcp/servers/search")[1]["deleted"] is True


def test_tool_packs(api: Api) -> None:
    acme, beta = project_key(api, "acme"), project_key(api, "beta")
    status, pack = api("POST", "/admin/v1/mcp/tool-packs", {"id": "triage", "tools": ["docs/find"],
                                                            "rename": {"docs/find": "lookup"}}, key=acme)
    assert status == 201 and pack["project"] == "acme" and pack["source"] == "admin"
    assert api("POST", "/admin/v1/mcp/tool-packs", {"id": "p2", "project": "acme", "tools": ["docs/*"]},
               key=beta)[0] == 403
    assert api("POST", "/admin/v1/mcp/tool-packs", {"id": "p2", "tools": ["docs/*"]})[0] == 400  # admin: project?
    assert api("POST", "/admin/v1/mcp/tool-packs", {"id": "support", "project": "acme",
                                                    "tools": ["docs/*"]})[0] == 409
    status, err = api("POST", "/admin/v1/mcp/tool-packs", {"id": "p3", "tools": ["nope/*"]}, key=acme)
    assert status == 400 and err["error"]["param"] == "tools[0]"
    status, err = api("POST", "/admin/v1/mcp/tool-packs", {"id": "p3", "tools": "docs/*"}, key=acme)
    assert status == 400 and err["error"]["param"] == "tools"
    assert [p["id"] for p in api("GET", "/admin/v1/mcp/tool-packs", key=beta)[1]["data"]] == ["beta-pack"]
    assert "triage" in [p["id"] for p in api("GET", "/admin/v1/mcp/tool-packs", key=acme)[1]["data"]]
    assert api("GET", "/admin/v1/mcp/tool-packs/triage", key=beta)[0] == 404
    assert api("PUT", "/admin/v1/mcp/tool-packs/triage", {"tools": ["plain/*"]}, key=beta)[0] == 404
    assert api("DELETE", "/admin/v1/mcp/tool-packs/triage", key=beta)[0] == 404
    assert api("PUT", "/admin/v1/mcp/tool-packs/triage", {"project": "beta", "tools": ["plain/*"]},
               key=acme)[0] == 403
    status, put = api("PUT", "/admin/v1/mcp/tool-packs/triage", {"tools": ["plain/*"]}, key=acme)
    assert status == 200 and put["tools"] == ["plain/*"] and put["project"] == "acme"
    assert api("PUT", "/admin/v1/mcp/tool-packs/support", {"tools": ["docs/*"]}, key=acme)[0] == 409
    assert api("GET", "/admin/v1/mcp/tool-packs/support", key=acme)[1]["source"] == "config"
    # Deleting a pack revokes its access keys.
    api("POST", "/admin/v1/mcp/registered-users", {"id": "p-user"}, key=acme)
    minted = api("POST", "/admin/v1/mcp/access-keys", {"tool_pack": "triage", "registered_user": "p-user"},
                 key=acme)[1]
    assert api("DELETE", "/admin/v1/mcp/tool-packs/triage", key=acme)[1]["deleted"] is True
    assert api("GET", "/admin/v1/mcp/tool-packs/triage", key=acme)[0] == 404
    assert api("GET", f"/admin/v1/mcp/access-keys/{minted['id']}", key=acme)[1]["revoked_at"] is not None


def test_calls_scoped(api: Api) -> None:
    acme, beta = project_key(api, "acme"), project_key(api, "beta")
    log = api.gw.mcp.calls
    now = time.time()
    for i, (project, status) in enumerate((("acme", "ok"), ("acme", "error"), ("beta", "ok"))):
        log.submit(ToolCall(id=f"c{i}", at=now - i, project=project, key_id="k", pack="support", user="u",
                            server="docs", tool="find", name="find", status=status))
    api.loop.run_until_complete(log.flush())
    assert [c["id"] for c in api("GET", "/admin/v1/mcp/calls", key=acme)[1]["data"]] == ["c0", "c1"]
    assert [c["id"] for c in api("GET", "/admin/v1/mcp/calls", key=beta)[1]["data"]] == ["c2"]
    assert api("GET", "/admin/v1/mcp/calls", key=beta, query="project=acme")[0] == 403
    assert [c["id"] for c in api("GET", "/admin/v1/mcp/calls", key=acme, query="status=error")[1]["data"]] == ["c1"]
    assert [c["id"] for c in api("GET", "/admin/v1/mcp/calls", key=acme,
                                 query=f"before={now - 0.5}")[1]["data"]] == ["c1"]
    assert len(api("GET", "/admin/v1/mcp/calls")[1]["data"]) == 3
    for query, param in (("before=x", "before"), ("limit=abc", "limit"), ("nope=1", "nope")):
        assert api("GET", "/admin/v1/mcp/calls", key=acme, query=query)[1]["error"]["param"] == param
    assert api("POST", "/admin/v1/mcp/calls", key=acme)[0] == 405
    assert api("GET", "/admin/v1/mcp/nothing", key=acme)[0] == 404
    assert api("GET", "/admin/v1/mcp/calls", key="ik-wrong")[0] == 401


def test_state_dir_key_file(api: Api, tmp_path: Path) -> None:
    key_file = api.gw.settings.server.state_dir / "encryption-key"
    assert key_file.exists() and len(key_file.read_text()) == 64


GARBAGE: list[Any] = [None, 0, -1, 1.5, True, "", "x" * 300, [], [1], {}, {"a": {"b": []}}, "\u0000", "é/../",
                      {"api_key": None}, {"oauth": None}, {"oauth": {"access_token": 1}}]
FIELDS = ("id", "project", "name", "api_key", "oauth", "tool_pack", "registered_user", "ttl_s", "url", "command",
          "transport", "headers", "env", "per_user", "tools", "rename", "describe", "description", "timeout_s")


def test_no_input_makes_a_500(api: Api) -> None:
    """Every endpoint, every method, bodies of wrong shapes and types: a 4xx answer each time, never a 500."""
    acme = project_key(api, "acme")
    api("POST", "/admin/v1/mcp/registered-users", {"id": "g-user"}, key=acme)
    paths = ["/admin/v1/mcp", "/admin/v1/mcp/registered-users", "/admin/v1/mcp/registered-users/g-user",
             "/admin/v1/mcp/registered-users/g-user/credentials",
             "/admin/v1/mcp/registered-users/g-user/credentials/docs",
             "/admin/v1/mcp/registered-users/g-user/credentials/cal",
             "/admin/v1/mcp/registered-users/g-user/other/x/y", "/admin/v1/mcp/access-keys",
             "/admin/v1/mcp/access-keys/nope/x", "/admin/v1/mcp/servers", "/admin/v1/mcp/servers/g-srv",
             "/admin/v1/mcp/servers/a/b", "/admin/v1/mcp/tool-packs", "/admin/v1/mcp/tool-packs/g-pack",
             "/admin/v1/mcp/calls", "/admin/v1/mcp/calls/x"]
    statuses: set[int] = set()
    for key in (MASTER_KEY, acme):
        for path in paths:
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                for field in FIELDS:
                    for value in GARBAGE[:: 3 if method == "GET" else 1]:
                        status, body = api(method, path, {field: value}, key=key, query="project=acme")
                        statuses.add(status)
                        assert status < 500, (method, path, field, value, body)
                        if status >= 400:
                            assert body["error"]["message"], (method, path, field, value)
    for raw in (b"\xff\xfe", b"null", b"1e999", b'{"id": "a", "id": "b"}', b'"text"'):
        for path in paths:
            assert api("POST", path, raw=raw, key=acme, query="project=acme")[0] < 500
    for query in ("limit=-1", "limit=1e3", "after=%00", "project=", "before=nan", "project=acme&project=beta",
                  "%zz"):
        for path in paths:
            assert api("GET", path, key=MASTER_KEY, query=query)[0] < 500
    assert 400 in statuses and 404 in statuses and 405 in statuses
