"""Cost reaches the caller (usage.cost, x-interlock-cost-usd) and the request log, exactly."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess

pytestmark = pytest.mark.slow

# The mock reports 12 prompt + 5 completion tokens; the override prices them at $1 / $2 per 1M.
EXPECTED = 12 * 1.0 / 1e6 + 5 * 2.0 / 1e6


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return gateway.openai_client()



def test_non_streaming_cost_in_usage_and_header(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    raw = client.chat.completions.with_raw_response.create(model="mocklab/priced",
                                                           messages=[{"role": "user", "content": "hi"}])
    completion = raw.parse()
    assert raw.headers["x-interlock-cost-usd"] == "0.000022"
    assert completion.usage is not None
    assert completion.usage.model_extra is not None
    assert completion.usage.model_extra["cost"] == pytest.approx(EXPECTED, abs=1e-12)
    assert raw.headers["x-interlock-vendor"] == "mock"
    assert raw.headers["x-interlock-model"] == "mocklab/priced"
    record = gateway.record(raw.headers["x-interlock-request-id"])
    assert record["cost_picousd"] == 22_000_000
    assert record["cost_estimated"] == 0
    assert (record["input_tokens"], record["output_tokens"]) == (12, 5)
    assert record["status"] == 200 and record["vendor"] == "mock" and record["vendor_model"] == "priced"


def test_vendor_model_name_is_priced_from_the_catalog(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="mock/priced",
                                                           messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-interlock-cost-usd"] == "0.000022"


def test_streaming_cost_in_the_final_usage_chunk(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="mocklab/priced", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    usage = [c.usage for c in raw.parse() if c.usage is not None]
    assert len(usage) == 1
    assert usage[0].model_extra is not None
    assert usage[0].model_extra["cost"] == pytest.approx(EXPECTED, abs=1e-12)
    record = gateway.record(raw.headers["x-interlock-request-id"])
    assert record["cost_picousd"] == 22_000_000 and record["stream"] == 1


def test_stream_without_usage_is_estimated(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="mocklab/unmetered", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "Hello from the mock."
    record = gateway.record(raw.headers["x-interlock-request-id"])
    assert record["cost_estimated"] == 1
    assert record["output_tokens"] == 5  # "Hello from the mock." in o200k
    assert record["input_tokens"] > 0
    assert record["cost_picousd"] == record["input_tokens"] * 1_000_000 + record["output_tokens"] * 2_000_000


def test_errors_are_logged_too(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="mock/status-503", messages=[{"role": "user", "content": "x"}])
    record = gateway.record(info.value.response.headers["x-interlock-request-id"])
    assert record["status"] == 502 and record["error_type"] == "upstream_error"
