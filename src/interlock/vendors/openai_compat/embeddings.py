"""Embeddings from OpenAI-compatible vendors (and the simulator): ``POST {base_url}/embeddings``.

Reference: https://platform.openai.com/docs/api-reference/embeddings/create.
The caller's body is already in this format, so it is sent as is with the
vendor's model id; ``encoding_format`` is passed through, so a base64 answer
(what the official SDKs ask for) travels as the vendor's bytes without being
decoded. Azure serves the same body at ``/openai/deployments/{name}/embeddings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from interlock.core.errors import UpstreamError
from interlock.core.vendor import EmbeddingResult
from interlock.vendors.embeddings_common import check_vectors, inputs_of, int_or_none
from interlock.vendors.errors import error_from_status
from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
from interlock.vendors.translate_common import load_json


def decode_embeddings(data: Any, expected: int, vendor: str) -> EmbeddingResult:
    """An OpenAI ``list`` of ``embedding`` objects → vectors in input order."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise UpstreamError(f"{vendor} sent an embeddings answer without 'data'", code="upstream_invalid_response")
    if all(isinstance(item, dict) and isinstance(item.get("index"), int) for item in items):
        items = sorted(items, key=lambda item: item["index"])
    vectors = check_vectors([item.get("embedding") if isinstance(item, dict) else None for item in items],
                            expected, vendor)
    usage = data.get("usage")
    tokens = int_or_none(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
    model = data.get("model")
    return EmbeddingResult(vectors, tokens, model if isinstance(model, str) else None)


class OpenAICompatEmbedder(OpenAICompatAdapter):
    """The chat adapter's credentials and Azure routing, pointed at the embeddings endpoint."""

    def embeddings_url(self, vendor_model: str) -> str:
        if self._azure:
            deployment = self.settings.deployments.get(vendor_model, vendor_model)
            return (f"{self.vendor.base_url}/openai/deployments/{deployment}/embeddings"
                    f"?api-version={self.settings.api_version}")
        return f"{self.vendor.base_url}/embeddings"

    async def embed(self, request: Mapping[str, Any], vendor_model: str,
                    extra_headers: Mapping[str, str] | None = None) -> EmbeddingResult:
        body = dict(request)
        body["model"] = vendor_model
        name = self.vendor.spec.name
        resp = await self.transport.request("POST", self.embeddings_url(vendor_model),
                                            self._send_headers(False, extra_headers), orjson.dumps(body),
                                            self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise error_from_status(name, resp.status, resp.headers, raw)
        return decode_embeddings(load_json(raw, name), len(inputs_of(request)), name)
