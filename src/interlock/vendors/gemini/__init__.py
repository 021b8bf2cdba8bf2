"""Google Gemini (the Gemini Developer API): generateContent and embeddings."""

from interlock.core.vendor import VendorSpec
from interlock.vendors.declaration import VendorPackage
from interlock.vendors.gemini.chat import GeminiAdapter
from interlock.vendors.gemini.embeddings import GeminiEmbedder
from interlock.vendors.gemini.usage import usage_from_gemini


def _logprobs(spec: VendorSpec, vendor_model: str) -> bool:
    return True  # ``logprobsResult``, mapped to OpenAI's shape


VENDOR: VendorPackage = VendorPackage(
    type="gemini",
    specs=(VendorSpec("google", "Google Gemini", "gemini", "https://generativelanguage.googleapis.com",
                      ("GEMINI_API_KEY", "GOOGLE_API_KEY"), auth="x-goog-api-key",
                      docs="https://ai.google.dev/api/generate-content"),),
    chat=GeminiAdapter,
    usage=(usage_from_gemini,),
    embedder=GeminiEmbedder,
    logprobs=_logprobs,
)
