"""The simulator's brain: from a raw vendor request to a :class:`Plan` (what to send, when, how it ends).

Both carriers (the in-process :class:`~interlock.simulator.transport.SimulatorTransport`
and the standalone HTTP server) call :meth:`Engine.plan`, so the bytes and the
faults are identical whichever way a test reaches the simulator.

Two independent sources of randomness are used on purpose. *Content* is
seeded from the request so the same request always gets the same answer.
*Latency and fault draws* come from one stateful RNG (``settings.seed``), so a
retried request can succeed after a simulated 503 and latencies vary from call
to call like a real vendor's.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from interlock.catalog import Catalog
from interlock.core.model import Model
from interlock.simulator import embeddings
from interlock.simulator.anthropic_cache import BreakpointCache
from interlock.simulator.anthropic_wire import AnthropicWire
from interlock.simulator.cache import PrefixCache
from interlock.simulator.catalog_view import count_text, default_catalog
from interlock.simulator.content import PieceCounter
from interlock.simulator.faults import (
    FAULT_HEADER,
    LATENCY_HEADER,
    FaultSpec,
    FaultSyntaxError,
    LatencyOverride,
    parse_fault_header,
    parse_latency_header,
)
from interlock.simulator.gemini_wire import GeminiWire
from interlock.simulator.generate import Generation, build_generation, random_id
from interlock.simulator.latency import default_profile, sample_latency
from interlock.simulator.openai_wire import OpenAIWire
from interlock.simulator.plan import Meta, Plan, WireFormat
from interlock.simulator.request import BadRequest, SimRequest
from interlock.simulator.settings import SimulatorSettings

FORMATS = ("openai", "anthropic", "gemini")
#: The vendor whose own model ids each format's requests carry (``claude-sonnet-4-5`` → anthropic).
FORMAT_VENDORS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
_GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>.+):(?P<method>generateContent|streamGenerateContent)$")
_ERROR_DELAY = 0.3  # an error answer comes back after this share of a normal TTFT


@dataclass(frozen=True, slots=True)
class Route:
    wire: WireFormat
    path_model: str | None
    stream_path: bool
    sse: bool


@dataclass(slots=True)
class Timing:
    ttft: float
    tps: float


class Engine:
    def __init__(
        self,
        settings: SimulatorSettings,
        catalog: Catalog | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.catalog = catalog if catalog is not None else default_catalog()
        self.clock = clock
        self.rng = random.Random(settings.seed)
        self.cache = PrefixCache(settings.cache_ttl_s, settings.cache_max_entries)  # OpenAI, Gemini: automatic
        # Anthropic: only marked prefixes, each living as long as its marker says (5 min or 1 h).
        self.block_cache = BreakpointCache(settings.cache_max_entries, clock, enabled=settings.cache_ttl_s > 0)
        self.wires: dict[str, WireFormat] = {"openai": OpenAIWire(), "anthropic": AnthropicWire(), "gemini": GeminiWire()}
        self._counters: dict[str, PieceCounter] = {}
        self._resolved: dict[tuple[str, str], Model | None] = {}

    # -- routing -----------------------------------------------------------------------------

    def route(self, path: str, query: str, formats: Collection[str] = FORMATS) -> Route | None:
        if path == "/v1/chat/completions" and "openai" in formats:
            return Route(self.wires["openai"], None, False, True)
        if path == "/v1/messages" and "anthropic" in formats:
            return Route(self.wires["anthropic"], None, False, True)
        match = _GEMINI_PATH.match(path)
        if match and "gemini" in formats:
            stream = match["method"] == "streamGenerateContent"
            sse = "sse" in parse_qs(query).get("alt", [])
            return Route(self.wires["gemini"], match["model"], stream, sse)
        return None

    # -- planning ----------------------------------------------------------------------------

    def plan(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        formats: Collection[str] = FORMATS,
    ) -> Plan:
        if path == embeddings.PATH and "openai" in formats:
            return self._embeddings(method, headers, body)
        route = self.route(path, query, formats)
        if route is None:
            payload = b'{"error":{"message":"Not found","type":"invalid_request_error","code":"not_found"}}'
            return Plan(404, {"content-type": "application/json"}, [(0.0, payload)])
        wire = route.wire
        if method.upper() != "POST":
            return self._error(wire, 405, f"Method {method} not allowed.", None, 0.0)
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            fault, override = self._header_controls(lowered)
        except FaultSyntaxError as exc:
            return self._error(wire, 400, f"Invalid {exc.key} header: {exc.detail}", None, 0.0)
        try:
            req = wire.parse(body, route.path_model, route.stream_path)
        except BadRequest as exc:
            return self._error(wire, 400, exc.message, exc.param, 0.0)
        model = self.resolve(req.model, wire.name)
        if model is None:
            return self._error(wire, 404, req.model, None, 0.0, kind="model_not_found")
        if fault is None:
            fault = self.settings.fault_for(model.id)
        if fault is not None and not (fault.rate >= 1.0 or self.rng.random() < fault.rate):
            fault = None
        timing = self._timing(model, override)
        if fault is not None and fault.kind in ("refuse", "hang", "error"):
            return self._early_fault(wire, fault, timing)
        gen = build_generation(req, model, self._counter(model), self.cache, self.block_cache)
        meta = self._meta(req, model)
        return self._answer(wire, route, req, gen, meta, timing, fault)

    def resolve(self, name: str, fmt: str) -> Model | None:
        """A catalog id, or a vendor's own id (what a gateway sends), preferring the format's vendor."""
        key = (name, fmt)
        if key in self._resolved:
            return self._resolved[key]
        model = self.catalog.get(name)
        vendor = FORMAT_VENDORS.get(fmt)
        if model is None and vendor is not None:
            found = self.catalog.by_vendor_model(vendor, name.removeprefix("models/"))
            model = found[0] if found is not None else None
        if model is None:
            model = self.catalog.find(name)
        if len(self._resolved) >= 4096:
            self._resolved.clear()
        self._resolved[key] = model
        return model

    def _embeddings(self, method: str, headers: Mapping[str, str], body: bytes) -> Plan:
        """``/v1/embeddings`` (OpenAI format): the same faults and latency draws as chat, one JSON body."""
        wire = self.wires["openai"]
        if method.upper() != "POST":
            return self._error(wire, 405, f"Method {method} not allowed.", None, 0.0)
        try:
            fault, override = self._header_controls({k.lower(): v for k, v in headers.items()})
            req = embeddings.parse(body)
        except FaultSyntaxError as exc:
            return self._error(wire, 400, f"Invalid {exc.key} header: {exc.detail}", None, 0.0)
        except BadRequest as exc:
            return self._error(wire, 400, exc.message, exc.param, 0.0)
        model = self.resolve(req.model, "openai")
        if model is None:
            return self._error(wire, 404, req.model, None, 0.0, kind="model_not_found")
        problem = embeddings.check_model(req, model)
        if problem is not None:
            return self._error(wire, 400, problem[1], problem[0], 0.0)
        if fault is None:
            fault = self.settings.fault_for(model.id)
        if fault is not None and not (fault.rate >= 1.0 or self.rng.random() < fault.rate):
            fault = None
        timing = self._timing(model, override)
        if fault is not None and fault.kind in ("refuse", "hang", "error"):
            return self._early_fault(wire, fault, timing)
        plan = Plan(200, {"content-type": "application/json"}, [(timing.ttft, embeddings.render(req, model))],
                    first_byte_at=timing.ttft)
        return _break_body(plan, fault)

    def _header_controls(self, headers: Mapping[str, str]) -> tuple[FaultSpec | None, LatencyOverride | None]:
        if not self.settings.allow_fault_headers:
            return None, None
        fault = override = None
        if FAULT_HEADER in headers:
            fault = parse_fault_header(headers[FAULT_HEADER])
        if LATENCY_HEADER in headers:
            override = parse_latency_header(headers[LATENCY_HEADER])
        return fault, override

    def _timing(self, model: Model, override: LatencyOverride | None) -> Timing:
        profile = self.settings.latency_for(model.id) or default_profile(model)
        ttft, tps = sample_latency(profile, self.rng)
        if override is not None:
            ttft = override.ttft if override.ttft is not None else ttft
            tps = override.tps if override.tps is not None else tps
        return Timing(ttft=ttft, tps=tps)

    def _counter(self, model: Model) -> PieceCounter:
        counter = self._counters.get(model.id)
        if counter is None:
            counter = self._counters[model.id] = PieceCounter(lambda text: count_text(text, model))
        return counter

    def _meta(self, req: SimRequest, model: Model) -> Meta:
        now = self.clock()
        digest = hashlib.blake2b(req.seed_material + repr(now).encode(), digest_size=16).digest()
        return Meta(id=random_id(random.Random(digest), 29), created=int(now), model=model.id)

    def _error(
        self,
        wire: WireFormat,
        status: int,
        message: str,
        param: str | None,
        at: float,
        *,
        kind: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> Plan:
        body = wire.error(status, message, param=param, kind=kind)
        headers = {"content-type": "application/json", **(extra or {})}
        return Plan(status, headers, [(at, body)], first_byte_at=at)

    def _early_fault(self, wire: WireFormat, fault: FaultSpec, timing: Timing) -> Plan:
        if fault.kind == "refuse":
            return Plan(0, {}, refuse=True, first_byte_at=0.0)
        if fault.kind == "hang":
            return Plan(0, {}, first_byte_at=None)
        status = fault.status or 500
        extra: dict[str, str] = {}
        if fault.retry_after is not None:
            extra["retry-after"] = f"{fault.retry_after:g}"
            extra["retry-after-ms"] = str(round(fault.retry_after * 1000))
        if wire.name == "anthropic" and status == 429:
            extra["anthropic-ratelimit-requests-remaining"] = "0"
        elif status == 429:
            extra["x-ratelimit-remaining-requests"] = "0"
        return self._error(wire, status, "", None, timing.ttft * _ERROR_DELAY, extra=extra)

    # -- answers -----------------------------------------------------------------------------

    def _answer(
        self,
        wire: WireFormat,
        route: Route,
        req: SimRequest,
        gen: Generation,
        meta: Meta,
        timing: Timing,
        fault: FaultSpec | None,
    ) -> Plan:
        hidden = 0 if req.show_thinking else max((c.reasoning_tokens for c in gen.choices), default=0)
        first = timing.ttft + hidden / timing.tps
        if fault is not None and fault.kind == "slow_first_byte" and fault.seconds is not None:
            first = max(first, fault.seconds)
        headers = {**wire.extra_headers(meta), "content-type": wire.content_type(req.stream)}
        if not req.stream:
            if fault is not None and fault.kind == "error_event":
                return self._error(wire, fault.status or 500, "", None, first)
            visible = max((c.output_tokens + (c.reasoning_tokens if req.show_thinking else 0) for c in gen.choices), default=0)
            at = first + visible / timing.tps
            body = wire.render(gen, req, meta)
            plan = Plan(200, headers, [(at, body)], first_byte_at=at)
            return _break_body(plan, fault)
        weighted = wire.render_stream(gen, req, meta)
        events: list[tuple[float, bytes]] = []
        clock = first
        for tokens, data in weighted:
            events.append((clock, data))
            clock += tokens / timing.tps
        if route.wire.name == "gemini" and not route.sse:
            events = _json_array(events)
        plan = Plan(200, headers, events, first_byte_at=first, streaming=True)
        return _break_stream(plan, fault, wire)


def _json_array(events: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    """Gemini without ``alt=sse`` streams one JSON array, element by element."""
    out: list[tuple[float, bytes]] = []
    for i, (at, data) in enumerate(events):
        payload = data.removeprefix(b"data: ").rstrip(b"\r\n")
        out.append((at, (b"[" if i == 0 else b",\r\n") + payload))
    if out:
        at, data = out[-1]
        out[-1] = (at, data + b"]")
    return out


def _break_body(plan: Plan, fault: FaultSpec | None) -> Plan:
    if fault is None:
        return plan
    at, body = plan.events[0]
    if fault.kind in ("malformed_json", "malformed_sse"):
        plan.events = [(at, body[: max(1, len(body) // 2)])]  # complete HTTP message, truncated JSON
    elif fault.kind == "stop_after":
        plan.events = [(at, body[: max(1, len(body) // 2)])]
        plan.ending = "drop"
        plan.headers["content-length"] = str(len(body))
    elif fault.kind == "reset":
        plan.events = []
        plan.ending = "reset"
    return plan


def _break_stream(plan: Plan, fault: FaultSpec | None, wire: WireFormat) -> Plan:
    if fault is None:
        return plan
    events = plan.events
    middle = max(1, len(events) // 2)
    if fault.kind == "stop_after":
        plan.events = events[: fault.chunks or 0]
        plan.ending = "drop"
    elif fault.kind == "reset":
        plan.events = []
        plan.ending = "reset"
    elif fault.kind == "error_event":
        at = events[middle - 1][0]
        plan.events = [*events[:middle], (at, wire.error_event(fault.status or 500))]
    elif fault.kind == "malformed_json":
        at, data = events[middle]
        cut = data.rstrip(b"\r\n")
        plan.events[middle] = (at, cut[: max(8, len(cut) * 2 // 3)] + data[len(cut) :])
    elif fault.kind == "malformed_sse" and middle + 1 < len(events):
        at, data = events[middle]
        plan.events[middle] = (at, data.rstrip(b"\r\n") + b"\n")  # two events merge into one bad one
    return plan
