"""Prefix affinity (routing/affinity.py): the fingerprint, the ranking step, its settings, end to end."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.app import Gateway
from interlock.config import ConfigError, load_settings
from interlock.core.context import RequestContext
from interlock.core.policy import Policy, PolicyTarget
from interlock.core.principal import Principal
from interlock.core.vendor import Timeouts
from interlock.routing.affinity import AffinitySettings, PrefixAffinity, fingerprint
from interlock.routing.circuit import BreakerSettings
from interlock.routing.setup import affinity_settings
from interlock.simulator import parse_fault_header
from interlock.vendors.registry import VENDOR_TABLE
from interlock.vendors.transport import UpstreamResponse
from tests.conftest import MASTER_KEY
from tests.fake_clock import FakeClock
from tests.inprocess import Proto, Scope, running_gateway
from tests.test_routing_fixtures import MODEL, World, simulator, world

#: About 1,500 tokens of system prompt: long enough to be cached by a vendor.
SYSTEM = "You are the support assistant of Example Corp. " * 130
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Find an order.",
                                           "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]


def conversation(last: str = "Where is my order?", system: str = SYSTEM, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": last},
    ], **extra}


def key(request: Mapping[str, Any], project: str | None = "p1", minimum: int = 1024) -> int | None:
    return fingerprint(request, project, minimum)


def reordered(value: Any) -> Any:
    """The same JSON with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


# ------------------------------------------------------------------ fingerprint


def test_fingerprint_ignores_key_order_and_the_last_user_turn() -> None:
    base = key(conversation(tools=TOOLS))
    assert isinstance(base, int)
    assert key(reordered(conversation(tools=TOOLS))) == base
    # The JSON text a caller sent does not matter either: only the parsed values.
    assert key(orjson.loads(orjson.dumps(conversation(tools=TOOLS), option=orjson.OPT_INDENT_2))) == base
    assert key(conversation("Something else entirely.", tools=TOOLS)) == base


def test_fingerprint_changes_with_the_system_prompt_the_tools_the_history_and_the_model() -> None:
    base = key(conversation(tools=TOOLS))
    assert key(conversation(system=SYSTEM + "!", tools=TOOLS)) != base
    assert key(conversation()) != base
    other_tools = copy.deepcopy(TOOLS)
    other_tools[0]["function"]["description"] = "Find a parcel."
    assert key(conversation(tools=other_tools)) != base
    history = conversation(tools=TOOLS)
    history["messages"][2]["content"] = "Hi! What do you need?"
    assert key(history) != base
    assert key({**conversation(tools=TOOLS), "model": "openai/gpt-4.1"}) != base


def test_short_prefixes_have_no_fingerprint() -> None:
    assert key(conversation(system="Be brief.")) is None
    assert key({"model": MODEL, "messages": [{"role": "user", "content": SYSTEM}]}) is None  # only a last turn
    assert key({"model": MODEL, "messages": []}) is None
    # The minimum is a setting (estimated tokens at about four characters each).
    assert key(conversation(system="x" * 400), minimum=100) is not None
    assert key(conversation(system="x" * 400), minimum=200) is None
    # Long tools alone make a prefix.
    tools = [{**TOOLS[0], "function": {**TOOLS[0]["function"], "description": SYSTEM}}]
    assert key(conversation(system="Be brief.", tools=tools)) is not None


def test_projects_never_share_a_fingerprint() -> None:
    assert key(conversation(), "p1") != key(conversation(), "p2")
    assert key(conversation(), None) != key(conversation(), "p1")


def test_cache_markers_do_not_change_the_fingerprint() -> None:
    marked = conversation(tools=[{**TOOLS[0], "cache_control": {"type": "ephemeral"}}])
    marked["messages"][0]["content"] = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    plain = conversation(tools=TOOLS)
    plain["messages"][0]["content"] = [{"type": "text", "text": SYSTEM}]
    assert key(marked) == key(plain) is not None
    assert "cache_control" in marked["tools"][0]  # the caller's request is left alone


def test_agent_loop_tool_results_after_the_last_user_turn_are_not_prefix() -> None:
    loop = conversation()
    loop["messages"] += [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
    ]
    assert key(loop) == key(conversation())


# ------------------------------------------------------------------ the ranking step


