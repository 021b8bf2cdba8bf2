"""Gemini embeddings: ``POST /v1beta/models/{model}:batchEmbedContents``.

Reference: https://ai.google.dev/api/embeddings. Each input becomes one
``EmbedContentRequest`` (``model``, ``content.parts[].text``, optional
``taskType``, ``title`` and ``outputDimensionality`` - the latter from
OpenAI's ``dimensions``). The task type has no OpenAI field: callers pass it as
an extra body field, ``task_type`` (or ``taskType``), e.g.
``extra_body={"task_type": "RETRIEVAL_QUERY"}`` with the OpenAI SDK.

The API takes at most 100 requests per batch (a 400 otherwise), so larger
inputs are split and the batches sent concurrently. The answer carries no
token count; the gateway counts the input itself and marks the cost estimated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson

from interlock.core.errors import UpstreamError
from interlock.core.vendor import EmbeddingResult, Vector
from interlock.vendors.embeddings_common import bounded_gather, check_vectors, chunks, option, texts_of
from interlock.vendors.gemini.chat import GeminiAdapter, gemini_error
from interlock.vendors.translate_common import load_json

#: Gemini's limit on requests in one ``batchEmbedContents`` call.
MAX_BATCH = 100
#: Batches of one request in flight at once.
PARALLEL = 4


def encode_batch(texts: Sequence[str], vendor_model: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """The ``BatchEmbedContentsRequest`` body for ``texts``."""
    model = "models/" + vendor_model.removeprefix("models/")
    shared: dict[str, Any] = {}
    task = option(request, "task_type", "taskType")
    if task is not None:
        shared["taskType"] = task.upper()
    title = option(request, "title")
    if title is not None:
        shared["title"] = title
    dimensions = request.get("dimensions")
    if dimensions is not None:
        shared["outputDimensionality"] = dimensions
    return {"requests": [{"model": model, "content": {"parts": [{"text": text}]}, **shared} for text in texts]}


def decode_batch(data: Any, expected: int, vendor: str) -> list[Vector]:
    """``BatchEmbedContentsResponse.embeddings[].values`` in request order."""
    embeddings = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(embeddings, list):
        raise UpstreamError(f"{vendor} sent an answer without 'embeddings'", code="upstream_invalid_response")
    return check_vectors([item.get("values") if isinstance(item, dict) else None for item in embeddings],
                         expected, vendor)


class GeminiEmbedder(GeminiAdapter):
    """The Gemini Developer API's key and base URL, pointed at ``batchEmbedContents``."""

    def embeddings_url(self, vendor_model: str) -> str:
        model = quote(vendor_model.removeprefix("models/"), safe="")
        return f"{self.vendor.base_url}/v1beta/models/{model}:batchEmbedContents"

    async def _batch(self, texts: Sequence[str], vendor_model: str, request: Mapping[str, Any],
                     extra_headers: Mapping[str, str] | None) -> list[Vector]:
        body = orjson.dumps(encode_batch(texts, vendor_model, request))
        resp = await self.transport.request("POST", self.embeddings_url(vendor_model),
                                            await self.headers(extra_headers), body, self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise gemini_error(self.name, resp.status, resp.headers, raw)
        return decode_batch(load_json(raw, self.name), len(texts), self.name)

    async def embed(self, request: Mapping[str, Any], vendor_model: str,
                    extra_headers: Mapping[str, str] | None = None) -> EmbeddingResult:
        texts = texts_of(request)
        calls = [partial(self._batch, batch, vendor_model, request, extra_headers)
                 for batch in chunks(texts, MAX_BATCH)]
        batches = await bounded_gather(calls, PARALLEL)
        return EmbeddingResult([vector for batch in batches for vector in batch], None, vendor_model)
