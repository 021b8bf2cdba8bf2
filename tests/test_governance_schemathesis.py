"""Schemathesis against the admin API's own OpenAPI document: no 500s, and responses match the document.

A real gateway process serves ``/admin/v1/openapi.json``; schemathesis loads it
from there (offline: the schema is local) and sends generated requests, valid
and invalid, to every operation. Bad input must be answered with a 4xx naming
the problem, never a 500, and every response must fit the schema the document
declares for its status code.

Each operation is its own pytest item, driven through schemathesis' public
``APIOperation.as_strategy`` with a derandomized Hypothesis run, so CI sees the
same cases every time. (``schemathesis.pytest.from_fixture`` would do the
looping, but its lazy runner writes ``Function._nodeid``, which pytest 9.2 no
longer has.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

from interlock.governance.openapi import document
from tests.conftest import MASTER_KEY, GatewayProcess, load_schemathesis_modules, start_gateway

load_schemathesis_modules(document())

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
CHECKS: list[CheckFunction] = [not_a_server_error, status_code_conformance, content_type_conformance,
                               response_headers_conformance, response_schema_conformance]
#: (path, method) of every operation in the document, for the pytest ids; the test itself takes the operation
#: from the schema the gateway serves (test_served_document_is_the_source checks the two are the same).
OPERATIONS = [(path, method) for path, item in document()["paths"].items() for method in item
              if method in ("get", "post", "patch", "put", "delete")]
SEED_PROJECT = "seeded"
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@pytest.fixture(scope="module")
def admin_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("schemathesis"), "simulator: {enabled: true, time_scale: 0}\n")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def admin_schema(admin_gateway: GatewayProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{admin_gateway.url}/admin/v1/openapi.json", timeout=10)


def admin(gw: GatewayProcess, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{gw.url}/admin/v1/{path}", headers=AUTH, json=body, timeout=10)


@pytest.fixture
def seeded(admin_gateway: GatewayProcess) -> dict[str, str]:
    """A project, a key, a budget and a limit that exist, so generated requests reach past the 404s.

    Function-scoped: a DELETE case may have removed or revoked them in the previous test.
    """
    created = admin(admin_gateway, "POST", "projects", {"id": SEED_PROJECT})
    assert created.status_code in (201, 409), created.text
    ids = {"project_id": SEED_PROJECT}
    for kind, name, body in (("keys", "key_id", {"project": SEED_PROJECT}),
                             ("budgets", "budget_id", {"scope": "project", "subject": SEED_PROJECT, "amount_usd": 5}),
                             ("limits", "limit_id", {"scope": "model", "subject": "sim/echo", "rpm": 100})):
        resp = admin(admin_gateway, "POST", kind, body)
        assert resp.status_code == 201, resp.text
        ids[name] = resp.json()["id"]
    return ids


def _refer_to_seed(case: schemathesis.Case) -> schemathesis.Case:
    """Point a generated body's project/subject at the seeded project, so creation paths run to the store."""
    if isinstance(case.body, dict):
        if "project" in case.body:
            case.body["project"] = SEED_PROJECT
        if case.body.get("scope") == "project" and "subject" in case.body:
            case.body["subject"] = SEED_PROJECT
    return case


def test_served_document_is_the_source(admin_gateway: GatewayProcess, admin_schema: schemathesis.BaseSchema) -> None:
    served = requests.get(f"{admin_gateway.url}/admin/v1/openapi.json", timeout=10).json()
    assert served == document()
    labels = {result.ok().label for result in admin_schema.get_all_operations()}
    assert labels == {f"{method.upper()} {path}" for path, method in OPERATIONS}
    assert len(labels) == 22  # with PATCH of a budget and of a limit


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_admin_operation(admin_gateway: GatewayProcess, admin_schema: schemathesis.BaseSchema,
                         http_session: requests.Session, seeded: dict[str, str], path: str, method: str,
                         mode: schemathesis.GenerationMode) -> None:
    operation = admin_schema[path][method]
    names = [p["name"] for p in admin_schema.raw_schema["paths"][path].get("parameters", []) if p["in"] == "path"]
    generated = operation.as_strategy(mode)
    # Half the cases name items that exist (with otherwise generated query and body), half anything at all.
    existing = operation.as_strategy(mode, path_parameters={n: seeded[n] for n in names}).map(_refer_to_seed)
    strategy = st.one_of(generated, existing)

    @given(case=strategy)
    @settings(max_examples=25, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=admin_gateway.url, session=http_session, headers=AUTH, checks=CHECKS,
                               timeout=10)

    run()


@pytest.mark.parametrize(("path", "body", "field"), [
    ("limits", {"scope": "model", "subject": "m", "rpm": 2**63}, "rpm"),  # was 500: too large for SQLite
    ("limits", {"scope": "model", "subject": "m", "concurrent": 2**53}, "concurrent"),
    ("budgets", {"scope": "tag", "subject": "t", "amount_usd": "1e999999"}, "amount_usd"),  # was 500: decimal.Overflow
    ("keys", {"project": SEED_PROJECT, "limits": {"tpm": 2**63}}, "limits.tpm"),
    ("keys", {"project": SEED_PROJECT, "expires_in": 1e308}, "expires_in"),
    ("keys", {"project": SEED_PROJECT, "expires_in": "9" * 400 + "w"}, "expires_in"),
    ("keys", {"project": SEED_PROJECT, "expires_at": 1e308}, "expires_at"),
])
def test_out_of_range_values_are_400s_and_the_store_stays_usable(
        admin_gateway: GatewayProcess, seeded: dict[str, str], path: str, body: dict[str, Any], field: str) -> None:
    resp = admin(admin_gateway, "POST", path, body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == field
    # A failed write used to leave the SQLite connection inside its transaction: every later change was a 500.
    after = admin(admin_gateway, "POST", "limits", {"scope": "model", "subject": "m", "rpm": 5})
    assert after.status_code == 201, after.text