def three(clock: FakeClock, settings: AffinitySettings | None = None, **kw: Any) -> World:
    w = world({v: simulator() for v in ("sima", "simb", "simc")}, **kw)
    w.engine.affinity = PrefixAffinity(settings or AffinitySettings(), clock.monotonic)
    return w


def pin(w: World, request: Mapping[str, Any], vendor: str, project: str | None = "p1") -> int:
    assert w.engine.affinity is not None
    k = w.engine.affinity.key(request, project)
    assert k is not None
    w.engine.affinity.observe(k, [], (f"{vendor}/{MODEL}", vendor))
    return k


def first(w: World, request: dict[str, Any], project: str | None = "p1") -> tuple[str, Any]:
    trace, _ = w.engine.decide(request, project=project)
    return trace.order[0].vendor.id, trace


def test_the_affine_route_goes_first_and_the_explanation_says_so() -> None:
    clock = FakeClock()
    w = three(clock)
    assert first(w, conversation())[0] == "sima"  # priority order, nothing remembered yet
    pin(w, conversation(), "simb")
    clock.advance(42)
    vendor, trace = first(w, conversation("A new question."))
    assert vendor == "simb"
    assert [t.vendor.id for t in trace.order] == ["simb", "sima", "simc"]  # the rest keep the strategy's order
    expected = f"affinity: prefix served by simb/{MODEL} 42 s ago; otherwise first in priority order of 3"
    assert trace.reason.startswith(expected)
    assert dict(trace.headers(None))["x-interlock-route-reason"].startswith(expected)
    assert trace.to_json()["affinity"] == {"route": f"simb/{MODEL}", "age_s": 42.0, "moved": True}


def test_requests_without_a_shared_prefix_keep_the_strategy() -> None:
    clock = FakeClock()
    w = three(clock)
    pin(w, conversation(), "simc")
    vendor, trace = first(w, conversation(system="Be brief."))  # too short to have a fingerprint
    assert vendor == "sima" and trace.affinity is None and "affinity" not in trace.to_json()
    assert trace.reason == "first in priority order of 3 capable targets"
    assert first(w, conversation(system=SYSTEM + " Also be brief."))[0] == "sima"  # another prefix
    assert first(w, conversation(), project="p2")[0] == "sima"  # another project's prefix
    # When the strategy already picks the affine route, affinity is noted but the reason is the strategy's.
    pin(w, conversation(), "sima")
    _, trace = first(w, conversation())
    assert trace.affinity is not None and not trace.affinity.moved
    assert trace.reason == "first in priority order of 3 capable targets"


def test_a_model_with_one_route_computes_no_fingerprint() -> None:
    w = world({"sima": simulator()})
    w.engine.affinity = PrefixAffinity(AffinitySettings(), FakeClock().monotonic)
    trace, _ = w.engine.decide(conversation(), project="p1")
    assert trace.prefix is None and trace.affinity is None
    assert first(three(FakeClock()), conversation())[1].prefix is not None


def test_affinity_gives_way_to_filters_an_open_circuit_and_the_callers_order() -> None:
    clock = FakeClock()
    w = three(clock, breaker=BreakerSettings(min_requests=1, cooldown_s=30))
    pin(w, conversation(), "simb")
    assert first(w, conversation(provider={"ignore": ["simb"]}))[0] == "sima"
    assert first(w, conversation(provider={"order": ["simc", "simb"]}))[0] == "simc"
    w.engine.circuits.record(f"simb/{MODEL}", False)
    vendor, trace = first(w, conversation())
    assert vendor == "sima" and trace.affinity is None
    assert f"simb/{MODEL} skipped: circuit open" in trace.reason


def test_a_failed_route_is_forgotten_and_the_answering_one_pinned() -> None:
    clock = FakeClock()
    w = three(clock)
    k = pin(w, conversation(), "simb")
    assert w.engine.affinity is not None
    w.engine.affinity.observe(k, [f"simb/{MODEL}"], None)  # the request failed everywhere
    assert first(w, conversation())[0] == "sima"
    pin(w, conversation(), "simb")
    w.engine.affinity.observe(k, [f"simb/{MODEL}"], (f"simc/{MODEL}", "simc"))  # failed over to simc
    assert first(w, conversation())[0] == "simc"


