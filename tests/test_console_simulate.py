"""``POST /console/simulate``: the model page's simulator box, driven in process.

The event stream's text, tool calls and closing figures (token counts, a cost per
vendor equal to ``cost_of`` at that vendor's price); every refusal names its field
and never runs anything: unknown model, empty or oversized prompt, a bad tool or
schema, the wrong content type, a cross-site request, the per-address rate, the
simulator turned off, a private catalog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.app import Gateway
from interlock.catalog import load_catalog
from interlock.console.csrf import cross_site
from interlock.console.limits import AddressLimiter
from interlock.console.simulate import MAX_PROMPT_CHARS, RATE
from interlock.core.pricing import Usage, cost_of
from tests.fake_clock import FakeClock
from tests.inprocess import Proto, Scope, running_gateway

CATALOG = load_catalog()
MODEL = "openai/gpt-4.1-mini"
TOOL = {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"],
          "additionalProperties": False}


class Answer:
    def __init__(self, proto: Proto) -> None:
        self.status = proto.status
        self.headers = proto.headers
        raw = b"".join(proto.chunks)
        self.raw = raw
        self.events: list[dict[str, Any]] = []
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            for frame in raw.split(b"\n\n"):
                if frame:
                    assert frame.startswith(b"data: "), frame
                    self.events.append(orjson.loads(frame[6:]))

    @property
    def error(self) -> dict[str, Any]:
        err: dict[str, Any] = orjson.loads(self.raw)["error"]
        return err

    def text(self) -> str:
        return "".join(e["text"] for e in self.events if e["type"] == "delta")

    def done(self) -> dict[str, Any]:
        assert self.events and self.events[-1]["type"] == "done", self.events[-3:]
        return self.events[-1]


def post(gw: Gateway, loop: asyncio.AbstractEventLoop, body: Any, headers: dict[str, str] | None = None) -> Answer:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    hdrs = {"host": "127.0.0.1:4000", "content-type": "application/json", "content-length": str(len(raw)),
            **(headers or {})}

    async def run() -> Proto:
        proto = Proto(raw)
        await gw.__rsgi__(Scope("POST", "/console/simulate", hdrs), proto)  # type: ignore[arg-type]
        return proto
    return Answer(loop.run_until_complete(run()))


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[Gateway, asyncio.AbstractEventLoop]]:
    with running_gateway("simulator: {enabled: true, time_scale: 0}\n", tmp_path) as running:
        yield running


def test_a_streamed_run_sends_text_then_the_figures_and_each_vendors_cost(gateway: Any) -> None:
    gw, loop = gateway
    answer = post(gw, loop, {"model": MODEL, "prompt": "What does a gateway do?", "stream": True})
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert len([e for e in answer.events if e["type"] == "delta"]) > 1  # streamed in pieces
    assert answer.text().strip()
    done = answer.done()
    assert done["streamed"] is True and done["finish_reason"] in ("stop", "length")
    assert done["input_tokens"] > 0 and done["output_tokens"] > 0
    usage = Usage(input_tokens=done["input_tokens"], output_tokens=done["output_tokens"])
    model = CATALOG.get(MODEL)
    assert model is not None
    costs = {c["vendor"]: c["usd"] for c in done["costs"]}
    assert costs["OpenAI"] == cost_of(model.reference_route.price, usage).usd_str
    assert len(costs) == len([r for r in model.routes if r.price.input is not None or r.price.output is not None])
    amounts = [float(c["usd"]) for c in done["costs"]]
    assert amounts == sorted(amounts)  # cheapest first


def test_a_tool_and_a_schema_shape_the_answer(gateway: Any) -> None:
    gw, loop = gateway
    tool = post(gw, loop, {"model": MODEL, "prompt": "Weather in Paris?", "stream": False, "tool": TOOL})
    assert tool.status == 200
    calls = [e for e in tool.events if e["type"] == "tool_call"]
    assert calls and all(c["name"] == "get_weather" for c in calls)
    assert tool.done()["finish_reason"] == "tool_calls" and tool.done()["streamed"] is False
    shaped = post(gw, loop, {"model": "anthropic/claude-sonnet-4-5", "prompt": "Sum up", "schema": SCHEMA})
    assert shaped.status == 200
    assert set(orjson.loads(shaped.text())) == {"summary"}


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "nope/none", "prompt": "x"}, "model"),
    ({"prompt": "x"}, "model"),
    ({"model": MODEL, "prompt": "   "}, "prompt"),
    ({"model": MODEL, "prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt"),
    ({"model": MODEL, "prompt": "x", "stream": "yes"}, "stream"),
    ({"model": MODEL, "prompt": "x", "tool": ["not", "an", "object"]}, "tool"),
    ({"model": MODEL, "prompt": "x", "tool": {"description": "no name"}}, "tool"),
    ({"model": MODEL, "prompt": "x", "schema": {"type": 12}}, "schema"),
])
def test_bad_fields_are_refused_naming_the_field(gateway: Any, body: dict[str, Any], param: str) -> None:
    gw, loop = gateway
    answer = post(gw, loop, body)
    assert answer.status == 400, answer.raw
    assert answer.error["param"] == param
    assert answer.error["type"] == "invalid_request_error"


def test_refusals_before_anything_runs(gateway: Any) -> None:
    gw, loop = gateway
    body = {"model": MODEL, "prompt": "x"}
    assert post(gw, loop, b"{not json").status == 400
    assert post(gw, loop, b"[1]").status == 400
    form = post(gw, loop, body, {"content-type": "application/x-www-form-urlencoded"})
    assert form.status == 400 and form.error["param"] == "content-type"
    cross = post(gw, loop, body, {"sec-fetch-site": "cross-site"})
    assert cross.status == 403 and cross.error["code"] == "cross_site"
    assert post(gw, loop, body, {"origin": "https://evil.example"}).status == 403
    assert post(gw, loop, body, {"origin": "http://127.0.0.1:4000", "sec-fetch-site": "same-origin"}).status == 200


def test_the_rate_per_address_answers_429_with_retry_after(gateway: Any) -> None:
    gw, loop = gateway
    body = {"model": MODEL, "prompt": "x", "stream": False}
    for _ in range(RATE):
        assert post(gw, loop, body).status == 200
    refused = post(gw, loop, body)
    assert refused.status == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_runs_are_limited_per_address_in_a_sliding_minute() -> None:
    clock = FakeClock()
    runs = AddressLimiter(2, 60.0, clock)
    runs.add("a")
    runs.add("a")
    assert runs.retry_after("a") == 61
    assert runs.retry_after("b") is None  # per address
    clock.advance(30)
    assert runs.retry_after("a") == 31
    clock.advance(30)
    assert runs.retry_after("a") is None


@pytest.mark.parametrize(("headers", "ok"), [
    ({}, True),
    ({"sec-fetch-site": "same-origin"}, True),
    ({"sec-fetch-site": "same-site"}, False),
    ({"sec-fetch-site": "cross-site"}, False),
    ({"origin": "http://gw.example:8400", "host": "gw.example:8400"}, True),
    ({"origin": "http://gw.example:8400.evil", "host": "gw.example:8400"}, False),
    ({"origin": "null", "host": "gw.example:8400"}, False),
])
def test_cross_site(headers: dict[str, str], ok: bool) -> None:
    class Req:
        def header(self, name: str) -> str | None:
            return headers.get(name)
    assert (cross_site(Req()) is None) is ok  # type: ignore[arg-type]


def test_off_when_the_simulator_is_off_and_private_with_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "off").mkdir()
    (tmp_path / "private").mkdir()
    with running_gateway("simulator: {enabled: false}\n", tmp_path / "off") as (gw, loop):
        answer = post(gw, loop, {"model": MODEL, "prompt": "x"})
        assert answer.status == 503 and answer.error["code"] == "simulator_disabled"
    with running_gateway("simulator: {enabled: true, time_scale: 0}\nconsole: {public_catalog: false}\n",
                         tmp_path / "private") as (gw, loop):
        assert post(gw, loop, {"model": MODEL, "prompt": "x"}).status == 401


def _page(gw: Gateway, loop: asyncio.AbstractEventLoop, path: str) -> str:
    async def run() -> Proto:
        proto = Proto(b"")
        await gw.__rsgi__(Scope("GET", path, {"host": "127.0.0.1:4000"}), proto)  # type: ignore[arg-type]
        return proto
    proto = loop.run_until_complete(run())
    assert proto.status == 200
    return b"".join(proto.chunks).decode()


def test_the_model_page_has_the_box_only_when_the_simulator_is_on(tmp_path: Path) -> None:
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    with running_gateway("simulator: {enabled: true}\n", tmp_path / "on") as (gw, loop):
        page = _page(gw, loop, f"/models/{MODEL}")
        assert 'id="sim-form"' in page and f'data-model="{MODEL}"' in page
        assert "/static/simulate.js?v=" in page
    with running_gateway("simulator: {enabled: false}\n", tmp_path / "off") as (gw, loop):
        page = _page(gw, loop, f"/models/{MODEL}")
        assert 'id="sim-form"' not in page and "simulate.js" not in page
        assert "simulator.enabled: false" in page
