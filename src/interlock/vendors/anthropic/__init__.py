"""Anthropic: the Messages API (no embeddings endpoint)."""

from interlock.core.vendor import VendorSpec
from interlock.vendors.anthropic.chat import AnthropicAdapter
from interlock.vendors.anthropic.settings import SETTINGS
from interlock.vendors.anthropic.usage import usage_from_anthropic
from interlock.vendors.declaration import VendorPackage

VENDOR: VendorPackage = VendorPackage(
    type="anthropic",
    specs=(VendorSpec("anthropic", "Anthropic", "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",),
                      auth="x-api-key", docs="https://docs.anthropic.com/en/api/messages",
                      via_tools=frozenset({"structured_outputs"})),),
    chat=AnthropicAdapter,
    usage=(usage_from_anthropic,),
    settings=SETTINGS,
)
