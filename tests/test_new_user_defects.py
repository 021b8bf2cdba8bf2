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
