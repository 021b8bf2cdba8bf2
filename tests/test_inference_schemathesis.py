"""Schemathesis against the inference API's own OpenAPI document: no 5xx, and responses match the document.

A real gateway process (the simulator behind it) serves ``/v1/openapi.json``;
schemathesis loads it from there and sends generated requests, valid and
invalid, to every operation. Bad input must be answered with a 4xx in the
caller's format, never a 5xx, and every response must fit the status codes,
content types and schemas the document declares.

Each operation is its own pytest item, driven through schemathesis' public
``APIOperation.as_strategy`` with a derandomized Hypothesis run and a bounded
number of examples (as in ``test_governance_schemathesis.py``). Half the
generated bodies name a model the gateway serves, so they reach routing and
the simulator instead of stopping at a 404.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interlock.api.openapi import document
from tests.conftest import MASTER_KEY, GatewayProcess, load_schemathesis_modules, start_gateway

load_schemathesis_modules(document())

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
CHECKS: list[CheckFunction] = [not_a_server_error, status_code_conformance, content_type_conformance,
                               response_headers_conformance, response_schema_conformance]
OPERATIONS = [(path, method) for path, item in document()["paths"].items() for method in item
              if method in ("get", "post", "delete")]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
MODELS = {"/v1/messages": "anthropic/claude-sonnet-4-5", "/v1/messages/count_tokens": "anthropic/claude-sonnet-4-5",
          "/v1/embeddings": "openai/text-embedding-3-small"}
EXAMPLES = 10


@pytest.fixture(scope="module")
def inference_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("schemathesis-v1"), "simulator: {enabled: true, time_scale: 0}\n")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def inference_schema(inference_gateway: GatewayProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{inference_gateway.url}/v1/openapi.json", timeout=10)


@pytest.fixture(scope="module")
def stored_response(inference_gateway: GatewayProcess) -> str:
    """A response that exists, so the retrieve / input_items / delete operations reach past the 404."""
    resp = requests.post(f"{inference_gateway.url}/v1/responses", headers=AUTH, timeout=20,
                         json={"model": "openai/gpt-4.1-mini", "input": "hi"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["id"])


def test_served_document_is_the_source(inference_gateway: GatewayProcess,
                                       inference_schema: schemathesis.BaseSchema) -> None:
    served = requests.get(f"{inference_gateway.url}/v1/openapi.json", timeout=10)
    assert served.status_code == 200 and served.json() == document()
    labels = {result.ok().label for result in inference_schema.get_all_operations()}
    assert labels == {f"{method.upper()} {path}" for path, method in OPERATIONS}
    assert len(labels) == 13


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_inference_operation(inference_gateway: GatewayProcess, inference_schema: schemathesis.BaseSchema,
                             http_session: requests.Session, stored_response: str, path: str, method: str,
                             mode: schemathesis.GenerationMode) -> None:
    operation = inference_schema[path][method]
    model = MODELS.get(path, "openai/gpt-4.1-mini")

    def served_model(case: schemathesis.Case) -> schemathesis.Case:
        if isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = model
            case.body.pop("previous_response_id", None)  # an id that exists is not generable
        return case

    names = [p["name"] for p in inference_schema.raw_schema["paths"][path].get("parameters", []) if p["in"] == "path"]
    known = {"response_id": stored_response, "model_id": "openai/gpt-4.1-mini"}
    strategy = st.one_of(operation.as_strategy(mode),
                         operation.as_strategy(mode, path_parameters={n: known[n] for n in names}).map(served_model))

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=inference_gateway.url, session=http_session, headers=AUTH, checks=CHECKS,
                               timeout=20)

    run()
