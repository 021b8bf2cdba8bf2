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
