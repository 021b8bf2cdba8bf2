"""Vertex AI: Gemini and Claude models in a Google Cloud project, one service-account credential.

Same bodies as the vendors' own APIs, other URLs and auth
(https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude and
.../model-reference/inference):

* Gemini: ``{base}/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent``
  (``:streamGenerateContent?alt=sse``);
* Claude: ``.../publishers/anthropic/models/{m}:rawPredict`` (``:streamRawPredict``), with
  ``anthropic_version: vertex-2023-10-16`` in the body and no ``model`` field.

The publisher is chosen from the model id (``claude-*`` → Anthropic). Every
request carries a bearer token from ``vertex/credentials.token_source`` (google-auth's
application default credentials, or a service account), refreshed in the background before it expires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from interlock.config import VendorConfig
from interlock.core.vendor import ChunkSource, Completion
from interlock.vendors.anthropic.chat import AnthropicAdapter, encode_request
from interlock.vendors.gemini.chat import GeminiAdapter
from interlock.vendors.translate_common import Drops
from interlock.vendors.transport import Transport
from interlock.vendors.vertex.credentials import TokenSource, token_source
from interlock.vendors.vertex.settings import VertexSettings

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


def _model_path(vendor: VendorConfig, publisher: str, model: str) -> str:
    settings = vendor.settings_as(VertexSettings)
    return (f"{vendor.base_url}/v1/projects/{settings.project}/locations/{settings.location}/publishers/{publisher}"
            f"/models/{quote(model, safe='@')}")


class _VertexGemini(GeminiAdapter):
    def __init__(self, vendor: VendorConfig, transport: Transport, tokens: TokenSource) -> None:
        super().__init__(vendor, transport)
        self._tokens = tokens
        self._headers.pop("x-goog-api-key", None)

    def url(self, vendor_model: str, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{_model_path(self.vendor, 'google', vendor_model)}:{method}"

    async def headers(self, extra: Mapping[str, str] | None) -> Mapping[str, str]:
        return {**self._headers, **(extra or {}), **await self._tokens.auth_headers()}


class _VertexClaude(AnthropicAdapter):
    def __init__(self, vendor: VendorConfig, transport: Transport, tokens: TokenSource) -> None:
        super().__init__(vendor, transport)
        self._tokens = tokens
        self._headers.pop("anthropic-version", None)
        self._headers.pop("x-api-key", None)

    def url(self, vendor_model: str, stream: bool) -> str:
        return f"{_model_path(self.vendor, 'anthropic', vendor_model)}:{'streamRawPredict' if stream else 'rawPredict'}"

    def body(self, request: Mapping[str, Any], vendor_model: str, stream: bool) -> tuple[bytes, Drops, str | None]:
        payload, drops, forced = encode_request(request, None, stream=stream, vendor=self.name)
        payload["anthropic_version"] = self.vendor.settings_as(VertexSettings).anthropic_version or VERTEX_ANTHROPIC_VERSION
        return orjson.dumps(payload), drops, forced

    async def headers(self, extra: Mapping[str, str] | None, stream: bool) -> Mapping[str, str]:
        headers = {**self._headers, **(extra or {}), **await self._tokens.auth_headers()}
        if stream:
            headers["accept"] = "text/event-stream"
        return headers


class VertexAdapter:
    """Routes each model to its publisher's wire format; one token source for both."""

    def __init__(self, vendor: VendorConfig, transport: Transport) -> None:
        self.vendor = vendor
        self.tokens = token_source(vendor.settings_as(VertexSettings), transport)
        self.gemini = _VertexGemini(vendor, transport, self.tokens)
        self.claude = _VertexClaude(vendor, transport, self.tokens)

    def _for(self, vendor_model: str) -> _VertexGemini | _VertexClaude:
        return self.claude if vendor_model.startswith("claude") else self.gemini

    async def complete(self, request: Mapping[str, Any], vendor_model: str,
                       extra_headers: Mapping[str, str] | None = None) -> Completion:
        return await self._for(vendor_model).complete(request, vendor_model, extra_headers)

    async def stream(self, request: Mapping[str, Any], vendor_model: str,
                     extra_headers: Mapping[str, str] | None = None) -> ChunkSource:
        return await self._for(vendor_model).stream(request, vendor_model, extra_headers)
