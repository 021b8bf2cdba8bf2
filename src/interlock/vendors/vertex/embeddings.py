"""Vertex AI embeddings: ``POST .../publishers/google/models/{model}:predict``.

Reference: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api.
Each input is one instance ``{"content": text}``, with the optional
``task_type`` and ``title`` (extra body fields, as for the Gemini API:
``extra_body={"task_type": "RETRIEVAL_QUERY"}``); OpenAI's ``dimensions`` is
``parameters.outputDimensionality``. The answer holds, per instance,
``predictions[].embeddings.values`` and ``.statistics.token_count`` (the REST
reference spells it ``tokenCount``; both are read), so the cost is exact.

``gemini-embedding-001`` (and the other Gemini embedding models) take one
instance per request, the older ``text-embedding-*`` / ``text-multilingual-*``
models up to 250: larger inputs are split and the calls sent concurrently.
Auth is the chat adapter's: a bearer token from ``vertex/credentials.token_source``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson

from interlock.config import VendorConfig
from interlock.core.errors import UpstreamError
from interlock.core.vendor import EmbeddingResult, Vector
from interlock.vendors.embeddings_common import (
    bounded_gather,
    check_vectors,
    chunks,
    int_or_none,
    option,
    sum_tokens,
    texts_of,
)
from interlock.vendors.gemini.chat import gemini_error
from interlock.vendors.translate_common import load_json
from interlock.vendors.transport import Transport
from interlock.vendors.vertex.credentials import token_source
from interlock.vendors.vertex.settings import VertexSettings

#: Instances per ``:predict`` call for the text-embedding models (Vertex's documented limit).
MAX_INSTANCES = 250
#: Calls in flight at once for one request.
PARALLEL = 8


def batch_size(vendor_model: str) -> int:
    """Instances one call may carry: Gemini embedding models take exactly one."""
    return 1 if vendor_model.startswith("gemini") else MAX_INSTANCES


def encode_predict(texts: Sequence[str], request: Mapping[str, Any]) -> dict[str, Any]:
    """The ``:predict`` body for ``texts``."""
    shared: dict[str, Any] = {}
    task = option(request, "task_type", "taskType")
    if task is not None:
        shared["task_type"] = task.upper()
    title = option(request, "title")
    if title is not None:
        shared["title"] = title
    body: dict[str, Any] = {"instances": [{"content": text, **shared} for text in texts]}
    dimensions = request.get("dimensions")
    if dimensions is not None:
        body["parameters"] = {"outputDimensionality": dimensions}
    return body


def decode_predict(data: Any, expected: int, vendor: str) -> tuple[list[Vector], int | None]:
    """Vectors in instance order and the summed token count (None when any prediction lacks one)."""
    predictions = data.get("predictions") if isinstance(data, dict) else None
    if not isinstance(predictions, list):
        raise UpstreamError(f"{vendor} sent an answer without 'predictions'", code="upstream_invalid_response")
    vectors: list[Any] = []
    counts: list[int | None] = []
    for prediction in predictions:
        embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
        if not isinstance(embeddings, dict):
            vectors.append(None)
            counts.append(None)
            continue
        values = embeddings.get("values")
        vectors.append(values if isinstance(values, list) else None)  # floats only: no base64 form here
        stats = embeddings.get("statistics")
        stats = stats if isinstance(stats, dict) else {}
        count = stats.get("token_count", stats.get("tokenCount"))
        # JSON from a protobuf Struct may carry integers as floats (``6.0``).
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        counts.append(int_or_none(count))
    return check_vectors(vectors, expected, vendor), sum_tokens(counts)


class VertexEmbedder:
    """Gemini and text-embedding models in a Vertex AI project, one service-account credential."""

    def __init__(self, vendor: VendorConfig, transport: Transport) -> None:
        self.vendor = vendor
        self.transport = transport
        self.name = vendor.spec.name
        self.settings = vendor.settings_as(VertexSettings)
        self.tokens = token_source(self.settings, transport)
        self._headers = {"content-type": "application/json", **vendor.headers}

    def predict_url(self, vendor_model: str) -> str:
        return (f"{self.vendor.base_url}/v1/projects/{self.settings.project}/locations/{self.settings.location}"
                f"/publishers/google/models/{quote(vendor_model, safe='@')}:predict")

    async def _predict(self, texts: Sequence[str], vendor_model: str, request: Mapping[str, Any],
                       extra_headers: Mapping[str, str] | None) -> tuple[list[Vector], int | None]:
        headers = {**self._headers, **(extra_headers or {}), **await self.tokens.auth_headers()}
        body = orjson.dumps(encode_predict(texts, request))
        resp = await self.transport.request("POST", self.predict_url(vendor_model), headers, body,
                                            self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise gemini_error(self.name, resp.status, resp.headers, raw)
        return decode_predict(load_json(raw, self.name), len(texts), self.name)

    async def embed(self, request: Mapping[str, Any], vendor_model: str,
                    extra_headers: Mapping[str, str] | None = None) -> EmbeddingResult:
        texts = texts_of(request)
        calls = [partial(self._predict, batch, vendor_model, request, extra_headers)
                 for batch in chunks(texts, batch_size(vendor_model))]
        results = await bounded_gather(calls, PARALLEL)
        vectors = [vector for batch, _ in results for vector in batch]
        return EmbeddingResult(vectors, sum_tokens([tokens for _, tokens in results]), vendor_model)
