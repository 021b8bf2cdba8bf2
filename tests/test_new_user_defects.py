"""Defects a new user hit first, through a real gateway process and the official SDKs (issue 14)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)


def test_models_retrieve_with_a_slash_in_the_id_openai_sdk(client: openai.OpenAI) -> None:
    # The SDK sends GET /v1/models/openai%2Fgpt-4.1-mini (found: 404).
    model = client.models.retrieve("openai/gpt-4.1-mini")
    assert model.id == "openai/gpt-4.1-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope/nope")


def test_models_retrieve_with_a_slash_in_the_id_anthropic_sdk(gateway: GatewayProcess) -> None:
    ac = anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0)
    model = ac.models.retrieve("openai/gpt-4.1-mini")
    assert model.id == "openai/gpt-4.1-mini"


def test_openrouter_models_array_without_model(client: openai.OpenAI) -> None:
    # Found: a 400 "Missing required parameter: 'model'"; OpenRouter takes models[0] as the primary.
    raw = client.chat.completions.with_raw_response.create(
        model=openai.NOT_GIVEN, messages=[{"role": "user", "content": "hi"}],  # type: ignore[arg-type]
        extra_body={"models": ["mock/ok", "openai/gpt-4.1-mini"]})
    assert raw.headers["x-interlock-route"] == "mock/ok"
    assert raw.parse().choices[0].message.content


def test_unknown_entry_in_models_is_named_in_the_route_reason(client: openai.OpenAI) -> None:
    # Found: silently ignored.
    raw = client.chat.completions.with_raw_response.create(
        model="mock/ok", messages=[{"role": "user", "content": "hi"}],
        extra_body={"models": ["nope/nope", "openai/gpt-4.1-mini"]})
    assert raw.headers["x-interlock-route"] == "mock/ok"
    assert "'nope/nope' ignored: The model 'nope/nope' does not exist" in raw.headers["x-interlock-route-reason"]
    # An unknown primary with a known fallback: the fallback answers, and the reason says why.
    raw = client.chat.completions.with_raw_response.create(
        model="nope/primary", messages=[{"role": "user", "content": "hi"}], extra_body={"models": ["mock/ok"]})
    assert raw.headers["x-interlock-route"] == "mock/ok"
    assert "'nope/primary' ignored" in raw.headers["x-interlock-route-reason"]
    # None known: 404, as for one unknown model.
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope/a", messages=[{"role": "user", "content": "hi"}],
                                       extra_body={"models": ["nope/b"]})
    assert "nope/a" in str(info.value)


def test_max_tokens_above_the_models_max_output_is_a_400(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    # Found: max_tokens 1,000,000 on gpt-4.1-mini (max output 32,768) answered 200.
    for field in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}],
                                           **{field: 1_000_000})  # type: ignore[call-overload]
        body = info.value.body
        assert isinstance(body, dict) and body["param"] == field and "32768" in body["message"], body
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="openai/gpt-4.1-mini", input="hi", max_output_tokens=1_000_000)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "max_output_tokens"
    # An explicit timeout: the SDK itself refuses a large max_tokens without streaming on its default one.
    ac = anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    with pytest.raises(anthropic.BadRequestError) as ainfo:
        ac.messages.create(model="openai/gpt-4.1-mini", max_tokens=1_000_000,
                           messages=[{"role": "user", "content": "hi"}])
    assert "'max_tokens' is too large" in str(ainfo.value) and "32768" in str(ainfo.value)
    # At the limit it answers.
    out = client.chat.completions.create(model="openai/gpt-4.1-mini", max_tokens=32_768,
                                         messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content is not None
