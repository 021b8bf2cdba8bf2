"""The vendors this build knows, assembled from each vendor package's ``VENDOR`` declaration.

:data:`PACKAGES` is the one list of vendor packages (a new vendor is a folder
and a line here). From it come the config's :data:`VENDOR_TABLE` (built-in
specs, each type's settings), the live vendors of one worker process
(:func:`build_vendors`: each vendor's adapters over its transport), and the
per-type answers other layers ask (:func:`returns_logprobs`, :func:`catalog_ids`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from interlock.config import Settings, VendorConfig, VendorTable
from interlock.core.vendor import ChatAdapter, EmbeddingAdapter, VendorRuntime, VendorSpec
from interlock.vendors import anthropic, bedrock, cohere, gemini, openai_compat, vertex
from interlock.vendors import simulator as simulator_vendor
from interlock.vendors.declaration import DEFAULT_CATALOG_IDS, CatalogIds, VendorPackage
from interlock.vendors.transport import HttpTransport, Transport

#: Every vendor package, in the order their built-in vendors are listed.
PACKAGES: tuple[VendorPackage, ...] = (
    openai_compat.VENDOR,
    anthropic.VENDOR,
    gemini.VENDOR,
    vertex.VENDOR,
    bedrock.VENDOR,
    cohere.VENDOR,
    simulator_vendor.VENDOR,
)

#: Client headers forwarded to the simulator only (fault and latency injection for tests).
SIMULATOR_HEADERS = ("x-interlock-simulator-fault", "x-interlock-simulator-latency")


def _by_type(packages: tuple[VendorPackage, ...]) -> Mapping[str, VendorPackage]:
    out: dict[str, VendorPackage] = {}
    for package in packages:
        if package.type in out:
            raise ValueError(f"two vendor packages declare the type {package.type!r}")
        out[package.type] = package
    return MappingProxyType(out)


def _table(packages: tuple[VendorPackage, ...]) -> VendorTable:
    specs: dict[str, VendorSpec] = {}
    for package in packages:
        for spec in package.specs:
            if spec.id in specs:
                raise ValueError(f"two vendor packages declare the vendor {spec.id!r}")
            specs[spec.id] = spec
    return VendorTable(MappingProxyType(specs),
                       MappingProxyType({package.type: package.settings for package in packages}))


BY_TYPE = _by_type(PACKAGES)
#: What ``config.load_settings`` needs to know of the vendors (config imports no vendor code).
VENDOR_TABLE = _table(PACKAGES)
_CATALOG_IDS: Mapping[str, CatalogIds] = MappingProxyType(
    {vid: ids for package in PACKAGES for vid, ids in package.catalog_ids.items()})


def returns_logprobs(spec: VendorSpec, vendor_model: str) -> bool:
    """Whether interlock gets ``logprobs`` back from this vendor for this model."""
    package = BY_TYPE.get(spec.type)
    return package is not None and package.logprobs(spec, vendor_model)


def catalog_ids(vendor_id: str) -> CatalogIds:
    """How the catalog compiler reads this built-in vendor's model ids."""
    return _CATALOG_IDS.get(vendor_id, DEFAULT_CATALOG_IDS)


def runtime(vendor: VendorConfig, adapter: ChatAdapter, embedder: EmbeddingAdapter | None = None) -> VendorRuntime:
    return VendorRuntime(vendor.spec, vendor.timeouts, adapter, embedder, vendor.regions)


def build_vendors(settings: Settings, http: HttpTransport, simulator: Transport | None) -> Mapping[str, VendorRuntime]:
    """Each live vendor's runtime: its package's adapters over HTTP, or over the simulator's in-process transport."""
    live: dict[str, VendorRuntime] = {}
    for vendor in settings.live_vendors():
        package = BY_TYPE[vendor.spec.type]
        transport = simulator if package.in_process else http
        if transport is None:
            continue
        embedder = package.embedder(vendor, transport) if package.embedder is not None else None
        live[vendor.id] = runtime(vendor, package.chat(vendor, transport), embedder)
    return live
