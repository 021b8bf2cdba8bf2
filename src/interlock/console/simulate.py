"""``POST /console/simulate``: the model page's "Test with the simulator" box.

The box sends ``{"model", "prompt", "stream", "tool", "schema"}`` as JSON; this
handler builds an OpenAI chat request for ``simulator/{model}``, runs it on the
in-process simulator's adapter (no key, no budget, no cost, not logged: it is a
catalog demonstration, not a gateway request) and streams compact events back
as ``text/event-stream``: ``delta`` (answer text), ``tool_call``, then ``done``
with the token counts, the simulated TTFT and tokens/s, and what the same usage
would have cost at each vendor's price; or one ``error``.

The endpoint is public when the catalog is, so it is bounded: a JSON content type
(a cross-site form cannot send one without a CORS preflight, which is never
granted) and no cross-site ``Sec-Fetch-Site``/``Origin``; a prompt of at most
``MAX_PROMPT_CHARS``; at most ``MAX_TOKENS`` of answer; ``RATE`` runs per minute per
client address and ``CONCURRENT`` at once per worker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson

from interlock.catalog import Catalog
from interlock.console.csrf import cross_site
from interlock.console.limits import AddressLimiter
from interlock.core.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NoRouteAvailable,
    PermissionDenied,
    RateLimited,
)
from interlock.core.exchange import CLIENT_GONE, Exchange, StreamOut
from interlock.core.model import Model
from interlock.core.pricing import cost_of
from interlock.core.usage import usage_from_openai
from interlock.core.vendor import ChatAdapter
from interlock.wire.chat_validation import validate_chat_request

MAX_BODY = 64 * 1024
MAX_PROMPT_CHARS = 8000
MAX_TOKENS = 400
RATE = 20  # runs per client address per minute
CONCURRENT = 8  # simulations at once in one worker

SSE = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-store"),
       ("x-content-type-options", "nosniff")]

VendorName = Callable[[str], str]


def _object(body: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{name}' must be a JSON object.", param=name)
    return value


def build_request(body: Mapping[str, Any], catalog: Catalog) -> tuple[Model, dict[str, Any]]:
    """The box's fields → a validated chat request for the simulator (errors name the field)."""
    model_id = body.get("model")
    model = catalog.get(model_id) if isinstance(model_id, str) else None
    if model is None:
        raise InvalidRequest(f"Unknown model {str(model_id)[:80]!r}: name a catalog model, lab/model.",
                             param="model", code="model_not_found")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("Write a prompt.", param="prompt", code="missing_required_parameter")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"The prompt is longer than {MAX_PROMPT_CHARS} characters.", param="prompt")
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false.", param="stream")
    request: dict[str, Any] = {"model": f"simulator/{model.id}", "messages": [{"role": "user", "content": prompt}],
                               "max_tokens": MAX_TOKENS, "stream": stream}
    if stream:
        request["stream_options"] = {"include_usage": True}
    tool = _object(body, "tool")
    if tool is not None:
        # The box takes one function definition ({"name", "description", "parameters"}), as the OpenAI SDK's,
        # and shows what a call of it looks like: the answer must call it.
        request["tools"] = [{"type": "function", "function": tool}]
        request["tool_choice"] = "required"
    schema = _object(body, "schema")
    if schema is not None:
        request["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    try:
        validate_chat_request(request)
    except InvalidRequest as err:
        # The request's own parameter names mean nothing to the box: name the box's field.
        param = err.param or ""
        field = "tool" if param.startswith("tools") else "schema" if param.startswith("response_format") else param
        raise InvalidRequest(err.message, param=field, code=err.code) from None
    return model, request


class Run:
    """One simulation's output, assembled from the simulator's OpenAI-format chunks."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.first: float | None = None
        self.usage: Mapping[str, Any] | None = None
        self.finish: str | None = None
        self.calls: dict[int, dict[str, str]] = {}

    def chunk(self, data: Mapping[str, Any], now: float) -> str:
        """Fold one chunk in; returns its answer text."""
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        text = []
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or choice.get("message") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                text.append(content)
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(int(call.get("index", len(self.calls))), {"name": "", "arguments": ""})
                fn = call.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        if (text or self.calls) and self.first is None:
            self.first = now
        return "".join(text)

    def summary(self, model: Model, vendor_name: VendorName, now: float, streamed: bool) -> dict[str, Any]:
        usage = usage_from_openai(self.usage or {})
        first = self.first if self.first is not None else now
        generation = now - first
        priced = sorted(((cost_of(route.price, usage), vendor_name(route.vendor)) for route in model.routes
                         if route.price.input is not None or route.price.output is not None),
                        key=lambda pair: (pair[0].picousd, pair[1]))
        return {
            "type": "done",
            # Not streamed: the time to the first token is the time to the whole answer.
            "streamed": streamed,
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.output_tokens,
            "ttft_ms": round((first - self.started) * 1000),
            "tokens_per_s": round(usage.output_tokens / generation, 1) if generation > 0.001 else None,
            "finish_reason": self.finish,
            "costs": [{"vendor": name, "usd": cost.usd_str} for cost, name in priced],
        }


def _event(data: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class SimulatorBox:
    """The handler; ``gate`` says whether the caller may use the catalog pages (a private catalog: signed in)."""

    def __init__(self, catalog: Catalog, adapter: ChatAdapter | None, vendor_name: VendorName,
                 gate: Callable[[Exchange], Awaitable[bool]], runs: AddressLimiter,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.catalog = catalog
        self.adapter = adapter
        self.vendor_name = vendor_name
        self.gate = gate
        self.clock = clock
        #: Runs per client address: ``RATE`` a minute.
        self.runs = runs
        self.running = 0

    async def __call__(self, req: Exchange) -> None:
        if not await self.gate(req):
            raise AuthenticationFailed("This gateway's catalog is private (console.public_catalog: false): sign in, "
                                       "or send an interlock key in the Authorization header.")
        if (why := cross_site(req)) is not None:
            raise PermissionDenied(f"Cross-site requests may not run the simulator box: {why}.", code="cross_site")
        if (req.header("content-type") or "").split(";")[0].strip().lower() != "application/json":
            raise InvalidRequest("Send the box's fields as application/json.", param="content-type",
                                 code="unsupported_content_type")
        if self.adapter is None:
            raise NoRouteAvailable("The simulator is not enabled on this gateway (simulator.enabled: false).",
                                   code="simulator_disabled")
        try:
            body = orjson.loads(await req.body(MAX_BODY))
        except orjson.JSONDecodeError:
            raise InvalidRequest("The body is not valid JSON.", code="invalid_json") from None
        if not isinstance(body, dict):
            raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
        model, request = build_request(body, self.catalog)
        retry = 1 if self.running >= CONCURRENT else self.runs.retry_after(req.client_host)
        if retry is not None:
            raise RateLimited(f"The simulator box runs {RATE} times a minute per address and {CONCURRENT} at once; "
                              f"try again in {retry} s.", headers={"retry-after": str(retry)})
        self.runs.add(req.client_host)
        self.running += 1
        try:
            await self._run(req, model, request)
        finally:
            self.running -= 1

    async def _run(self, req: Exchange, model: Model, request: dict[str, Any]) -> None:
        assert self.adapter is not None
        run = Run(self.clock())
        if not request["stream"]:
            completion = await self.adapter.complete(request, model.id)
            out = req.stream(200, SSE)
            text = run.chunk(completion.data, self.clock())
            events = [{"type": "delta", "text": text}] if text else []
            await self._finish(out, run, model, events, streamed=False)
            return
        source = await self.adapter.stream(request, model.id)
        out = req.stream(200, SSE)
        try:
            while (batch := await source.next_batch()) is not None:
                events = self._parse(run, batch)
                for event in events:
                    await out.send_bytes(_event(event))
            await self._finish(out, run, model, [], streamed=True)
        except CLIENT_GONE:
            pass  # the page was closed: nothing is owed to anyone for a simulation
        except GatewayError as err:
            await out.send_bytes(_event({"type": "error", "message": err.message}))
        finally:
            source.close()

    def _parse(self, run: Run, batch: Sequence[bytes]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        now = self.clock()
        for payload in batch:  # each one chunk's JSON (the adapter has taken the SSE framing off)
            text = run.chunk(orjson.loads(payload), now)
            if text:
                events.append({"type": "delta", "text": text})
        return events

    async def _finish(self, out: StreamOut, run: Run, model: Model, events: list[dict[str, Any]], *,
                      streamed: bool) -> None:
        for i, call in sorted(run.calls.items()):
            events.append({"type": "tool_call", "index": i, **call})
        events.append(run.summary(model, self.vendor_name, self.clock(), streamed))
        for event in events:
            await out.send_bytes(_event(event))
