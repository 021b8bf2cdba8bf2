"""Telemetry's settings, read from ``telemetry:`` (OTLP traces, ``/metrics``, sampling).

Validated once in the launching process (``app.validate``) and again in each worker, so a bad value
fails ``interlock serve`` with the file and line instead of a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from interlock.config import Settings

TELEMETRY_KEYS = ("otlp_endpoint", "service_name", "headers", "metrics", "sample_ratio")


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    otlp_endpoint: str | None = None
    service_name: str = "interlock"
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    #: ``GET /metrics`` (Prometheus); on by default, it costs nothing until scraped.
    metrics: bool = True
    #: Share of requests traced (head sampling), 0..1.
    sample_ratio: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TelemetrySettings:
        sec = settings.section("telemetry")
        sec.only(*TELEMETRY_KEYS)
        endpoint = sec.string("otlp_endpoint")
        if endpoint is not None:
            if not endpoint.startswith(("http://", "https://")):
                raise sec.error(f"expected an http:// or https:// OTLP/HTTP endpoint, got {endpoint!r}",
                                "otlp_endpoint")
            endpoint = endpoint.rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
        ratio = sec.number("sample_ratio", 1.0, minimum=0.0)
        if ratio > 1.0:
            raise sec.error(f"expected a number between 0 and 1, got {ratio:g}", "sample_ratio")
        return cls(
            otlp_endpoint=endpoint,
            service_name=sec.string("service_name", "interlock") or "interlock",
            headers=MappingProxyType(sec.header_map("headers")),
            metrics=sec.boolean("metrics", True),
            sample_ratio=ratio,
        )
