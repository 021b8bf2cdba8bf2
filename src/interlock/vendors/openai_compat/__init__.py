"""Every vendor that speaks OpenAI Chat Completions: one adapter, one line of data per vendor (``specs.py``)."""

from interlock.core.usage import usage_from_openai
from interlock.core.vendor import VendorSpec
from interlock.vendors.declaration import VendorPackage
from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
from interlock.vendors.openai_compat.embeddings import OpenAICompatEmbedder
from interlock.vendors.openai_compat.settings import SETTINGS
from interlock.vendors.openai_compat.specs import CATALOG_IDS, SPECS


def _logprobs(spec: VendorSpec, vendor_model: str) -> bool:
    return spec.quirks.logprobs


VENDOR: VendorPackage = VendorPackage(
    type="openai",
    specs=SPECS,
    chat=OpenAICompatAdapter,
    usage=(usage_from_openai,),
    settings=SETTINGS,
    embedder=OpenAICompatEmbedder,
    logprobs=_logprobs,
    catalog_ids=CATALOG_IDS,
)
