"""The gateway's own series: requests, errors, latency, TTFT, tokens and cost per vendor and model.

Observed once per request from ``settle``, with labels kept to a bounded set
(vendor, catalog model, status code, error type) - never the key, project or
end user, whose cardinality is unbounded; those belong to the request log and
the spend rollups.
"""

from __future__ import annotations

import time
from typing import Protocol

from interlock.core.context import RequestContext
from interlock.observability.metrics import Registry


class _Store(Protocol):
    @property
    def kind(self) -> str: ...


class LogWriterHealth(Protocol):
    """What the metrics read of the request log's writer (``ledger.writer.LedgerWriter``) at scrape time."""

    @property
    def store(self) -> _Store: ...

    @property
    def store_up(self) -> bool: ...

    @property
    def pending(self) -> int: ...

    @property
    def written(self) -> int: ...

    @property
    def spilled(self) -> int: ...

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class _SeriesLabels:
    """The label tuples of one target's series, built once instead of on every request."""

    __slots__ = ("by_status", "cache_read", "cache_write", "input", "model", "output", "reasoning", "vendor", "vm")

    def __init__(self, vendor: str, model: str) -> None:
        self.vendor = vendor
        self.model = model
        self.vm = (vendor, model)
        self.input = (vendor, model, "input")
        self.output = (vendor, model, "output")
        self.cache_read = (vendor, model, "cache_read")
        self.cache_write = (vendor, model, "cache_write")
        self.reasoning = (vendor, model, "reasoning")
        self.by_status: dict[int, tuple[str, str, str]] = {}


class RequestMetrics:
    __slots__ = ("_series", "cost", "duration", "errors", "registry", "requests", "tokens", "ttft")

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._series: dict[str, _SeriesLabels] = {}
        self.requests = registry.counter("interlock_requests_total", "Requests handled, by vendor, model and status.",
                                         ("vendor", "model", "status"))
        self.errors = registry.counter("interlock_request_errors_total", "Failed requests, by vendor, model and "
                                       "error type.", ("vendor", "model", "error_type"))
        self.duration = registry.histogram("interlock_request_duration_seconds", "Time from request received to "
                                           "response complete.", ("vendor", "model"))
        self.ttft = registry.histogram("interlock_time_to_first_token_seconds", "Time from request received to the "
                                       "first response byte (first token when streaming).", ("vendor", "model"),
                                       TTFT_BUCKETS)
        self.tokens = registry.counter("interlock_tokens_total", "Tokens, by vendor, model and type (input, "
                                       "cache_read, cache_write, output, reasoning).", ("vendor", "model", "type"))
        self.cost = registry.counter("interlock_cost_usd_total", "Cost in USD (exact or estimated), by vendor and "
                                     "model.", ("vendor", "model"))

    def observe(self, ctx: RequestContext) -> None:
        target = ctx.target
        series_key = target.key if target is not None else ""
        labels = self._series.get(series_key)
        if labels is None:
            vendor, model = (target.vendor_id, target.model_id) if target is not None else ("none", "none")
            labels = self._series[series_key] = _SeriesLabels(vendor, model)
        status = 499 if ctx.client_disconnected else ctx.status
        by_status = labels.by_status.get(status)
        if by_status is None:
            by_status = labels.by_status[status] = (labels.vendor, labels.model, str(status))
        self.requests.inc(by_status)
        if status >= 400:
            error = ctx.error
            kind = (error.code or error.type) if error is not None else "client_disconnected"
            self.errors.inc((labels.vendor, labels.model, kind))
        vm = labels.vm
        started = ctx.started
        self.duration.observe(vm, time.perf_counter() - started)
        if ctx.first_byte is not None:
            self.ttft.observe(vm, ctx.first_byte - started)
        usage = ctx.usage
        if usage is not None:
            tokens = self.tokens
            tokens.inc(labels.input, usage.input_tokens)
            tokens.inc(labels.output, usage.output_tokens)
            if usage.cache_read_tokens:
                tokens.inc(labels.cache_read, usage.cache_read_tokens)
            if usage.cache_write_tokens:
                tokens.inc(labels.cache_write, usage.cache_write_tokens)
            if usage.reasoning_tokens:
                tokens.inc(labels.reasoning, usage.reasoning_tokens)
        cost = ctx.cost
        if cost is not None:
            self.cost.inc(vm, cost.picousd / 1e12)

    def watch_ledger(self, writer: LogWriterHealth) -> None:
        """The request log's own health, read at scrape time."""

        def collect() -> list[tuple[str, str, str, list[tuple[dict[str, str], float]]]]:
            kind = {"store": writer.store.kind}
            return [
                ("interlock_log_store_up", "gauge", "1 when the request log store accepts writes, 0 while records "
                 "spill to the local file.", [(kind, float(writer.store_up))]),
                ("interlock_log_pending_records", "gauge", "Records waiting for the next flush.",
                 [(kind, float(writer.pending))]),
                ("interlock_log_records_written", "gauge", "Records this worker wrote to the store since start.",
                 [(kind, float(writer.written))]),
                ("interlock_log_records_spilled", "gauge", "Records this worker spilled to the local file since start.",
                 [(kind, float(writer.spilled))]),
            ]

        self.registry.collector(collect)
