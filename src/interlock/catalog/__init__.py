"""Model catalog, exact cost accounting and offline token counting.

Everything other packages need is re-exported here; the submodules are
``catalog`` (schema, lookup, config overrides), ``tokens`` (offline token
counting), ``render`` (API and CLI views). The money model is
:mod:`interlock.core.pricing`; usage parsers are :mod:`interlock.core.usage`
(the canonical one) and each vendor's folder.
"""

from interlock.catalog.catalog import CAPABILITIES, Catalog, load_catalog, load_catalog_file
from interlock.catalog.tokens import count_tokens, estimate_chat_tokens, image_tokens
from interlock.catalog.tokens import warm as warm_tokenizers

__all__ = [
    "CAPABILITIES",
    "Catalog",
    "count_tokens",
    "estimate_chat_tokens",
    "image_tokens",
    "load_catalog",
    "load_catalog_file",
    "warm_tokenizers",
]