def test_pins_expire_with_the_cache_lifetime() -> None:
    clock = FakeClock()
    w = three(clock, AffinitySettings(ttl_s=300, vendor_ttl_s={"simc": 3600}))
    pin(w, conversation(), "simb")
    clock.advance(299)
    assert first(w, conversation())[0] == "simb"
    clock.advance(2)
    assert first(w, conversation())[0] == "sima"
    assert w.engine.affinity is not None and len(w.engine.affinity) == 0  # the expired pin is dropped
    pin(w, conversation(), "simc")  # a vendor whose cache lives longer
    clock.advance(3000)
    assert first(w, conversation())[0] == "simc"


def test_the_memory_is_bounded_least_recently_used_first() -> None:
    clock = FakeClock()
    w = three(clock, AffinitySettings(max_entries=2))
    a = conversation(system=SYSTEM + " A")
    b = conversation(system=SYSTEM + " B")
    c = conversation(system=SYSTEM + " C")
    pin(w, a, "simb")
    pin(w, b, "simb")
    assert first(w, a)[0] == "simb"  # a is now the most recently used
    pin(w, c, "simc")
    assert w.engine.affinity is not None and len(w.engine.affinity) == 2
    assert [first(w, r)[0] for r in (a, b, c)] == ["simb", "sima", "simc"]


def test_affinity_does_not_move_a_fallback_models_route_ahead_of_the_primary() -> None:
    clock = FakeClock()
    p = Policy("two", (PolicyTarget(f"sima/{MODEL}"), PolicyTarget(f"simb/{MODEL}")))
    w = three(clock, policies={"two": p})
    request = conversation(model="two", models=[f"simc/{MODEL}"])
    pin(w, request, "simc")
    vendor, trace = first(w, request)
    assert vendor == "sima" and trace.affinity is None


# ------------------------------------------------------------------ end to end: dispatch and settle


class Switch:
    """A simulator route that can be broken (every answer a 500) and mended while the test runs."""

    def __init__(self) -> None:
        self.inner = simulator()
        self.broken = False

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                      timeouts: Timeouts) -> UpstreamResponse:
        if self.broken:
            headers = {**headers, "x-interlock-simulator-fault": "error=500"}
        return await self.inner.request(method, url, headers, body, timeouts)

    async def close(self) -> None:
        await self.inner.close()


async def serve(w: World, request: dict[str, Any]) -> RequestContext:
    ctx = RequestContext("openai.chat")
    ctx.principal = Principal("project", "ik-x", project="p1")
    ctx.requested_model = request["model"]
    canonical = w.engine.route(ctx, copy.deepcopy(request))
    try:
        await w.dispatcher.complete(ctx, canonical, {})
    finally:
        w.engine.observe(ctx)
    return ctx


async def test_a_shared_prefix_sticks_to_one_route_and_fails_over_once() -> None:
    clock = FakeClock()
    switches = {"sima": Switch(), "simb": Switch()}
    p = Policy("spread", tuple(PolicyTarget(f"{v}/{MODEL}") for v in switches), strategy="weighted")
    w = world(switches, policies={"spread": p})
    draws = itertools.cycle([0.9, 0.1, 0.3])  # odd length: the winner alternates
    w.engine.rng = lambda: next(draws)

    # Without a shared prefix the weighted draw spreads requests over both routes.
    short = [(await serve(w, conversation(f"q{i}", system="Be brief.", model="spread"))).target for i in range(8)]
    assert {t.vendor.id for t in short if t is not None} == {"sima", "simb"}

    w.engine.affinity = PrefixAffinity(AffinitySettings(), clock.monotonic)
    served = [await serve(w, conversation(f"q{i}", model="spread")) for i in range(8)]
    vendors = [c.target.vendor.id for c in served if c.target is not None]
    assert len(vendors) == 8 and len(set(vendors)) == 1
    pinned = vendors[0]
    other = "simb" if pinned == "sima" else "sima"
    assert served[-1].routing is not None and served[-1].routing.affinity is not None

    switches[pinned].broken = True
    failed = await serve(w, conversation("q-fail", model="spread"))
    assert failed.target is not None and failed.target.vendor.id == other
    assert [a.outcome for a in failed.attempts][-1] == "answered"
    assert any(a.vendor == pinned and a.outcome == "failed" for a in failed.attempts)
    switches[pinned].broken = False  # mended: the prefix stays where it is cached now
    after = [await serve(w, conversation(f"after{i}", model="spread")) for i in range(6)]
    assert {c.target.vendor.id for c in after if c.target is not None} == {other}


