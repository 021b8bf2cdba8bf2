"""OpenTelemetry traces, GenAI semantic conventions, exported over OTLP/HTTP (JSON encoding).

One ``SERVER`` span per request (``chat <model>``) and one ``CLIENT`` span per
vendor attempt under it, with ``gen_ai.*`` attributes (operation, provider,
request/response model, token usage) plus ``interlock.*`` ones (cost, TTFT,
request id). A caller's W3C ``traceparent`` makes the request span its child.

Why not the OpenTelemetry SDK: a span there is created on the hot path (context
propagation, attribute objects, a span processor per span); here settle hands
over the log record it built anyway and the spans are assembled in the export
task, off the request path. The wire format is the stable OTLP/HTTP JSON
encoding (``POST /v1/traces``), so any collector (OTel Collector, Jaeger,
Tempo, Honeycomb...) accepts it. Export is best-effort: a collector that is
down costs dropped spans (counted), never a slower gateway. Spans never carry
request or response content, nor error messages (only ``error.type``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from interlock import __version__
from interlock.core.plain import plain_attempts
from interlock.observability.settings import TelemetrySettings

log = logging.getLogger("interlock.tracing")

SERVER, CLIENT = 2, 3
STATUS_OK, STATUS_ERROR = 1, 2
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_MAX_QUEUE = 20_000


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        v: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def _attrs(items: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [_attr(k, v) for k, v in items.items() if v is not None]


def _ns(epoch: float) -> str:
    return str(int(epoch * 1e9))


def parse_traceparent(header: str | None) -> tuple[str, str, bool] | None:
    """(trace id, parent span id, sampled) from a valid W3C header, else None."""
    if not header:
        return None
    m = _TRACEPARENT.match(header.strip().lower())
    if m is None or m.group(1) == "0" * 32 or m.group(2) == "0" * 16:
        return None
    return m.group(1), m.group(2), bool(int(m.group(3), 16) & 1)


def request_spans(record: Mapping[str, Any], traceparent: str | None = None) -> list[dict[str, Any]]:
    """The OTLP spans of one request log record (built off the hot path)."""
    parent = parse_traceparent(traceparent)
    trace_id = parent[0] if parent else os.urandom(16).hex()
    root_id = os.urandom(8).hex()
    start = float(record["received_at"])
    end = float(record.get("done_at") or start + (record.get("duration_ms") or 0.0) / 1000.0)
    status = int(record.get("status") or 0)
    requested = record.get("requested_model")
    error_type = record.get("error_type")
    root: dict[str, Any] = {
        "traceId": trace_id, "spanId": root_id, "parentSpanId": parent[1] if parent else "",
        "name": f"chat {requested}" if requested else "chat", "kind": SERVER,
        "startTimeUnixNano": _ns(start), "endTimeUnixNano": _ns(end),
        "attributes": _attrs({
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": record.get("vendor"),
            "gen_ai.system": record.get("vendor"),
            "gen_ai.request.model": requested,
            "gen_ai.response.model": record.get("model"),
            "gen_ai.usage.input_tokens": record.get("input_tokens"),
            "gen_ai.usage.output_tokens": record.get("output_tokens"),
            "gen_ai.usage.cache_read_input_tokens": record.get("cache_read_tokens") or None,
            "gen_ai.usage.reasoning_tokens": record.get("reasoning_tokens") or None,
            "http.response.status_code": status,
            "error.type": error_type,
            "interlock.request_id": record.get("id"),
            "interlock.inbound": record.get("inbound"),
            "interlock.stream": bool(record.get("stream")),
            "interlock.cost_usd": record["cost_picousd"] / 1e12 if record.get("cost_picousd") is not None else None,
            "interlock.cost_estimated": bool(record.get("cost_estimated")),
            "interlock.ttft_ms": record.get("ttft_ms"),
            "interlock.project": record.get("project"),
            "interlock.key_id": record.get("key_id"),
        }),
        "status": {"code": STATUS_ERROR if status >= 400 else STATUS_OK},
    }
    spans = [root]
    attempts: Any = plain_attempts(dict(record)) or []
    if not attempts and record.get("vendor"):
        # No attempt list on the context: the one target that answered is the attempt.
        first = record.get("first_byte_at")
        attempts = [{"vendor": record.get("vendor"), "model": record.get("vendor_model"), "status": status,
                     "code": error_type, "start": start, "end": end if record.get("stream") or first is None
                     else first}]
    for i, attempt in enumerate(attempts if isinstance(attempts, list) else []):
        if not isinstance(attempt, dict):
            continue
        offset = _float(attempt, "start_ms", default=None)
        a_start = start + offset / 1000.0 if offset is not None else _float(attempt, "start", default=start)
        latency = _float(attempt, "latency_ms", "duration_ms", default=None)
        a_end = _float(attempt, "end", default=a_start + latency / 1000.0 if latency is not None else end)
        a_status = attempt.get("status")
        # Only a short code: messages may quote content and never go into spans.
        a_error = attempt.get("code") or attempt.get("error_type")
        err = attempt.get("error")
        if isinstance(err, dict):
            a_error = a_error or err.get("type")
        failed = (attempt.get("outcome") == "failed" or bool(a_error) or bool(err)
                  or (isinstance(a_status, int) and a_status >= 400))
        if failed and not a_error:
            a_error = "error"
        vendor = attempt.get("vendor")
        model = attempt.get("vendor_model") or attempt.get("model")
        target = attempt.get("target")
        if isinstance(target, dict):
            vendor = vendor or target.get("vendor")
            model = model or target.get("vendor_model")
        spans.append({
            "traceId": trace_id, "spanId": os.urandom(8).hex(), "parentSpanId": root_id,
            "name": f"chat {model}" if model else "chat", "kind": CLIENT,
            "startTimeUnixNano": _ns(a_start), "endTimeUnixNano": _ns(max(a_end, a_start)),
            "attributes": _attrs({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": vendor, "gen_ai.system": vendor,
                "gen_ai.request.model": model, "http.response.status_code": a_status if isinstance(a_status, int)
                else None, "error.type": a_error if failed else None, "interlock.attempt": i + 1,
            }),
            "status": {"code": STATUS_ERROR if failed else STATUS_OK},
        })
    return spans


def _float(d: Mapping[str, Any], *keys: str, default: float | None) -> Any:
    for key in keys:
        value = d.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return default


class Tracer:
    """Queues finished requests and exports their spans in batches from a background task."""

    def __init__(self, settings: TelemetrySettings, *, interval: float = 1.0, batch: int = 512) -> None:
        assert settings.otlp_endpoint is not None
        self.settings = settings
        self.endpoint = settings.otlp_endpoint
        self._interval = interval
        self._batch = batch
        self._queue: list[tuple[Mapping[str, Any], str | None]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.exported = 0
        self.dropped = 0
        self._resource = {"attributes": _attrs({"service.name": settings.service_name, "service.version": __version__,
                                                "telemetry.sdk.name": "interlock"})}

    def sampled(self, traceparent: str | None) -> bool:
        parent = parse_traceparent(traceparent)
        if parent is not None:
            return parent[2]
        ratio = self.settings.sample_ratio
        return ratio >= 1.0 or random.random() < ratio

    def submit(self, record: Mapping[str, Any], traceparent: str | None) -> None:
        if len(self._queue) >= _MAX_QUEUE:
            self.dropped += 1
            return
        self._queue.append((record, traceparent))
        if self._task is None and not self._closed:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif len(self._queue) >= self._batch and self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.export()

    async def export(self) -> None:
        if not self._queue:
            return
        queue, self._queue = self._queue, []
        spans = [span for record, parent in queue for span in request_spans(record, parent)]
        body = orjson.dumps({"resourceSpans": [{"resource": self._resource, "scopeSpans": [
            {"scope": {"name": "interlock", "version": __version__}, "spans": spans}]}]})
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        headers = {"content-type": "application/json", **self.settings.headers}
        try:
            async with self._session.post(self.endpoint, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status >= 300:
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.dropped += len(queue)
            log.warning("OTLP export to %s failed (%s); %d requests' spans dropped", self.endpoint, exc, len(queue))
            return
        self.exported += len(queue)

    async def drain(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.export()
        if self._session is not None:
            await self._session.close()
            self._session = None
