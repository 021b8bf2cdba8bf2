"""What one vendor package declares: the single object ``vendors/registry.py`` assembles vendors from.

Each folder under ``interlock.vendors`` exports ``VENDOR``, a :class:`VendorPackage`
naming everything of its vendor type: the built-in specs, the chat adapter and
embedder factories, the typed settings (keys and parser, for the config), the
usage parsers, which models return log probabilities, and how the catalog
compiler reads its model ids (:class:`CatalogIds`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from interlock.config import VendorConfig, VendorType
from interlock.core.pricing import Usage
from interlock.core.vendor import ChatAdapter, EmbeddingAdapter, VendorSpec
from interlock.vendors.transport import Transport

ChatFactory = Callable[[VendorConfig, Transport], ChatAdapter]
EmbedderFactory = Callable[[VendorConfig, Transport], EmbeddingAdapter]
#: A vendor's usage object(s) -> Usage (Anthropic's takes the stream's successive usages).
UsageParser = Callable[..., Usage]


def split_catalog_id(raw: str) -> tuple[str | None, list[str]]:
    """A lower-cased vendor model id -> (organisation or None, model-name variants, most literal first).

    The default reading: ``org/model`` names its organisation (OpenRouter's ``~``
    alias marker dropped); any other id is the model name alone.
    """
    org: str | None = None
    if raw.count("/") == 1:
        org, raw = raw.split("/")
        org = org.lstrip("~")
    return org, [raw]


@dataclass(frozen=True, slots=True)
class CatalogIds:
    """How the catalog compiler (``tools/catalog_compile.py``) reads one vendor's model ids."""

    #: A lower-cased id (OpenRouter's ``:free`` tier already stripped) -> (organisation, variants); the last
    #: variant is the most normalised one. Strips what only addresses a vendor SKU, not a different model.
    split: Callable[[str], tuple[str | None, list[str]]] = split_catalog_id
    #: Whether the vendor's ``org/model`` ids are read before its other ids (they name their lab reliably).
    org_ids_first: bool = True


DEFAULT_CATALOG_IDS = CatalogIds()
#: A vendor type with no config keys of its own.
NO_SETTINGS_TYPE = VendorType()


def no_logprobs(spec: VendorSpec, vendor_model: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class VendorPackage:
    """Everything one vendor type provides (see the module docstring)."""

    #: The ``VendorSpec.type`` this package serves.
    type: str
    #: Its built-in vendors, in the order the config lists them.
    specs: tuple[VendorSpec, ...]
    chat: ChatFactory
    #: The usage parsers its adapters read the vendor's usage with (Vertex AI: Gemini's and Anthropic's).
    usage: tuple[UsageParser, ...]
    #: The typed settings: the config keys this type reads and their parser.
    settings: VendorType = NO_SETTINGS_TYPE
    embedder: EmbedderFactory | None = None
    #: Whether interlock gets ``logprobs`` back from this vendor for this model.
    logprobs: Callable[[VendorSpec, str], bool] = no_logprobs
    #: Catalog id readers by vendor id; vendors not named read ids the default way.
    catalog_ids: Mapping[str, CatalogIds] = field(default_factory=lambda: MappingProxyType({}))
    #: Served by the in-process simulator transport instead of HTTP.
    in_process: bool = False

    def __post_init__(self) -> None:
        for spec in self.specs:
            if spec.type != self.type:
                raise ValueError(f"vendor package {self.type!r} declares spec {spec.id!r} of type {spec.type!r}")

