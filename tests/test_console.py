"""The console's catalog pages, driven in process through the gateway's RSGI entry.

Status, content type and security headers of every page; prices and facts on the
model page; filters of the index; escaping of a hostile model name coming from
the config's ``catalog:`` overrides; ``console.enabled: false`` and
``console.public_catalog: false``; the static files' types and cache headers.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.app import Gateway, validate
from interlock.catalog import load_catalog
from interlock.catalog.catalog import CAPABILITIES
from interlock.config import ConfigError, load_settings
from interlock.console.views import CAPABILITY_LABELS, Filters, Index, model_view
from interlock.vendors.registry import VENDOR_TABLE
from tests.conftest import MASTER_KEY

CATALOG = load_catalog()
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>\"'&"

HOSTILE_CONFIG = f"""
catalog:
  models:
    evil/xss:
      name: {json.dumps(HOSTILE)}
      lab: evil
      context_window: 8192
      routes:
        openai: {{vendor_model_id: "x<b>y", price: {{input: 1, output: 2}}}}
"""


class Scope:
    def __init__(self, method: str, path: str, query: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.query_string = query
        self.client = "127.0.0.1:50000"
        self.scheme = "http"
        self.headers = headers


class Proto:
    """Enough of the RSGI protocol for GET pages: no body, captured answer."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self._gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def __call__(self) -> bytes:
        return b""

    def __aiter__(self) -> Any:
        async def none() -> Any:
            if False:
                yield b""
        return none()

    def client_disconnect(self) -> asyncio.Future[None]:
        return self._gone

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, dict(headers), body

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.response_bytes(status, headers, body.encode())

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Any:
        raise AssertionError("pages are not streamed")


class Page:
    def __init__(self, proto: Proto) -> None:
        self.status = proto.status
        self.headers = proto.headers
        self.text = proto.body.decode()


Get = Callable[..., Page]


@pytest.fixture
def make_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Get]]:
    monkeypatch.setenv("INTERLOCK_MASTER_KEY", MASTER_KEY)
    loop = asyncio.new_event_loop()
    built: list[Gateway] = []

    def make(extra: str = "") -> Get:
        config = tmp_path / f"interlock{len(built)}.yaml"
        config.write_text("simulator: {enabled: true, time_scale: 0}\n" + extra)
        settings = load_settings(config, vendor_table=VENDOR_TABLE,
                                 environ={"INTERLOCK_HOME": str(tmp_path / "state")})
        gw = Gateway(settings)
        built.append(gw)

        def get(path: str, query: str = "", headers: dict[str, str] | None = None) -> Page:
            async def run() -> Proto:
                proto = Proto()
                scope = Scope("GET", path, query, {"host": "127.0.0.1:4000", **(headers or {})})
                await gw.__rsgi__(scope, proto)  # type: ignore[arg-type]
                return proto
            return Page(loop.run_until_complete(run()))
        return get

    yield make
    for gw in built:
        loop.run_until_complete(gw.http.close())
    loop.close()


def assert_page_headers(page: Page) -> None:
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


