"""Bedrock embeddings: ``InvokeModel`` (``POST /model/{id}/invoke``) with each model family's own body.

Converse has no embeddings, so each family is spoken natively (SigV4-signed
like the chat adapter):

* Amazon Titan Text Embeddings (``amazon.titan-embed-text-v2:0``, ``-v1``):
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html -
  one ``inputText`` per call, so a batch is fanned out as concurrent calls;
  ``dimensions`` (256/512/1024) and ``normalize: true`` on v2, the vector in
  ``embedding`` and the count in ``inputTextTokenCount``.
* Cohere Embed (``cohere.embed-*``):
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html -
  Cohere's own body minus ``model`` (``embeddings_cohere.py``), up to 96 texts a call.

Bedrock reports billed tokens of an InvokeModel call in the
``x-amzn-bedrock-input-token-count`` response header; Titan's body count is
used when the header is absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson

from interlock.core.errors import InvalidRequest, UpstreamError
from interlock.core.vendor import EmbeddingResult, Vector
from interlock.vendors.bedrock.chat import BedrockAdapter
from interlock.vendors.cohere.embeddings import MAX_TEXTS, decode_embed, encode_embed
from interlock.vendors.embeddings_common import (
    bounded_gather,
    check_vectors,
    chunks,
    int_or_none,
    sum_tokens,
    texts_of,
)
from interlock.vendors.errors import error_from_status
from interlock.vendors.translate_common import load_json

TOKEN_HEADER = "x-amzn-bedrock-input-token-count"
#: Concurrent InvokeModel calls for one request (Titan embeds one text per call).
PARALLEL = 8


def family(vendor_model: str) -> str | None:
    """``titan`` or ``cohere`` for the embedding models Bedrock serves (regional prefixes allowed)."""
    if "titan-embed-text" in vendor_model or "titan-embed-g1-text" in vendor_model:
        return "titan"
    if "cohere.embed" in vendor_model:
        return "cohere"
    return None


def titan_body(text: str, vendor_model: str, request: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"inputText": text}
    if "-v2" in vendor_model:
        # v1 rejects both fields; v2 normalizes by default, set here so the vectors match OpenAI's (unit length).
        body["normalize"] = True
        if request.get("dimensions") is not None:
            body["dimensions"] = request["dimensions"]
    return body


def _header_tokens(headers: Mapping[str, str]) -> int | None:
    raw = headers.get(TOKEN_HEADER)
    return int(raw) if raw is not None and raw.strip().isdigit() else None


class BedrockEmbedder(BedrockAdapter):
    """The chat adapter's region, credentials and signing, pointed at InvokeModel."""

    def invoke_url(self, vendor_model: str) -> str:
        return f"{self.vendor.base_url}/model/{quote(vendor_model, safe='')}/invoke"

    async def _invoke(self, vendor_model: str, payload: Mapping[str, Any],
                      extra_headers: Mapping[str, str] | None) -> tuple[Any, int | None]:
        body = orjson.dumps(payload)
        url = self.invoke_url(vendor_model)
        resp = await self.transport.request("POST", url, await self._headers(url, body, False, extra_headers), body,
                                            self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise error_from_status(self.name, resp.status, resp.headers, raw)
        return load_json(raw, self.name), _header_tokens(resp.headers)

    async def _titan(self, text: str, vendor_model: str, request: Mapping[str, Any],
                     extra_headers: Mapping[str, str] | None) -> tuple[list[Vector], int | None]:
        data, tokens = await self._invoke(vendor_model, titan_body(text, vendor_model, request), extra_headers)
        if not isinstance(data, dict) or "embedding" not in data:
            raise UpstreamError(f"{self.name} sent a Titan answer without 'embedding'", code="upstream_invalid_response")
        if tokens is None:
            tokens = int_or_none(data.get("inputTextTokenCount"))
        return check_vectors([data["embedding"]], 1, self.name), tokens

    async def _cohere(self, texts: Sequence[str], vendor_model: str, request: Mapping[str, Any],
                      extra_headers: Mapping[str, str] | None) -> tuple[list[Vector], int | None]:
        payload = encode_embed(texts, request, output_dimension="embed-v4" in vendor_model)
        data, tokens = await self._invoke(vendor_model, payload, extra_headers)
        return decode_embed(data, len(texts), self.name), tokens

    async def embed(self, request: Mapping[str, Any], vendor_model: str,
                    extra_headers: Mapping[str, str] | None = None) -> EmbeddingResult:
        kind = family(vendor_model)
        if kind is None:
            raise InvalidRequest(f"{self.name} embeddings are served for Amazon Titan Text Embeddings "
                                 f"(amazon.titan-embed-text-*) and Cohere Embed (cohere.embed-*); "
                                 f"'{vendor_model}' is neither.", param="model")
        texts = texts_of(request)
        if kind == "titan":
            calls = [partial(self._titan, text, vendor_model, request, extra_headers) for text in texts]
        else:
            calls = [partial(self._cohere, batch, vendor_model, request, extra_headers)
                     for batch in chunks(texts, MAX_TEXTS)]
        results = await bounded_gather(calls, PARALLEL)
        vectors = [vector for batch, _ in results for vector in batch]
        return EmbeddingResult(vectors, sum_tokens([tokens for _, tokens in results]), vendor_model)
