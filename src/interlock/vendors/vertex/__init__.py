"""Vertex AI: Gemini and Claude on Google Cloud, with service-account credentials."""

from interlock.core.vendor import VendorSpec
from interlock.vendors.anthropic.usage import usage_from_anthropic
from interlock.vendors.declaration import VendorPackage
from interlock.vendors.gemini.usage import usage_from_gemini
from interlock.vendors.vertex.catalog_ids import CATALOG_IDS
from interlock.vendors.vertex.chat import VertexAdapter
from interlock.vendors.vertex.embeddings import VertexEmbedder
from interlock.vendors.vertex.settings import SETTINGS


def _logprobs(spec: VendorSpec, vendor_model: str) -> bool:
    return not vendor_model.startswith("claude")  # Gemini maps ``logprobsResult``; Claude returns none


VENDOR: VendorPackage = VendorPackage(
    type="vertex",
    specs=(VendorSpec("vertex", "Vertex AI", "vertex", None, (), auth="service-account",
                      docs="https://cloud.google.com/vertex-ai/generative-ai/docs",
                      via_tools=frozenset({"structured_outputs"})),),
    chat=VertexAdapter,
    usage=(usage_from_gemini, usage_from_anthropic),
    settings=SETTINGS,
    embedder=VertexEmbedder,
    logprobs=_logprobs,
    catalog_ids={"vertex": CATALOG_IDS},
)
