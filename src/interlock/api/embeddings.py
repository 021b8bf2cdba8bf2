"""``POST /v1/embeddings``: OpenAI's embeddings API in front of every vendor that can embed.

The stages are the chat pipeline's, in the same order: auth, a size-limited
body, validation (a 400 naming the parameter), the planner's resolution of the
model name, dispatch with failover through the :class:`Dispatcher` (the same
retry, circuit-breaker and attempt bookkeeping as chat), cost from the input
tokens, and one ledger record from ``finally``. What differs is small enough
not to need a codec: the answer is never streamed, and its vectors are
re-encoded only when the vendor's encoding is not the one asked for (native
vendors send floats; OpenAI-compatible ones send what was asked).

Vendors are chosen among the plan's targets that have an embeddings adapter
(``VendorRuntime.embedder``); a catalog model that is not an embedding model is
refused with a 400 naming ``model`` rather than sent to a vendor to fail.
When a vendor reports no token count (Gemini), the gateway counts the input
with the catalog's tokenizer and marks the cost estimated.

The response cache (``cache/``) serves embeddings as it serves chat, after admit: the key is the canonical
body (``input``, ``dimensions``, ``encoding_format``, extras; not ``user``) with the inbound API, models,
policy, project and namespace; the same headers control it. The answer body is stored without its cost, and
a hit is priced again (the configured fraction of what it cost; that cost is recorded as saved).
"""

from __future__ import annotations

import time
from base64 import b64decode
from collections.abc import Mapping
from typing import Any

import orjson

from interlock.cache.response_cache import ResponseCache
from interlock.catalog import count_tokens
from interlock.core.cache import HIT
from interlock.core.context import RequestContext
from interlock.core.errors import InvalidRequest
from interlock.core.exchange import Exchange
from interlock.core.plan import Plan, Target
from interlock.core.pricing import Usage
from interlock.core.vendor import EmbeddingResult, Vector
from interlock.pipeline.dispatch import Dispatcher, forwarded_headers
from interlock.pipeline.settle import Ledger, observe_request, price_usage
from interlock.pipeline.stages import Admission, AsyncStage, Identify, Lifecycle
from interlock.routing.planner import Planner
from interlock.vendors.embeddings_common import (
    base64_vector,
    float_vector,
    input_problem,
    inputs_of,
    is_embedding_model,
)
from interlock.wire.openai_chat import error_body, parse_json_object

INBOUND = "openai.embeddings"
_JSON = [("content-type", "application/json")]


def validate_embeddings_request(request: dict[str, Any]) -> dict[str, Any]:
    """Check the documented fields; raise a 400 naming the first bad one. Other fields pass through."""
    model = request.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string.", param="model", code="invalid_type")
    problem = input_problem(request.get("input"))
    if problem is not None:
        code = "missing_required_parameter" if request.get("input") is None else "invalid_value"
        raise InvalidRequest(problem[1], param=problem[0], code=code)
    fmt = request.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise InvalidRequest(f"'encoding_format' must be 'float' or 'base64', got {fmt!r}.",
                             param="encoding_format", code="invalid_value")
    dimensions = request.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)
                                   or dimensions < 1):
        raise InvalidRequest("'dimensions' must be a positive integer.", param="dimensions", code="invalid_type")
    user = request.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string.", param="user", code="invalid_type")
    return request


def embedding_plan(plan: Plan) -> Plan:
    """The plan narrowed to targets that can embed; a 400 naming ``model`` when none can."""
    chat_model = next((t.model for t in plan.targets if t.model is not None and not is_embedding_model(t.model)),
                      None)
    targets = tuple(t for t in plan.targets if t.vendor.embedder is not None
                    and (t.model is None or is_embedding_model(t.model)))
    if targets:
        return plan if len(targets) == len(plan.targets) else Plan(plan.requested, targets, plan.explanation,
                                                                   plan.policy)
    if chat_model is not None:
        raise InvalidRequest(f"'{plan.requested}' resolves to {chat_model.id}, which is not an embedding model. "
                             "Use one such as openai/text-embedding-3-small (`interlock models --search embed` "
                             "lists them).", param="model", code="model_not_embedding")
    vendors = ", ".join(sorted({t.vendor.spec.name for t in plan.targets}))
    raise InvalidRequest(f"'{plan.requested}' is served here only by {vendors}, which offers no embeddings API.",
                         param="model", code="model_not_embedding")


def counted_usage(request: Mapping[str, Any], result: EmbeddingResult, target: Target) -> Usage:
    """The vendor's token count, or the gateway's own (estimated) when the vendor gave none."""
    if result.input_tokens is not None:
        return Usage(input_tokens=result.input_tokens)
    total = sum(count_tokens(item, target.model) if isinstance(item, str) else len(item)
                for item in inputs_of(request))
    return Usage(input_tokens=total, estimated=True)


