"""Live vendors of one worker process: each vendor's config, adapter and transport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from interlock.config import Settings, VendorConfig
from interlock.vendors.adapter import ChatAdapter, EmbeddingAdapter
from interlock.vendors.embeddings_registry import build_embedder
from interlock.vendors.native import NATIVE_ADAPTERS
from interlock.vendors.openai_compat import OpenAICompatAdapter
from interlock.vendors.transport import HttpTransport, Transport

#: Client headers forwarded to the simulator only (fault and latency injection for tests).
SIMULATOR_HEADERS = ("x-interlock-simulator-fault", "x-interlock-simulator-latency")


@dataclass(frozen=True, slots=True)
class VendorRuntime:
    config: VendorConfig
    adapter: ChatAdapter
    #: ``POST /v1/embeddings`` for this vendor; None when it has no embeddings API.
    embedder: EmbeddingAdapter | None = None

    @property
    def id(self) -> str:
        return self.config.id


def build_vendors(settings: Settings, http: HttpTransport, simulator: Transport | None) -> Mapping[str, VendorRuntime]:
    live: dict[str, VendorRuntime] = {}
    for vendor in settings.live_vendors():
        if vendor.spec.type == "simulator":
            if simulator is None:
                continue
            live[vendor.id] = VendorRuntime(vendor, OpenAICompatAdapter(vendor, simulator),
                                            build_embedder(vendor, simulator))
        elif vendor.spec.type in NATIVE_ADAPTERS:
            live[vendor.id] = VendorRuntime(vendor, NATIVE_ADAPTERS[vendor.spec.type](vendor, http),
                                            build_embedder(vendor, http))
        else:
            live[vendor.id] = VendorRuntime(vendor, OpenAICompatAdapter(vendor, http), build_embedder(vendor, http))
    return live
