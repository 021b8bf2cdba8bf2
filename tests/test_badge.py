"""``GET /embed/{lab}/{model}.svg``: the embeddable badge (issue 17).

An in-process gateway (the simulator behind it) driven through its RSGI entry
with stand-in objects, as in ``test_internal_errors.py``. The badge is public:
no request here carries a key.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from interlock.api.badge import badge_parts, p50_ttft_ms, text_width, xml_text
from interlock.app import Gateway
from tests.conftest import MASTER_KEY, start_gateway
from tests.inprocess import Proto, Scope, running_gateway

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>&\"' ]]> \x01"
# YAML reads a JSON string: the name keeps every hostile character.
CONFIG = f"""\
simulator: {{enabled: true, time_scale: 0}}
logging: {{flush_interval: 0.05}}
catalog:
  models:
    evillab/evil:
      name: {orjson.dumps(HOSTILE).decode()}
      lab: "<b onload='x'>&lab"
      routes:
        openai: {{vendor_model_id: evil, price: {{input: 1.25, output: 2.0}}}}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, asyncio.AbstractEventLoop]]:
    with running_gateway(CONFIG, tmp_path_factory.mktemp("badge")) as running:
        yield running


def call(gw: tuple[Gateway, asyncio.AbstractEventLoop], path: str, method: str = "GET",
         headers: dict[str, str] | None = None) -> Proto:
    gateway, loop = gw

    async def run() -> Proto:
        proto = Proto(b"")
        await gateway.__rsgi__(Scope(method, path, headers or {}), proto)  # type: ignore[arg-type]
        return proto
    return loop.run_until_complete(run())


def body(proto: Proto) -> bytes:
    return b"".join(proto.chunks)


def texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_reference_price_of_gpt_4_1_mini_is_0_40(gateway: tuple[Gateway, asyncio.AbstractEventLoop]) -> None:
    model = gateway[0].catalog.get("openai/gpt-4.1-mini")
    assert model is not None and model.reference_route is not None
    assert model.reference_route.price.input == 400_000  # micro-USD per 1M tokens: $0.40
    proto = call(gateway, "/embed/openai/gpt-4.1-mini.svg")
    assert proto.status == 200
    root = ET.fromstring(body(proto))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    left, _, right, _ = texts(body(proto))
    assert left == "openai"
    assert right.split(" · ") == ["GPT-4.1 mini", "$0.40/M in", "via interlock"]  # no TTFT measured yet
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == root.get("aria-label") == f"openai: {right}"
    # Widths follow the text: the right part is wider than the left, and the whole is their sum.
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("fill") in ("#555", "#007ec6")]
    lw, rw = (int(r.get("width", "0")) for r in rects)
    assert int(root.get("width", "0")) == lw + rw and rw > lw
    assert rw == round(text_width(right)) + 20


def test_live_p50_ttft_is_shown_when_known(gateway: tuple[Gateway, asyncio.AbstractEventLoop]) -> None:
    # The figures as LiveStats.endpoint_stats gives them (real traffic through the badge: the next test).
    model = gateway[0].catalog.get("openai/gpt-4.1-mini")
    assert model is not None
    live = ("openai", "simulator")
    ttft = p50_ttft_ms(model, live, {("openai", "gpt-4.1-mini"): {"latency_ms": 320.4},
                                     ("simulator", "openai/gpt-4.1-mini"): {"latency_ms": 7.0}})
    assert badge_parts(model, ttft)[1] == "GPT-4.1 mini · $0.40/M in · p50 TTFT 320 ms · via interlock"
    # A live vendor outside the catalog's routes (the simulator) counts when no route has a figure.
    assert p50_ttft_ms(model, live, {("simulator", "openai/gpt-4.1-mini"): {"latency_ms": 7.0}}) == 7.0
    assert p50_ttft_ms(model, ("openai",), {("simulator", "openai/gpt-4.1-mini"): {"latency_ms": 7.0}}) is None