def encode_vectors(vectors: list[Vector], base64: bool) -> list[dict[str, Any]]:
    return [{"object": "embedding", "index": i, "embedding": base64_vector(v) if base64 else float_vector(v)}
            for i, v in enumerate(vectors)]


def replayed(data: dict[str, Any]) -> Usage:
    """A cache hit's stored answer: its usage (the estimate marker taken out of the body again)."""
    usage = data["usage"]
    estimated = usage.pop("estimated", None) is True
    return Usage(input_tokens=int(usage["prompt_tokens"]), estimated=estimated)


def stored_body(body: dict[str, Any], counted: Usage) -> bytes:
    """The answer as the cache keeps it: without its cost (a hit is priced again), marked when estimated."""
    if counted.estimated:
        return orjson.dumps({**body, "usage": {**body["usage"], "estimated": True}})
    return orjson.dumps(body)


def content_summary(data: list[dict[str, Any]]) -> dict[str, int]:
    """What the log keeps of an answer: the vectors themselves are large and say nothing to a reader."""
    out = {"embeddings": len(data)}
    first = data[0]["embedding"] if data else None
    if isinstance(first, list):
        out["dimensions"] = len(first)
    elif isinstance(first, str):  # base64 of little-endian float32s
        out["dimensions"] = len(b64decode(first)) // 4
    return out


class EmbeddingsApi:
    def __init__(self, lifecycle: Lifecycle, identify: Identify, planner: Planner, admission: Admission,
                 dispatcher: Dispatcher, ledger: Ledger, max_body: int, guard: AsyncStage | None = None,
                 cache: ResponseCache | None = None) -> None:
        self.lifecycle = lifecycle
        #: The guardrails stage (pii and secrets over ``input``), when a detector is on.
        self.guard = guard
        self.identify = identify
        self.planner = planner
        self.admission = admission
        self.dispatcher = dispatcher
        self.ledger = ledger
        self.max_body = max_body
        #: The response cache shared with the chat path (None when no request can use it).
        self.cache = cache

    async def __call__(self, req: Exchange) -> None:
        # A large batch fans out to many vendor calls: a client that leaves cancels them all.
        await self.lifecycle.run(req, RequestContext(INBOUND), self._run, error_body)

    async def _run(self, req: Exchange, ctx: RequestContext) -> None:
        self.identify(req, ctx)
        ctx.exchange = req  # the cache's controls are request headers
        request = validate_embeddings_request(parse_json_object(await req.body(self.max_body)))
        ctx.requested_model = request["model"]
        observe_request(ctx, req, request, self.ledger)
        if self.guard is not None:
            request = await self.guard(ctx, request)
        ctx.plan = embedding_plan(self.planner.plan(request["model"]))
        ctx.reservation = await self.admission.admit(ctx, request)
        # The cache after admit, as on the chat path: its key needs the resolved models, and a hit counts
        # toward limits like any request. Embeddings are deterministic: no temperature rule.
        ticket = None
        if self.cache is not None:
            ticket = ctx.cache = await self.cache.lookup(ctx, request, deterministic=True)
        if ticket is not None and ticket.status == HIT:
            body = ticket.completion().data
            counted = replayed(body)
            ctx.first_byte = time.perf_counter()
        else:
            body, counted = await self._embed(req, ctx, request)
        price_usage(ctx, counted)  # a hit: charged the configured fraction, what it cost is recorded as saved
        if ticket is not None and ticket.storing:
            ticket.store_completion(ctx, stored_body(body, counted))  # after pricing: the entry keeps the cost
        headers = ctx.response_headers()
        if ctx.cost is not None:
            body["usage"]["cost"] = ctx.cost.usd
            headers.append(("x-interlock-cost-usd", ctx.cost.usd_str))
            if ctx.cost.estimated:
                headers.append(("x-interlock-cost-estimated", "true"))
        if ctx.capture_content:
            ctx.response_content = content_summary(body["data"])
        req.json(200, body, headers)

    async def _embed(self, req: Exchange, ctx: RequestContext,
                     request: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
        """The vendors' answer (through the dispatcher's failover) as OpenAI's body, and its usage."""

        async def call(target: Target) -> EmbeddingResult:
            embedder = target.vendor.embedder
            assert embedder is not None  # embedding_plan keeps only targets that have one
            return await embedder.embed(request, target.vendor_model, forwarded_headers(req.headers, target.simulated))

        # The dispatcher's attempt loop is generic over the call: embeddings fail over exactly like chat.
        result = await self.dispatcher.call(ctx, call)
        ctx.first_byte = time.perf_counter()
        target = ctx.target
        assert target is not None
        counted = counted_usage(request, result, target)
        usage: dict[str, Any] = {"prompt_tokens": counted.input_tokens, "total_tokens": counted.input_tokens}
        data = encode_vectors(result.vectors, request.get("encoding_format") == "base64")
        return {"object": "list", "data": data, "model": result.model or target.vendor_model, "usage": usage}, counted
