"""Defence in depth: whatever a codec accepts, every consumer downstream reads without raising.

The mutated bodies of ``test_inference_fuzz`` are parsed in process by the
three inbound codecs; each request a codec accepts goes through every native
translator (Anthropic, Gemini, Bedrock, Cohere), the token estimator and the
routing token memo, and each vendor body must serialise. The only exception
allowed is a 400 (:class:`InvalidRequest`), e.g. a translator refusing what its
vendor cannot take. Fast (no sockets), derandomized, so it runs in ``make test``
beside the end-to-end fuzz.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from interlock.catalog.tokens import estimate_chat_tokens
from interlock.core.errors import InvalidRequest
from interlock.routing.tokens import TokenMemo
from interlock.vendors.anthropic import chat as anthropic
from interlock.vendors.bedrock import chat as bedrock
from interlock.vendors.cohere import chat as cohere
from interlock.vendors.gemini import chat as gemini
from interlock.vendors.translate_common import Drops
from interlock.wire.anthropic_messages import parse_messages_request
from interlock.wire.openai_chat import parse_json_object, validate_chat_request
from interlock.wire.responses import parse_responses_request
from tests.test_inference_fuzz import CHAT, MESSAGES, RESPONSES, mutated

MEMO = TokenMemo()


def _chat(data: dict[str, Any]) -> dict[str, Any]:
    validate_chat_request(data)
    return data


CODECS = [
    pytest.param(CHAT, _chat, id="chat"),
    pytest.param(MESSAGES, parse_messages_request, id="messages"),
    pytest.param(RESPONSES, lambda data: dict(parse_responses_request(data)), id="responses"),
]


def _translate(request: dict[str, Any]) -> None:
    assert estimate_chat_tokens(request) >= 3
    assert MEMO.count(request, None) >= 3
    stream = request.get("stream") is True
    encoders = (
        lambda: anthropic.encode_request(request, "claude-sonnet-4-5", stream=stream)[0],
        lambda: gemini.encode_request(request, Drops(request, "gemini")),
        lambda: bedrock.encode_request(request, "anthropic.claude-sonnet-4-5", Drops(request, "bedrock"))[0],
        lambda: cohere.encode_request(request, "command-r", Drops(request, "cohere"), stream),
    )
    for encode in encoders:
        with contextlib.suppress(InvalidRequest):  # a vendor that cannot take it says so with a 400
            orjson.dumps(encode())
    orjson.dumps(request)  # what an OpenAI-compatible vendor is sent


@pytest.mark.parametrize(("seed", "parse"), CODECS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_whatever_a_codec_accepts_every_translator_reads(seed: dict[str, Any], parse: Any, stream: bool) -> None:
    accepted = 0

    @given(body=mutated(seed, stream))
    @settings(max_examples=300, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def run(body: bytes) -> None:
        nonlocal accepted
        try:
            request = parse(parse_json_object(body))
        except InvalidRequest:
            return
        accepted += 1
        _translate(request)

    run()
    assert accepted > 30  # the mutations leave enough requests valid to reach the translators
