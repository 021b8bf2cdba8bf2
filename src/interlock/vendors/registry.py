"""Live vendors of one worker process: each vendor's adapters over its transport."""

from __future__ import annotations

from collections.abc import Mapping

from interlock.config import Settings, VendorConfig
from interlock.core.vendor import ChatAdapter, EmbeddingAdapter, VendorRuntime
from interlock.vendors.embeddings_registry import build_embedder
from interlock.vendors.native import NATIVE_ADAPTERS
from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
from interlock.vendors.transport import HttpTransport, Transport

#: Client headers forwarded to the simulator only (fault and latency injection for tests).
SIMULATOR_HEADERS = ("x-interlock-simulator-fault", "x-interlock-simulator-latency")


def runtime(vendor: VendorConfig, adapter: ChatAdapter, embedder: EmbeddingAdapter | None = None) -> VendorRuntime:
    return VendorRuntime(vendor.spec, vendor.timeouts, adapter, embedder)


def build_vendors(settings: Settings, http: HttpTransport, simulator: Transport | None) -> Mapping[str, VendorRuntime]:
    live: dict[str, VendorRuntime] = {}
    for vendor in settings.live_vendors():
        if vendor.spec.type == "simulator":
            if simulator is None:
                continue
            live[vendor.id] = runtime(vendor, OpenAICompatAdapter(vendor, simulator),
                                            build_embedder(vendor, simulator))
        elif vendor.spec.type in NATIVE_ADAPTERS:
            live[vendor.id] = runtime(vendor, NATIVE_ADAPTERS[vendor.spec.type](vendor, http),
                                            build_embedder(vendor, http))
        else:
            live[vendor.id] = runtime(vendor, OpenAICompatAdapter(vendor, http), build_embedder(vendor, http))
    return live
