"""Console sign-in, sessions, CSRF and project isolation over HTTP, against a gateway process.

A small cookie-keeping client (``Browser``) plays the browser: it fetches the sign-in
form, posts the key with the form's CSRF token, and keeps the session cookie.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway

pytestmark = pytest.mark.slow
MODEL = "simulator/openai/gpt-4.1-mini"


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def cookies(self) -> dict[str, str]:
        """Each Set-Cookie header, by cookie name, as sent."""
        return {v.split("=", 1)[0]: v for k, v in self.headers if k.lower() == "set-cookie"}

    @property
    def text(self) -> str:
        return html.unescape(self.body.decode())

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Browser:
    gw: GatewayProcess
    jar: dict[str, str] = field(default_factory=dict)
    #: The client address (the sign-in limiter counts per address; the loopback net has many).
    source: str = "127.0.0.1"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=30, source_address=(self.source, 0))
        sent = {"host": f"127.0.0.1:{self.gw.port}", **(headers or {})}
        if self.jar:
            sent["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        answer = Answer(resp.status, resp.getheaders(), resp.read())
        conn.close()
        for raw in answer.cookies().values():
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value
        return answer

    def form(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, urlencode(fields).encode(),
                            {"content-type": "application/x-www-form-urlencoded", **(headers or {})})

    def signin_token(self, next_path: str = "") -> str:
        page = self.request("GET", "/console/signin" + (f"?next={next_path}" if next_path else ""))
        assert page.status == 200
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None
        return found.group(1)

    def sign_in(self, key: str, next_path: str = "/console/playground") -> Answer:
        token = self.signin_token()
        return self.form("/console/signin", {"csrf_token": token, "key": key, "next": next_path})

    def csrf(self) -> str:
        page = self.request("GET", "/console/playground")
        assert page.status == 200, page.status
        found = re.search(r'data-csrf="([^"]+)"', page.text)
        assert found is not None
        return found.group(1)

    def chat(self, csrf: str | None, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        sent = {"content-type": "application/json", **(headers or {})}
        if csrf is not None:
            sent["x-csrf-token"] = csrf
        request = body or {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
        return self.request("POST", "/console/api/chat", json.dumps(request).encode(), sent)


def admin(gw: GatewayProcess, method: str, path: str, body: Any = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                 headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read() or b"null")
    conn.close()
    assert resp.status < 300, (resp.status, data)
    return data


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("console-auth"),
                       "simulator: {enabled: true, time_scale: 0}\nlogging: {flush_interval: 0.2}\n"
                       "console: {public_catalog: false, session_hours: 1}\n")
    yield gw
    gw.stop()


def test_sign_in_sets_a_strict_httponly_expiring_cookie(gw: GatewayProcess) -> None:
    browser = Browser(gw)
    answer = browser.sign_in(MASTER_KEY)
    assert answer.status == 303 and answer.header("location") == "/console/playground"
    cookie = answer.cookies()["interlock_session"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"):
        assert attribute in cookie, cookie
    assert "Secure" not in cookie
    assert MASTER_KEY not in cookie
    # The pre-session sign-in cookie is cleared.
    assert "Max-Age=0" in answer.cookies()["interlock_signin"]
    page = browser.request("GET", "/console/playground")
    assert page.status == 200 and "admin (" in page.text and "Sign out" in page.text
    # Over TLS (a proxy's x-forwarded-proto), the cookie is Secure too.
    tls = Browser(gw)
    token = tls.signin_token()
    secure = tls.form("/console/signin", {"csrf_token": token, "key": MASTER_KEY, "next": "/models"},
                      {"x-forwarded-proto": "https"})
    assert secure.status == 303 and "Secure" in secure.cookies()["interlock_session"]


def test_bad_key_is_a_401_page_naming_the_field_and_attempts_are_limited(gw: GatewayProcess) -> None:
    browser = Browser(gw, source="127.0.0.2")
    answer = browser.sign_in("ik-not-a-key")
    assert answer.status == 401 and "'key' field was not accepted" in answer.text
    assert "interlock_session" not in answer.cookies()
    empty = browser.sign_in("")
    assert empty.status == 400 and "'key'" in empty.text
    # Ten failures per address within five minutes, then 429 (even for the right key).
    for _ in range(9):
        assert browser.sign_in("ik-wrong").status == 401
    limited = browser.sign_in(MASTER_KEY)
    assert limited.status == 429 and limited.header("retry-after")
    # Other addresses are not affected.
    assert Browser(gw, source="127.0.0.3").sign_in(MASTER_KEY).status == 303


def test_login_csrf_and_cross_site_posts_are_refused(gw: GatewayProcess) -> None:
    browser = Browser(gw)
    token = browser.signin_token()
    # A token without this browser's sign-in cookie (another site's form) is refused.
    stranger = Browser(gw)
    refused = stranger.form("/console/signin", {"csrf_token": token, "key": MASTER_KEY})
    assert refused.status == 403 and "csrf_token" in refused.text
    missing = browser.form("/console/signin", {"key": MASTER_KEY})
    assert missing.status == 403
    cross = browser.form("/console/signin", {"csrf_token": token, "key": MASTER_KEY},
                         {"origin": "https://evil.example"})
    assert cross.status == 403 and "Origin" in cross.text
    site = browser.form("/console/signin", {"csrf_token": token, "key": MASTER_KEY},
                        {"sec-fetch-site": "cross-site"})
    assert site.status == 403 and "cross-site" in site.text


def test_chat_needs_the_session_csrf_token(gw: GatewayProcess) -> None:
    browser = Browser(gw)
    assert browser.sign_in(MASTER_KEY).status == 303
    csrf = browser.csrf()
    missing = browser.chat(None)
    assert missing.status == 403 and missing.json()["error"]["param"] == "X-CSRF-Token"
    wrong = browser.chat("not-the-token")
    assert wrong.status == 403 and wrong.json()["error"]["code"] == "csrf_token_invalid"
    cross = browser.chat(csrf, headers={"sec-fetch-site": "cross-site"})
    assert cross.status == 403 and cross.json()["error"]["code"] == "csrf_cross_site"
    ok = browser.chat(csrf)
    assert ok.status == 200, ok.text
    assert ok.header("x-interlock-cost-usd") and ok.header("x-interlock-vendor") == "simulator"
    # Bad input is the codec's 400 naming the parameter.
    bad = browser.chat(csrf, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "tools": "nope"})
    assert bad.status == 400 and bad.json()["error"]["param"] == "tools"
    # Without a session: 401, whatever the token.
    assert Browser(gw).chat(csrf).status == 401


def test_sign_out_revokes_the_session_server_side(gw: GatewayProcess) -> None:
    browser = Browser(gw)
    browser.sign_in(MASTER_KEY)
    csrf = browser.csrf()
    old = dict(browser.jar)
    assert browser.form("/console/signout", {}).status == 403  # no CSRF token
    out = browser.form("/console/signout", {"csrf_token": csrf})
    assert out.status == 303 and "Max-Age=0" in out.cookies()["interlock_session"]
    # The old cookie, replayed, is refused at once.
    replay = Browser(gw, old)
    assert replay.request("GET", "/console/playground").status == 303
    assert replay.chat(csrf).status == 401


def test_private_catalog_redirects_with_a_safe_next(gw: GatewayProcess) -> None:
    anonymous = Browser(gw)
    answer = anonymous.request("GET", "/models/openai/gpt-4.1-mini?x=1")
    assert answer.status == 303
    assert answer.header("location") == "/console/signin?next=/models/openai/gpt-4.1-mini%3Fx%3D1"
    # API clients with a key, and badges with a key, still work.
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    conn.request("GET", "/models", headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert conn.getresponse().status == 200
    conn.close()
    for hostile in ("//evil.com", "https://evil", "/\\evil.com", "/\r\nSet-Cookie:x", "javascript:alert(1)"):
        browser = Browser(gw)
        token = browser.signin_token()
        done = browser.form("/console/signin", {"csrf_token": token, "key": MASTER_KEY, "next": hostile})
        assert done.status == 303 and done.header("location") == "/console/playground", hostile
    browser = Browser(gw)
    browser.sign_in(MASTER_KEY, "/models?lab=openai")
    assert browser.request("GET", "/models?lab=openai").status == 200


def test_project_keys_are_isolated_and_spend_in_their_project(gw: GatewayProcess) -> None:
    for pid in ("alpha", "beta"):
        admin(gw, "POST", "/admin/v1/projects", {"id": pid, "name": pid.title()})
    alpha_key = admin(gw, "POST", "/admin/v1/keys", {"project": "alpha", "name": "console"})
    beta_key = admin(gw, "POST", "/admin/v1/keys", {"project": "beta", "name": "console"})
    time.sleep(1.5)  # the gateway's poller loads the new keys
    alpha, beta = Browser(gw), Browser(gw)
    assert alpha.sign_in(alpha_key["key"]).status == 303
    assert beta.sign_in(beta_key["key"]).status == 303
    assert "alpha (" in alpha.request("GET", "/console/playground").text
    ran = alpha.chat(alpha.csrf())
    assert ran.status == 200
    rid = ran.header("x-interlock-request-id")
    assert rid
    mine = alpha.request("GET", f"/console/api/generation?id={rid}")
    assert mine.status == 200 and mine.json()["data"]["id"] == rid
    # Another project's request id reads as unknown.
    theirs = beta.request("GET", f"/console/api/generation?id={rid}")
    assert theirs.status == 404
    assert beta.request("GET", "/console/api/generation").json()["error"]["param"] == "id"
    # The spend is alpha's, in the request log.
    deadline = time.monotonic() + 10
    row: Any = None
    while time.monotonic() < deadline:
        logs = admin(gw, "GET", "/admin/v1/logs?project=alpha")
        row = next((r for r in logs["data"] if r["id"] == rid), None)
        if row is not None:
            break
        time.sleep(0.2)
    assert row is not None and row["project"] == "alpha" and row["key_id"] == alpha_key["id"]
    # Revoking the key ends its session.
    admin(gw, "DELETE", f"/admin/v1/keys/{alpha_key['id']}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alpha.request("GET", "/console/playground").status == 200:
        time.sleep(0.2)
    assert alpha.request("GET", "/console/playground").status == 303