# ------------------------------------------------------------------ settings and the whole gateway


def test_routing_settings_are_validated_with_file_line_and_key(tmp_path: Path) -> None:
    def load(text: str) -> AffinitySettings:
        path = tmp_path / "interlock.yaml"
        path.write_text(text)
        return affinity_settings(load_settings(path, vendor_table=VENDOR_TABLE, environ={}))

    assert load("server: {port: 8400}\n") == AffinitySettings()
    custom = load("routing:\n  prefix_affinity:\n    enabled: false\n    ttl_s: 600\n    min_prefix_tokens: 2048\n"
                  "    vendor_ttl_s: {anthropic: 3600}\n")
    assert (custom.enabled, custom.ttl_s, custom.min_prefix_tokens) == (False, 600.0, 2048)
    assert dict(custom.vendor_ttl_s) == {"anthropic": 3600.0}
    with pytest.raises(ConfigError, match=r"interlock.yaml:3: routing.prefix_affinity.ttl_s: expected a positive"):
        load("routing:\n  prefix_affinity:\n    ttl_s: 0\n")
    with pytest.raises(ConfigError, match=r"interlock.yaml:2: routing.prefix_afinity: unknown key \(did you mean"):
        load("routing:\n  prefix_afinity: {}\n")
    with pytest.raises(ConfigError, match=r"routing.prefix_affinity.min_prefix_tokens: expected an integer"):
        load("routing: {prefix_affinity: {min_prefix_tokens: many}}\n")


CONFIG = """
simulator: {enabled: true, time_scale: 0}
policies:
  spread:
    targets: [simulator/openai/gpt-4.1-mini, simulator/openai/gpt-4.1-nano]
    strategy: weighted
"""


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[Gateway, asyncio.AbstractEventLoop]]:
    with running_gateway(CONFIG, tmp_path) as running:
        yield running


def chat(gw: Gateway, loop: asyncio.AbstractEventLoop, body: dict[str, Any], path: str = "/v1/chat/completions"
         ) -> Proto:
    raw = orjson.dumps(body)
    headers = {"host": "127.0.0.1:4000", "content-type": "application/json", "content-length": str(len(raw)),
               "authorization": f"Bearer {MASTER_KEY}"}

    async def run() -> Proto:
        proto = Proto(raw)
        await gw.__rsgi__(Scope("POST", path, headers), proto)  # type: ignore[arg-type]
        return proto
    return loop.run_until_complete(run())


def test_the_gateway_pins_a_prefix_says_so_and_fails_over(gateway: Any) -> None:
    gw, loop = gateway
    assert gw.routing.affinity is not None  # on by default
    answers = [chat(gw, loop, conversation(f"Question {i}?", model="spread")) for i in range(10)]
    assert all(a.status == 200 for a in answers)
    routes = [a.headers["x-interlock-route"] for a in answers]
    # The weighted draw alone would put ten requests on one route with a chance of 1 in 512.
    assert len(set(routes)) == 1, routes
    pinned = routes[0]
    reasons = [a.headers["x-interlock-route-reason"] for a in answers[1:]]
    assert any(r.startswith(f"affinity: prefix served by {pinned}") for r in reasons), reasons
    explained = orjson.loads(b"".join(chat(gw, loop, conversation("Why?", model="spread"), "/v1/route/explain").chunks))
    assert explained["route"] == pinned and explained["affinity"]["route"] == pinned

    # Break the pinned route's model in the simulator: the request fails over, and later ones stay there.
    sim = gw.simulator
    assert sim is not None
    model = pinned.removeprefix("simulator/")
    sim.engine.settings = replace(sim.engine.settings, faults={model: parse_fault_header("error=500")})
    moved = chat(gw, loop, conversation("One more?", model="spread"))
    assert moved.status == 200 and moved.headers["x-interlock-route"] != pinned
    assert "after" in moved.headers["x-interlock-route-reason"]
    sim.engine.settings = replace(sim.engine.settings, faults={})
    later = [chat(gw, loop, conversation(f"Later {i}?", model="spread")) for i in range(6)]
    assert {a.headers["x-interlock-route"] for a in later} == {moved.headers["x-interlock-route"]}