def test_index_lists_every_model_with_security_headers(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway("")
    page = get("/models")
    assert page.status == 200
    assert_page_headers(page)
    assert 'href="/models/openai/gpt-4.1-mini"' in page.text
    assert 'href="/models/anthropic/' in page.text
    assert "<form" in page.text and 'method="get"' in page.text
    assert page.text.count("<tr>") > 300


def test_index_filters_and_sorts_by_query_string(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway("")
    page = get("/models", "lab=anthropic&sort=price_in")
    assert page.status == 200
    assert 'href="/models/anthropic/' in page.text
    assert 'href="/models/openai/' not in page.text
    assert '<option value="anthropic" selected>' in page.text
    searched = get("/models", "q=gpt-4.1-mini&capability=tools&modality=image&vendor=openai")
    assert 'href="/models/openai/gpt-4.1-mini"' in searched.text
    assert 'href="/models/anthropic/' not in searched.text
    nothing = get("/models", "lab=no-such-lab")
    assert nothing.status == 200 and "No model matches" in nothing.text
    bogus = get("/models", "sort=bogus")
    assert bogus.status == 400 and "&#39;sort&#39; must be one of" in bogus.text


def test_index_sorts(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway("")

    def ids(query: str) -> list[str]:
        return re.findall(r'<span class="id">([^<]+)</span>', get("/models", query).text)

    newest = ids("lab=openai&sort=newest")
    assert newest == sorted(newest, key=lambda i: (CATALOG.get(i).release_date or "", i), reverse=True)
    cheapest = ids("lab=openai&sort=price_in")
    prices = [CATALOG.get(i).reference_route.price.input for i in cheapest if CATALOG.get(i).reference_route]
    known = [p for p in prices if p is not None]
    assert known == sorted(known) and len(known) > 5


def test_every_capability_has_a_label() -> None:
    assert set(CAPABILITY_LABELS) == CAPABILITIES


def test_model_page_shows_prices_context_and_samples(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway("")
    page = get("/models/openai/gpt-4.1-mini")
    assert page.status == 200
    assert_page_headers(page)
    text = page.text
    for figure in ("$0.40", "$1.60", "$0.10", "1,047,576", "1.05M ctx", "text+image+pdf in · text out",
                   "2025-04-14", "2024-04"):
        assert figure in text, figure
    plain = text.replace("&#34;", '"')
    assert 'base_url="http://127.0.0.1:4000/v1"' in plain
    # Vercel AI SDK and LangChain samples name this gateway and the model too.
    assert 'createOpenAI({ baseURL: "http://127.0.0.1:4000/v1"' in plain
    assert 'interlock.chat("openai/gpt-4.1-mini")' in plain
    assert 'ChatOpenAI(base_url="http://127.0.0.1:4000/v1", api_key="YOUR_INTERLOCK_KEY", model="openai/gpt-4.1-mini")' in plain
    assert "http://127.0.0.1:4000/embed/openai/gpt-4.1-mini.svg" in text
    assert "Simulator" in text  # no live vendor: the simulator answers for the model here


def test_unknown_model_is_a_404_page(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway("")
    page = get("/models/nobody/<script>nothing</script>")
    assert page.status == 404
    assert_page_headers(page)
    assert "<script>nothing" not in page.text and "&lt;script&gt;nothing" in page.text


def test_hostile_model_name_from_config_is_escaped(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway(HOSTILE_CONFIG)
    for page in (get("/models", "lab=evil"), get("/models/evil/xss")):
        assert page.status == 200
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;script&gt;alert(" in page.text
        assert "x<b>y" not in page.text
    # The HTML embed snippet escapes the name for the page it is pasted into, then again for this page.
    assert "&amp;lt;script&amp;gt;" in get("/models/evil/xss").text


def test_disabled_console_has_no_routes(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway("console: {enabled: false}\n")
    for path in ("/models", "/models/openai/gpt-4.1-mini", "/compare", "/static/console.css", "/console/signin",
                 "/console/playground", "/console/api/generation"):
        assert get(path).status == 404, path


def test_private_catalog_asks_for_a_key(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway("console: {public_catalog: false}\n")
    # A browser without a session goes to the sign-in page, which brings it back here.
    refused = get("/models")
    assert refused.status == 303
    assert refused.headers["location"] == "/console/signin?next=/models"
    assert get("/models/openai/gpt-4.1-mini").status == 303
    # An API client with a wrong key gets the API's refusal, as a page.
    wrong = get("/models", headers={"authorization": "Bearer ik-wrong"})
    assert wrong.status == 401
    assert_page_headers(wrong)
    assert "Sign-in required" in wrong.text
    assert get("/models", headers={"authorization": f"Bearer {MASTER_KEY}"}).status == 200
    # Badges share the gate: an embed of a private catalog needs a key too.
    assert get("/embed/openai/gpt-4.1-mini.svg").status == 401
    assert get("/embed/openai/gpt-4.1-mini.svg", headers={"authorization": f"Bearer {MASTER_KEY}"}).status == 200


def test_static_files_have_types_and_cache_headers(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway("")
    css = get("/static/console.css")
    assert css.status == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["x-content-type-options"] == "nosniff"
    assert "max-age" in css.headers["cache-control"]
    etag = css.headers["etag"]
    versioned = get("/static/console.css", f"v={etag.strip(chr(34))}")
    assert "immutable" in versioned.headers["cache-control"]
    assert get("/static/console.css", headers={"if-none-match": etag}).status == 304
    assert get("/static/console.js").headers["content-type"] == "text/javascript; charset=utf-8"
    assert get("/static/favicon.svg").headers["content-type"] == "image/svg+xml"
    assert get("/static/../app.py").status == 404
    assert get("/static/nothing.css").status == 404
    # Pages link the static files with their hash, so a new build is fetched at once.
    assert f"/static/console.css?v={etag.strip(chr(34))}" in get("/models").text


@pytest.mark.parametrize("section", ["console: {enabld: true}\n", "console: {public_catalog: 1}\n",
                                     "console: [1]\n", "console: {session_hours: 0}\n",
                                     "console: {session_hours: 200}\n", "console: {session_hours: soon}\n"])
def test_console_section_is_validated(tmp_path: Path, section: str) -> None:
    config = tmp_path / "interlock.yaml"
    config.write_text(section)
    settings = load_settings(config, vendor_table=VENDOR_TABLE, environ={"INTERLOCK_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="console"):
        validate(settings)


def test_live_figures_reach_the_index_and_the_model_page() -> None:
    stats = {
        ("simulator", "openai/gpt-4.1-mini"): {"latency_ms": 123.0, "throughput_tps": 88.0, "ttft_p95_ms_30m": 450.0},
        ("anthropic", "claude-sonnet-4-5"): {"latency_ms": 1500.0, "ttft_p95_ms_5m": 2500.0},
    }
    live = {"simulator", "anthropic"}
    rows = {r["id"]: r for r in Index(CATALOG).view(live, stats, Filters())["rows"]}
    mini = rows["openai/gpt-4.1-mini"]
    assert (mini["ttft"], mini["tps"], mini["vendors_here"]) == ("123 ms", "88 tok/s", ["simulator"])
    sonnet = rows["anthropic/claude-sonnet-4-5"]
    assert (sonnet["ttft"], sonnet["tps"], sonnet["vendors_here"]) == ("1.50 s", "—", ["anthropic"])
    model = CATALOG.get("openai/gpt-4.1-mini")
    assert model is not None
    view = model_view(CATALOG, model, live, stats, "http://gw")
    simulator_row = view["routes"][0]
    assert simulator_row["simulator"] and simulator_row["live"]
    assert (simulator_row["ttft_p50"], simulator_row["ttft_p95"], simulator_row["tps"]) == ("123 ms", "450 ms",
                                                                                           "88 tok/s")
    sonnet_model = CATALOG.get("anthropic/claude-sonnet-4-5")
    assert sonnet_model is not None
    routes = model_view(CATALOG, sonnet_model, live, stats, "http://gw")["routes"]
    assert not any(r["simulator"] for r in routes)  # a live vendor serves it: no simulator row
    anthropic = next(r for r in routes if r["vendor"] == "anthropic")
    assert (anthropic["live"], anthropic["ttft_p50"], anthropic["ttft_p95"]) == (True, "1.50 s", "2.50 s")


def test_compare_puts_up_to_four_models_side_by_side(make_gateway: Callable[[str], Get]) -> None:
    get = make_gateway(HOSTILE_CONFIG)
    page = get("/compare", "m=openai/gpt-4.1-mini&m=anthropic/claude-sonnet-4-5&m=evil/xss&m=nope/<b>")
    assert page.status == 200
    assert_page_headers(page)
    assert page.text.count('<th scope="col">') == 3
    for figure in ("$0.40", "$1.60", "$3.00", "$15.00", "1.05M (1,047,576)"):
        assert figure in page.text, figure
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(" in page.text
    assert "Not in the catalog" in page.text and "nope/&lt;b&gt;" in page.text
    many = get("/compare", "&".join(f"m={m.id}" for m in CATALOG.models[:6]))
    assert many.status == 400 and many.text.count('<th scope="col">') == 4
    assert "At most 4 models can be compared (parameter 'm')" in many.text
    assert get("/compare").status == 200
    assert 'href="/compare?m=openai%2Fgpt-4.1-mini"' in get("/models/openai/gpt-4.1-mini").text


def test_stylesheets_are_balanced() -> None:
    """Every block of the console's stylesheets closes (an unclosed @media swallows every rule after it)."""
    from importlib import resources

    for sheet in ("console.css", "playground.css"):
        text = resources.files("interlock.console").joinpath("static", sheet).read_text()
        depth = 0
        for number, line in enumerate(text.splitlines(), 1):
            depth += line.count("{") - line.count("}")
            assert depth >= 0, f"{sheet}:{number} closes a block that is not open"
            if line.startswith("/*"):
                assert depth == 0, f"{sheet}:{number}: a section starts inside an open block"
        assert depth == 0, f"{sheet} ends with {depth} block(s) open"


def test_tools_sparkline_bars_errors_and_words() -> None:
    from interlock.console.tools import HEIGHT, spark

    first = 1_765_000_800 // 3600 - 7  # 23:00 UTC
    out = spark(first, [2, 0, 4], [1, 0, 0])
    assert [b["h"] for b in out["spark"]] == [HEIGHT / 2, 0.0, float(HEIGHT)]
    assert out["spark"][0]["eh"] == HEIGHT / 4 and out["spark"][0]["ey"] == HEIGHT - HEIGHT / 4
    assert [b["x"] for b in out["spark"]] == [0, 4, 8] and out["spark_width"] == 12
    assert out["spark"][0]["title"] == "23:00 UTC: 2 calls, 1 error"
    assert out["spark_label"] == "Calls per hour over 24 hours: at most 4, at 01:00 UTC"
    assert spark(first, [0, 0], [0, 0])["spark_label"] == "No calls in 24 hours"
