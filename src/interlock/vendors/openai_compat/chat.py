"""The OpenAI-compatible adapter: one class, every vendor that speaks Chat Completions.

A :class:`~interlock.vendors.openai_compat.specs.VendorSpec` says where and how to send; this
adapter re-targets the canonical request (vendor model id, the vendor's name
for the output limit, usage always requested when streaming) and turns the
answer back into canonical data. Stream chunks are not parsed: they already are
canonical, so they pass through as the bytes the vendor sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from interlock.config import VendorConfig
from interlock.core.errors import UpstreamError
from interlock.core.vendor import Completion
from interlock.vendors.errors import error_from_status
from interlock.vendors.openai_compat.settings import OpenAICompatSettings
from interlock.vendors.transport import Transport, UpstreamResponse
from interlock.wire.sse import DONE, SSEDecoder

#: Log-probability parameters, dropped for a vendor whose quirks say it returns none.
_LOGPROBS = ("logprobs", "top_logprobs")


class ChunkStream:
    """Canonical chunk payloads from an OpenAI-dialect SSE body, a batch per network read."""

    __slots__ = ("_decoder", "_iter", "_last", "_resp", "dropped", "finished", "truncated")

    def __init__(self, resp: UpstreamResponse, dropped: tuple[str, ...] = ()) -> None:
        self._resp = resp
        #: Request parameters the vendor cannot honour, removed before sending.
        self.dropped = dropped
        self._iter = resp.iter_bytes().__aiter__()
        self._decoder = SSEDecoder()
        self._last = b""
        self.finished = False
        self.truncated = False

    async def next_batch(self) -> list[bytes] | None:
        """The next payloads, or None at the end of the stream."""
        while not self.finished:
            try:
                data = await self._iter.__anext__()
            except StopAsyncIteration:
                self.finished = True
                # A vendor that closes without [DONE] and without a finish_reason cut the answer short.
                self.truncated = not _finished(self._last)
                return None
            payloads = self._decoder.feed_data(data)
            if payloads and payloads[-1] == DONE:
                self.finished = True
                payloads.pop()
            elif DONE in payloads:
                self.finished = True
                del payloads[payloads.index(DONE):]
            if payloads:
                self._last = payloads[-1]
                return payloads
        return None

    def close(self) -> None:
        self._resp.close()


def _finished(last: bytes) -> bool:
    """Does the last payload of a stream closed without [DONE] end the answer (a finish reason, or the usage
    chunk that follows it)? Parsed, so ``"finish_reason": null`` with any spacing reads as unfinished."""
    try:
        chunk = orjson.loads(last)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(chunk, dict):
        return False
    if isinstance(chunk.get("usage"), dict):
        return True
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") is not None
                                             for c in choices)


def _every_model(returns: bool) -> Callable[[str], bool]:
    """The same answer for every model: what the spec's quirks say of the vendor."""
    return lambda vendor_model: returns


class OpenAICompatAdapter:
    def __init__(self, vendor: VendorConfig, transport: Transport,
                 logprobs: Callable[[str], bool] | None = None) -> None:
        """``logprobs`` says which models return log probabilities (default: the spec's quirks say, for all)."""
        self.vendor = vendor
        self.transport = transport
        spec = vendor.spec
        headers = {"content-type": "application/json", "accept": "application/json"}
        if vendor.api_key is not None:
            if spec.auth == "bearer":
                headers["authorization"] = f"Bearer {vendor.api_key}"
            elif spec.auth == "api-key":
                headers["api-key"] = vendor.api_key
        headers.update(vendor.headers)
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._url = f"{vendor.base_url}/chat/completions"
        self._quirks = spec.quirks
        self._logprobs = logprobs if logprobs is not None else _every_model(spec.quirks.logprobs)
        self.settings = vendor.settings_as(OpenAICompatSettings)
        self._azure = spec.auth == "api-key" and self.settings.api_version is not None

    def url(self, vendor_model: str) -> str:
        if self._azure:
            deployment = self.settings.deployments.get(vendor_model, vendor_model)
            return (f"{self.vendor.base_url}/openai/deployments/{deployment}/chat/completions"
                    f"?api-version={self.settings.api_version}")
        return self._url

    def dropped(self, request: Mapping[str, Any], vendor_model: str) -> tuple[str, ...]:
        """Parameters this vendor cannot honour that the request sets (removed by ``encode``)."""
        if self._logprobs(vendor_model):
            return ()
        return tuple(k for k in _LOGPROBS if request.get(k) not in (None, False))

    def encode(self, request: Mapping[str, Any], vendor_model: str, stream: bool) -> bytes:
        body = dict(request)
        body["model"] = vendor_model
        quirks = self._quirks
        if not self._logprobs(vendor_model):
            for key in _LOGPROBS:
                body.pop(key, None)
        if quirks.max_tokens_param == "max_tokens" and "max_completion_tokens" in body and "max_tokens" not in body:
            body["max_tokens"] = body.pop("max_completion_tokens")
        if stream:
            body["stream"] = True
            if quirks.stream_options:
                options = body.get("stream_options")
                body["stream_options"] = {**options, "include_usage": True} if options else {"include_usage": True}
            else:
                body.pop("stream_options", None)
        return orjson.dumps(body)

    def _send_headers(self, stream: bool, extra: Mapping[str, str] | None) -> Mapping[str, str]:
        base = self._stream_headers if stream else self._headers
        return {**base, **extra} if extra else base

    async def complete(self, request: Mapping[str, Any], vendor_model: str,
                       extra_headers: Mapping[str, str] | None = None) -> Completion:
        body = self.encode(request, vendor_model, stream=False)
        resp = await self.transport.request("POST", self.url(vendor_model), self._send_headers(False, extra_headers),
                                            body, self.vendor.timeouts)
        raw = await resp.read()
        if resp.status >= 400:
            raise error_from_status(self.vendor.spec.name, resp.status, resp.headers, raw)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.vendor.spec.name} sent an answer that is not valid JSON",
                                code="upstream_invalid_response") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            if isinstance(data, dict) and "error" in data:
                raise error_from_status(self.vendor.spec.name, 502, resp.headers, raw)
            raise UpstreamError(f"{self.vendor.spec.name} sent an answer without 'choices'",
                                code="upstream_invalid_response")
        return Completion(data, resp.status, self.dropped(request, vendor_model))

    async def stream(self, request: Mapping[str, Any], vendor_model: str,
                     extra_headers: Mapping[str, str] | None = None) -> ChunkStream:
        body = self.encode(request, vendor_model, stream=True)
        resp = await self.transport.request("POST", self.url(vendor_model), self._send_headers(True, extra_headers),
                                            body, self.vendor.timeouts)
        if resp.status >= 400:
            raw = await resp.read()
            raise error_from_status(self.vendor.spec.name, resp.status, resp.headers, raw)
        ctype = resp.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            raw = await resp.read()
            raise UpstreamError(f"{self.vendor.spec.name} answered a streaming request with '{ctype or 'no content type'}'"
                                f" instead of an event stream: {raw[:200].decode('utf-8', 'replace')}",
                                code="upstream_invalid_response")
        return ChunkStream(resp, self.dropped(request, vendor_model))
