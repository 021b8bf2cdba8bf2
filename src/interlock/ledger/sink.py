"""Where a settled request goes: the request log, the metrics and the trace exporter.

``settle`` calls :meth:`RequestSink.settle` once per request, on the hot path:
metrics are a few dict updates; the log record is one row (a tuple in the
store's column order, ``record.build_row``) appended to the writer's list;
spans are built later by the tracer from the record that row stands for.
"""

from __future__ import annotations

from typing import Protocol

from interlock.core.context import RequestContext
from interlock.ledger.record import Redactor, build_row
from interlock.ledger.rowcodec import Row, row_record
from interlock.ledger.settings import LogSettings
from interlock.observability.requests import RequestMetrics
from interlock.observability.tracing import Tracer


class RowWriter(Protocol):
    """Where settled rows go: ``ledger.writer.LedgerWriter`` (tests collect them)."""

    def submit(self, row: Row) -> None: ...


class RequestSink:
    def __init__(self, settings: LogSettings, writer: RowWriter | None, metrics: RequestMetrics | None,
                 tracer: Tracer | None) -> None:
        self.settings = settings
        self.writer = writer
        self.metrics = metrics
        self.tracer = tracer
        self.redactor = Redactor(settings.secrets)

    def wants_content(self, ctx: RequestContext) -> bool:
        """Whether to keep this request's content for the log (decided once the caller is known)."""
        # The project's level may raise the global one, so this is asked per request (a dict lookup).
        return self.writer is not None and self.settings.level_for(ctx) == "full"

    def settle(self, ctx: RequestContext) -> None:
        if self.metrics is not None:
            self.metrics.observe(ctx)
        writer = self.writer
        tracer = self.tracer
        traced = tracer is not None and tracer.sampled(ctx.traceparent)
        if writer is None and not traced:
            return
        level = self.settings.level_for(ctx)
        logged = writer is not None and level != "off"
        if not logged and not traced:
            return
        # Zero data retention: no content and not even an error message (vendors quote prompts in them).
        zdr = ctx.zero_data_retention or self.settings.zero_data_retention
        row = build_row(ctx, level, zdr, self.redactor)
        if logged and writer is not None:
            writer.submit(row)
        if traced and tracer is not None:
            tracer.submit(row_record(row), ctx.traceparent)
