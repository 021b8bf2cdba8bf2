"""Cohere embeddings: ``POST /v2/embed`` (and the same body on Bedrock, see ``embeddings_bedrock.py``).

Reference: https://docs.cohere.com/reference/embed. Cohere requires an
``input_type`` for v3+ models; it has no OpenAI field, so callers pass it as an
extra body field (``input_type: search_query``) and it defaults to
``search_document`` - embedding documents for an index is what an OpenAI-style
client most often does. ``embedding_types: ["float"]`` is always asked for (the
gateway encodes base64 itself when the caller wants it); OpenAI's
``dimensions`` becomes ``output_dimension`` (embed-v4 and newer). A call takes
at most 96 texts, so larger inputs are split and sent concurrently. Billed
input tokens come back in ``meta.billed_units.input_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import orjson

from interlock.core.errors import UpstreamError
from interlock.core.vendor import EmbeddingResult, Vector
from interlock.vendors.cohere.chat import CohereAdapter
from interlock.vendors.embeddings_common import (
    bounded_gather,
    check_vectors,
    chunks,
    int_or_none,
    option,
    sum_tokens,
    texts_of,
)
from interlock.vendors.errors import error_from_status
from interlock.vendors.translate_common import load_json

#: Cohere's limit on texts in one embed call (also on Bedrock).
MAX_TEXTS = 96
PARALLEL = 4
DEFAULT_INPUT_TYPE = "search_document"


def encode_embed(texts: Sequence[str], request: Mapping[str, Any], *, output_dimension: bool = True) -> dict[str, Any]:
    """The embed body without ``model`` (Bedrock takes the model from the URL)."""
    body: dict[str, Any] = {
        "texts": list(texts),
        "input_type": option(request, "input_type") or DEFAULT_INPUT_TYPE,
        "embedding_types": ["float"],
    }
    truncate = option(request, "truncate")
    if truncate is not None:
        body["truncate"] = truncate.upper()
    dimensions = request.get("dimensions")
    if dimensions is not None and output_dimension:
        body["output_dimension"] = dimensions
    return body


def decode_embed(data: Any, expected: int, vendor: str) -> list[Vector]:
    """Float vectors from ``embeddings.float`` (by-type answers) or ``embeddings`` (legacy float answers)."""
    embeddings = data.get("embeddings") if isinstance(data, dict) else None
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list):
        raise UpstreamError(f"{vendor} sent an answer without float embeddings", code="upstream_invalid_response")
    return check_vectors(embeddings, expected, vendor)


def billed_input_tokens(data: Any) -> int | None:
    meta = data.get("meta") if isinstance(data, dict) else None
    units = meta.get("billed_units") if isinstance(meta, dict) else None
    return int_or_none(units.get("input_tokens")) if isinstance(units, dict) else None


class CohereEmbedder(CohereAdapter):
    """The chat adapter's key and headers, pointed at ``/v2/embed``."""

    async def _call(self, texts: Sequence[str], vendor_model: str, request: Mapping[str, Any],
                    extra_headers: Mapping[str, str] | None) -> tuple[list[Vector], int | None]:
        body = orjson.dumps({"model": vendor_model, **encode_embed(texts, request)})
        headers = {**self._headers, **extra_headers} if extra_headers else self._headers
        resp = await self.transport.request("POST", f"{self.vendor.base_url}/v2/embed", headers, body,
                                            self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise error_from_status(self.name, resp.status, resp.headers, raw)
        data = load_json(raw, self.name)
        return decode_embed(data, len(texts), self.name), billed_input_tokens(data)

    async def embed(self, request: Mapping[str, Any], vendor_model: str,
                    extra_headers: Mapping[str, str] | None = None) -> EmbeddingResult:
        texts = texts_of(request)
        calls = [partial(self._call, batch, vendor_model, request, extra_headers) for batch in chunks(texts, MAX_TEXTS)]
        results = await bounded_gather(calls, PARALLEL)
        vectors = [vector for batch, _ in results for vector in batch]
        return EmbeddingResult(vectors, sum_tokens([tokens for _, tokens in results]), vendor_model)
