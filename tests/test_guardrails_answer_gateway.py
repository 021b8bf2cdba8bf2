"""The answer side of the guardrails, end to end: a gateway process, a mock vendor that writes the
value (``mock/reverse`` answers with the prompt reversed, so the request itself shows no secret),
and the official SDKs reading the answer, streamed and not.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.mock_openai import MockVendor
from tests.test_guardrails_gateway import CARD, OPENAI_KEY, logged

PROSE = ("Here is the configuration you asked about, with every value spelled out in full so that you can "
         "copy it straight into the deployment file. ")
LEAK = f"{PROSE}The production key is {OPENAI_KEY} and it must never be shared."


def _gateway(mock: MockVendor, home: Path, guardrails: str) -> GatewayProcess:
    return start_gateway(home, f"""
vendors:
  mock: {{type: openai, base_url: "{mock.base_url}", api_key: sk-mock}}
logging: {{level: full, flush_interval: 0.1}}
guardrails:
{guardrails}""")


@pytest.fixture(scope="module")
def gw(module_mock: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    g = _gateway(module_mock, tmp_path_factory.mktemp("answers"),
                 "  pii: {action: redact, restore: true}\n  secrets: {action: block}\n")
    yield g
    g.stop()


@pytest.fixture(scope="module")
def redacting(module_mock: MockVendor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    g = _gateway(module_mock, tmp_path_factory.mktemp("answers-redact"), "  secrets: {action: redact}\n")
    yield g
    g.stop()


def test_a_secret_split_across_stream_chunks_never_reaches_the_client(gw: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0)
    stream = client.chat.completions.with_raw_response.create(
        model="mock/reverse", stream=True, messages=[{"role": "user", "content": LEAK[::-1]}])
    assert "x-interlock-guardrails" not in stream.headers  # the request itself showed nothing
    received = ""
    with pytest.raises(openai.APIError) as info:
        for event in stream.parse():
            received += event.choices[0].delta.content or "" if event.choices else ""
    assert info.value.body["code"] == "content_blocked"  # type: ignore[index]
    assert "OPENAI_KEY" in info.value.message and "sk-" not in info.value.message
    assert received and LEAK.startswith(received) and OPENAI_KEY[:6] not in received
    record = logged(gw, stream.headers["x-interlock-request-id"])
    assert record["status"] == 400
    assert {"detector": "secrets", "action": "block", "direction": "output", "entities": {"OPENAI_KEY": 1},
            "score": record["guardrails"][0]["score"]} in record["guardrails"]
    assert OPENAI_KEY not in json.dumps(record)


def test_a_blocked_answer_is_400_in_anthropic_shape_and_still_costs(gw: GatewayProcess) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="mock/reverse", max_tokens=200, messages=[{"role": "user", "content": LEAK[::-1]}])
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and "secrets" in body["error"]["message"]
    assert OPENAI_KEY not in json.dumps(body)
    assert info.value.response.headers["x-interlock-guardrails"] == "output.secrets=block"
    record = logged(gw, info.value.response.headers["x-interlock-request-id"])
    assert record["vendor"] == "mock" and record["output_tokens"] > 0  # the vendor answered, and charged
    assert OPENAI_KEY not in json.dumps(record)


def test_a_card_is_redacted_for_the_vendor_and_restored_in_the_stream(gw: GatewayProcess,
                                                                     module_mock: MockVendor) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0)
    prompt = f"{PROSE}Please charge {CARD} for the order, then confirm."
    stream = client.chat.completions.with_raw_response.create(
        model="mock/parrot", stream=True, messages=[{"role": "user", "content": prompt}])
    received = "".join(e.choices[0].delta.content or "" for e in stream.parse() if e.choices)
    assert "4111" not in json.dumps(module_mock.last("parrot")["body"])
    assert received == prompt  # the placeholder, split over three-character chunks, is put back
    assert stream.headers["x-interlock-guardrails"] == "pii=redact"
    record = logged(gw, stream.headers["x-interlock-request-id"])
    # The content fields (the record's id, times and figures are digits that may contain "4111" by chance).
    content = json.dumps([record["request_content"], record["response_content"], record.get("error_message")])
    assert "4111" not in content and "[CREDIT_CARD_1]" in content


def test_a_leaked_secret_is_redacted_in_a_responses_stream(redacting: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=redacting.base_url, api_key=MASTER_KEY, max_retries=0)
    text = ""
    with client.responses.stream(model="mock/reverse", input=LEAK[::-1]) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                assert OPENAI_KEY[:6] not in event.delta
                text += event.delta
        final = stream.get_final_response()
    assert text == LEAK.replace(OPENAI_KEY, "[OPENAI_KEY_1]") == final.output_text


def test_a_non_streamed_answer_is_redacted_and_says_so(redacting: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=redacting.base_url, api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="mock/reverse", messages=[{"role": "user", "content": LEAK[::-1]}])
    assert raw.parse().choices[0].message.content == LEAK.replace(OPENAI_KEY, "[OPENAI_KEY_1]")
    assert raw.headers["x-interlock-guardrails"] == "output.secrets=redact"
    with urllib.request.urlopen(redacting.url + "/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    assert ('interlock_guardrail_detections_total{detector="secrets",action="redact",direction="output"}'
            in metrics)


def test_a_leaked_secret_is_redacted_in_a_messages_stream(redacting: GatewayProcess) -> None:
    client = anthropic.Anthropic(base_url=redacting.url, api_key=MASTER_KEY, max_retries=0)
    deltas: list[str] = []
    with client.messages.stream(model="mock/reverse", max_tokens=300,
                                messages=[{"role": "user", "content": LEAK[::-1]}]) as stream:
        for text in stream.text_stream:
            deltas.append(text)
        final = stream.get_final_message()
    assert len(deltas) > 1  # relayed in several pieces, not held to the end
    assert "".join(deltas) == LEAK.replace(OPENAI_KEY, "[OPENAI_KEY_1]")
    assert final.content[0].type == "text" and OPENAI_KEY not in final.content[0].text
