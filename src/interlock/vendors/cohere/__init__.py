"""Cohere: the v2 chat API and embeddings."""

from interlock.core.vendor import VendorSpec
from interlock.vendors.cohere.chat import CohereAdapter
from interlock.vendors.cohere.embeddings import CohereEmbedder
from interlock.vendors.cohere.usage import usage_from_cohere
from interlock.vendors.declaration import VendorPackage

VENDOR: VendorPackage = VendorPackage(
    type="cohere",
    specs=(VendorSpec("cohere", "Cohere", "cohere", "https://api.cohere.com", ("COHERE_API_KEY",),
                      docs="https://docs.cohere.com/reference/chat"),),
    chat=CohereAdapter,
    usage=(usage_from_cohere,),
    embedder=CohereEmbedder,
)
