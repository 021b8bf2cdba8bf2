"""``tool_calls_per_minute``: MCP tool calls counted per key and project, apart from rpm, in memory and Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from interlock.core.errors import RateLimited
from interlock.core.principal import Principal
from interlock.governance import ops
from interlock.governance.model import DefinitionError
from interlock.governance.service import Governance
from tests.test_governance_redis import _cleanup
from tests.test_governance_util import REDIS_URL, SECRET, context, fake_clock, governance, request


async def setup(gov: Governance, key_limit: int | None, project_limit: int | None) -> tuple[str, Principal]:
    await ops.create_project(gov.store, {"id": "acme"})
    limits = {"tool_calls_per_minute": key_limit} if key_limit else None
    _, plaintext, _ = await ops.create_key(gov.store, SECRET, {"project": "acme", **({"limits": limits}
                                                                                        if limits else {})})
    if project_limit:
        await ops.create_limit(gov.store, {"scope": "project", "subject": "acme",
                                           "tool_calls_per_minute": project_limit})
    await gov.poll()
    return plaintext, gov.auth.authenticate(f"Bearer {plaintext}", None)


async def admitted(gov: Governance, principal: Principal, n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            await gov.admit_tool_call(principal)
            ok += 1
        except RateLimited as exc:
            assert "tool_calls_per_minute" in exc.message and exc.headers["retry-after"]
    return ok


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_key_limit_admits_its_number_per_minute_apart_from_rpm(tmp_path: Path, backend: str) -> None:
    gov = governance(tmp_path, redis_url=REDIS_URL if backend == "redis" else None)
    try:
        plaintext, principal = await setup(gov, 3, None)
        assert await admitted(gov, principal, 5) == 3
        # Requests (rpm) are another count: a chat request is still admitted.
        await gov.admit(context(gov, plaintext), request())
        fake_clock(gov).advance(60)
        assert await admitted(gov, principal, 5) == 3
    finally:
        if gov.redis is not None:
            await _cleanup(gov.redis.prefix)


async def test_project_limit_covers_every_key_and_access_key(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    _, principal = await setup(gov, None, 4)
    other = Principal("project", "ik-mcp-xxxx", "acme", "mak_1")  # an access key acts for the project
    assert await admitted(gov, principal, 2) + await admitted(gov, other, 5) == 4


async def test_no_limit_costs_nothing_and_bad_values_are_refused(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    _, principal = await setup(gov, None, None)
    assert await admitted(gov, principal, 100) == 100
    with pytest.raises(DefinitionError) as info:
        await ops.create_limit(gov.store, {"scope": "project", "subject": "acme", "tool_calls_per_minute": 0})
    assert info.value.field == "tool_calls_per_minute"


async def test_redis_limit_is_exact_across_replicas(tmp_path: Path) -> None:
    a = governance(tmp_path, redis_url=REDIS_URL)
    b = governance(tmp_path, redis_url=REDIS_URL, clock=a.clock)
    assert a.redis is not None and b.redis is not None
    b.redis.prefix = a.redis.prefix
    try:
        _, principal = await setup(a, 10, None)
        await b.poll()
        results = await asyncio.gather(*(g.admit_tool_call(principal) for g in [a, b] * 15), return_exceptions=True)
        assert sum(1 for r in results if isinstance(r, RateLimited)) == 20
    finally:
        await _cleanup(a.redis.prefix)



async def test_a_model_limit_cannot_count_tool_calls(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    with pytest.raises(DefinitionError) as info:
        await ops.create_limit(gov.store, {"scope": "model", "subject": "openai/gpt-4.1", "tool_calls_per_minute": 5})
    assert info.value.field == "tool_calls_per_minute"
