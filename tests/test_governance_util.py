"""Helpers for the governance tests (no tests here): a Governance over a fresh store, fake targets, contexts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from interlock.core.clock import Clock
from interlock.core.context import RequestContext
from interlock.core.model import Route
from interlock.core.plan import Plan, Target
from interlock.core.pricing import Cost, Price, Usage, cost_of
from interlock.core.vendor import Timeouts, VendorRuntime, VendorSpec
from interlock.governance.auth import Authenticator, MasterKey, digest
from interlock.governance.service import Governance
from interlock.governance.settings import GovernanceSettings
from interlock.governance.store import GovStore, SQLiteGovStore
from tests.fake_clock import FakeClock

SECRET = b"test-secret"
MASTER = "ik-admin-test-master"
REDIS_URL = "redis://127.0.0.1:6379/0"

#: 1 USD / 1M input tokens, 2 USD / 1M output tokens.
PRICE = Price(input=1_000_000, output=2_000_000)


def target(price: Price | None = PRICE, max_output: int | None = 1000, key: str = "sim/m") -> Target:
    """A real Target (the compiled build checks types): ``key`` is ``vendor/model``, no catalog model."""
    vendor_id, vendor_model = key.split("/", 1)
    spec = VendorSpec(id=vendor_id, name=vendor_id, type="openai", base_url="http://127.0.0.1:9")
    route = Route(vendor_id, vendor_model, price or Price(input=0, output=0), context_window=100_000,
                  max_output=max_output)
    return Target(VendorRuntime(spec, Timeouts(), cast(Any, None)), vendor_model, None, price, route)


def governance(tmp: Path, *, redis_url: str | None = None, store: GovStore | None = None,
               clock: Clock | None = None) -> Governance:
    """A Governance on a :class:`FakeClock` (the middle of the current minute) unless given another clock."""
    master = MasterKey(digest(SECRET, MASTER), MASTER[:12], None, "test")
    cfg = GovernanceSettings(redis_url=redis_url, redis_prefix=f"itest:{os.urandom(4).hex()}:")
    clock = clock or FakeClock()
    return Governance(cfg, store or SQLiteGovStore(tmp / "interlock.db"), Authenticator(SECRET, master, clock),
                      clock=clock)


def fake_clock(gov: Governance) -> FakeClock:
    assert isinstance(gov.clock, FakeClock)
    return gov.clock


def context(gov: Governance, key: str | None = None, *, tags: tuple[str, ...] = (), user: str | None = None,
            targets: tuple[Target, ...] = (target(),), project: str | None = None) -> RequestContext:
    ctx = RequestContext("openai.chat")
    ctx.principal = gov.auth.authenticate(f"Bearer {key or MASTER}", None, project)
    ctx.requested_model = targets[0].key
    ctx.plan = Plan(targets[0].key, targets, ())
    ctx.tags = tags
    ctx.end_user = user
    return ctx


def request(text: str = "hello", max_tokens: int | None = 100) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "sim/m", "messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    return out


def bill(ctx: RequestContext, input_tokens: int, output_tokens: int, price: Price = PRICE) -> Cost:
    ctx.usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    ctx.cost = cost_of(price, ctx.usage)
    return ctx.cost