def test_real_traffic_fills_the_ttft(gateway: tuple[Gateway, asyncio.AbstractEventLoop]) -> None:
    gw, loop = gateway
    chat = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    async def run() -> Proto:
        proto = Proto(orjson.dumps(chat))
        scope = Scope("POST", "/v1/chat/completions",
                      {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"})
        await gw.__rsgi__(scope, proto)  # type: ignore[arg-type]
        return proto
    assert loop.run_until_complete(run()).status == 200
    loop.run_until_complete(asyncio.sleep(0.3))  # the request log writes its record before the loop stops
    assert "p50 TTFT" in texts(body(call(gateway, "/embed/openai/gpt-4o-mini.svg")))[2]


def test_hostile_model_name_from_config_is_escaped(gateway: tuple[Gateway, asyncio.AbstractEventLoop]) -> None:
    proto = call(gateway, "/embed/evillab/evil.svg")
    assert proto.status == 200
    raw = body(proto)
    assert b"<script" not in raw and b"]]>" not in raw and b"\x01" not in raw
    root = ET.fromstring(raw)  # still a well-formed document
    assert [e.tag for e in root.iter() if "script" in e.tag.lower()] == []
    right = texts(raw)[2]
    assert right == "<script>alert(1)</script>&\"' ]]>  · $1.25/M in · via interlock"
    assert texts(raw)[0] == "<b onload='x'>&lab"
    assert root.get("aria-label") == f"<b onload='x'>&lab: {right}"


def test_xml_text_escapes_every_markup_character() -> None:
    assert xml_text("<a href='x'>&\"") == "&lt;a href=&apos;x&apos;&gt;&amp;&quot;"
    assert xml_text("a\x00b\x1fc\ud800d") == "abcd"


def test_headers(gateway: tuple[Gateway, asyncio.AbstractEventLoop]) -> None:
    proto = call(gateway, "/embed/openai/gpt-4.1-mini.svg")
    h = proto.headers
    assert h["content-type"] == "image/svg+xml; charset=utf-8"
    assert h["cache-control"] == "public, max-age=60"
    assert h["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert h["x-content-type-options"] == "nosniff"
    assert h["etag"].startswith('"') and h["etag"].endswith('"') and len(h["etag"]) > 10


def test_if_none_match_is_a_304(gateway: tuple[Gateway, asyncio.AbstractEventLoop]) -> None:
    first = call(gateway, "/embed/openai/gpt-4.1-mini.svg")
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = call(gateway, "/embed/openai/gpt-4.1-mini.svg", headers={"if-none-match": header})
        assert again.status == 304 and body(again) == b"", header
        assert again.headers["etag"] == etag and again.headers["cache-control"] == "public, max-age=60"
    stale = call(gateway, "/embed/openai/gpt-4.1-mini.svg", headers={"if-none-match": '"stale"'})
    assert stale.status == 200 and body(stale) == body(first)


def test_head(gateway: tuple[Gateway, asyncio.AbstractEventLoop]) -> None:
    proto = call(gateway, "/embed/openai/gpt-4.1-mini.svg", method="HEAD")
    assert proto.status == 200 and proto.headers["content-type"] == "image/svg+xml; charset=utf-8"
    assert call(gateway, "/embed/openai/gpt-4.1-mini.svg", method="POST").status == 405


def test_percent_encoded_id(gateway: tuple[Gateway, asyncio.AbstractEventLoop]) -> None:
    proto = call(gateway, "/embed/openai%2Fgpt-4.1-mini.svg")
    assert proto.status == 200 and texts(body(proto))[2].startswith("GPT-4.1 mini ·")


@pytest.mark.parametrize("path", ["/embed/openai/no-such-model.svg", "/embed/openai/gpt-4.1-mini", "/embed/",
                                  "/embed/.svg"])
def test_unknown_model_is_a_404_in_openai_shape(gateway: tuple[Gateway, asyncio.AbstractEventLoop],
                                                path: str) -> None:
    proto = call(gateway, path)
    assert proto.status == 404 and proto.headers["content-type"] == "application/json"
    error = orjson.loads(body(proto))["error"]
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    assert error["param"] == "model"


def test_over_the_native_server(tmp_path: Path) -> None:
    """A real gateway process: HEAD sends the GET's length and no body, a 304 no body, no key needed."""
    gw = start_gateway(tmp_path, "simulator: {enabled: true, time_scale: 0}\n")
    url = f"{gw.url}/embed/openai/gpt-4.1-mini.svg"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and resp.headers["content-type"] == "image/svg+xml; charset=utf-8"
            svg, etag = resp.read(), resp.headers["etag"]
        ET.fromstring(svg)
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as resp:
            assert resp.status == 200 and resp.read() == b""
            assert int(resp.headers["content-length"]) == len(svg) and resp.headers["etag"] == etag
        with pytest.raises(urllib.error.HTTPError) as not_modified:
            urllib.request.urlopen(urllib.request.Request(url, headers={"If-None-Match": etag}), timeout=10)
        assert not_modified.value.code == 304 and not_modified.value.read() == b""
        assert not_modified.value.headers["etag"] == etag and "content-length" not in not_modified.value.headers
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{gw.url}/embed/openai/nope.svg", timeout=10)
        assert missing.value.code == 404
        assert orjson.loads(missing.value.read())["error"]["code"] == "model_not_found"
    finally:
        gw.stop()
