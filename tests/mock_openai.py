"""A mock OpenAI-compatible vendor that speaks the real Chat Completions wire format.

It runs on a real socket (aiohttp.web in a background thread) so the gateway
reaches it exactly as it reaches a vendor. Behaviour is chosen by the model
name the gateway forwards (``mock/<behaviour>`` → ``<behaviour>``), which keeps
tests independent of each other:

* ``ok`` / anything else - a normal answer (``echo`` answers with the request it received)
* ``tools`` - an answer with a tool call
* ``status-<code>`` - that HTTP status with an OpenAI error body (429 adds ``Retry-After: 7``)
* ``hang`` - never answers (timeouts)
* ``slow-first-byte`` - headers after 3 s
* ``slow-stream`` - a stream of 200 chunks, one every 50 ms (disconnect tests)
* ``no-usage`` - a stream without a usage chunk
* ``truncate`` - a stream that stops without a finish_reason or [DONE]
* ``stall`` - a stream that sends one chunk and then goes silent
* ``not-json`` - a 200 whose body is not JSON
* ``parrot`` / ``reverse`` - answers with the last user message as it is / reversed (streamed three
  characters a chunk), so a test can make the model "write" a value the request did not show as such
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from tests.socket_app import SocketApp


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None, idx: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-mock123",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": idx, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _said(body: dict[str, Any], model: str) -> str:
    """The last user message's text, reversed for ``reverse``."""
    text = ""
    for message in body.get("messages") or ():
        if message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else "".join(
                part.get("text", "") for part in content or () if isinstance(part, dict))
    return text[::-1] if model == "reverse" else text


USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}


class MockVendor(SocketApp):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.disconnects: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)

    def last(self, model: str) -> dict[str, Any]:
        for entry in reversed(self.requests):
            if entry["body"].get("model") == model:
                return entry
        raise AssertionError(f"the mock received no request for {model}")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body, "path": request.path_qs})
        model = body.get("model", "")
        if model.startswith("status-"):
            code = int(model.split("-", 1)[1])
            headers = {"Retry-After": "7"} if code == 429 else {}
            return web.json_response({"error": {"message": f"mock failure {code}", "type": "server_error" if code >= 500
                                                else "invalid_request_error", "param": "messages" if code == 400 else None,
                                                "code": f"mock_{code}"}}, status=code, headers=headers)
        if model == "hang":
            await asyncio.sleep(60)
        if model == "slow-first-byte":
            for _ in range(60):
                await asyncio.sleep(0.05)
                if request.transport is None or request.transport.is_closing():
                    self.disconnects.append(model)
                    return web.Response(status=499)
        if model == "not-json":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if body.get("stream"):
            return await self._stream(request, body, model)
        message: dict[str, Any] = {"role": "assistant", "content": "Hello from the mock.", "refusal": None}
        finish = "stop"
        if model == "echo":
            message["content"] = json.dumps(body, sort_keys=True)
        if model in ("parrot", "reverse"):
            message["content"] = _said(body, model)
        if model == "tools":
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
            finish = "tool_calls"
        return web.json_response({
            "id": "chatcmpl-mock123", "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": USAGE,
        })

    async def _stream(self, request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        async def send(obj: Any) -> None:
            data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
            await resp.write(f"data: {data}\n\n".encode())

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            await send(_chunk(model, {"role": "assistant", "content": ""}))
            if model == "slow-stream":
                for i in range(200):
                    await send(_chunk(model, {"content": f"w{i} "}))
                    await asyncio.sleep(0.05)
            elif model == "stall":
                await send(_chunk(model, {"content": "one"}))
                await asyncio.sleep(30)
            elif model == "tools":
                await send(_chunk(model, {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                          "function": {"name": "get_weather", "arguments": ""}}]}))
                for piece in ('{"ci', 'ty": "Pa', 'ris"}'):
                    await send(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            elif model in ("parrot", "reverse"):
                said = _said(body, model)
                for i in range(0, len(said), 3):
                    await send(_chunk(model, {"content": said[i:i + 3]}))
            else:
                for word in ("Hello", " from", " the", " mock."):
                    await send(_chunk(model, {"content": word}))
            if model == "truncate":
                return resp
            await send(_chunk(model, {}, "tool_calls" if model == "tools" else "stop"))
            if include_usage and model != "no-usage":
                chunk = _chunk(model, {})
                chunk["choices"] = []
                chunk["usage"] = USAGE
                await send(chunk)
            await send("[DONE]")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects.append(model)
            raise
        return resp


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
