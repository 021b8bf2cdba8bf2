"""Keys, budgets and limits decided in process (memory counters), without a gateway around them."""

from __future__ import annotations

import asyncio
import hmac
import random
import time
from pathlib import Path

import pytest

from interlock.core.clock import SYSTEM_CLOCK
from interlock.core.errors import AuthenticationFailed, BudgetExceeded, PermissionDenied, RateLimited
from interlock.governance import ops
from interlock.governance.estimate import Estimator
from interlock.governance.model import parse_budget_spec, parse_duration, period_end, period_key
from interlock.governance.service import Governance
from tests.test_governance_util import PRICE, SECRET, bill, context, fake_clock, governance, request, target


async def setup(gov: Governance, **key_body: object) -> str:
    await ops.create_project(gov.store, {"id": "acme"})
    _, plaintext, _ = await ops.create_key(gov.store, SECRET, {"project": "acme", **key_body})
    await gov.poll()
    return plaintext


async def test_project_key_authenticates_from_memory_with_a_constant_time_comparison(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov)
    assert plaintext.startswith("ik-") and len(plaintext) == 3 + 43
    rows = await gov.store.fetch("SELECT digest, prefix FROM gov_keys")
    assert plaintext not in repr(rows) and rows[0][1] == plaintext[:12]
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    principal = gov.auth.authenticate(f"Bearer {plaintext}", None)
    assert (principal.kind, principal.project) == ("project", "acme")
    assert principal.key_id is not None and principal.key_id.startswith("key_")
    assert len(calls) == 2  # the master key, then the project key found by digest
    with pytest.raises(AuthenticationFailed) as err:
        gov.auth.authenticate(None, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"))
    assert plaintext[:-1] not in err.value.message
    with pytest.raises(PermissionDenied):
        gov.auth.authenticate(f"Bearer {plaintext}", None, "other")


async def test_revoke_rotate_and_expiry(tmp_path: Path) -> None:
    gov = governance(tmp_path, clock=SYSTEM_CLOCK)  # the admin operations stamp keys with the real time
    plaintext = await setup(gov)
    old = next(iter(gov.defs.keys.values()))
    new, new_plain = await ops.rotate_key(gov.store, SECRET, old, 60)
    await gov.poll()
    assert gov.auth.authenticate(f"Bearer {plaintext}", None).key_id == old.id  # in the overlap window
    assert gov.auth.authenticate(f"Bearer {new_plain}", None).key_id == new.id
    assert gov.defs.key_root[new.id] == old.id
    new2, new2_plain = await ops.rotate_key(gov.store, SECRET, gov.defs.keys[new.id], 0)
    await gov.poll()
    with pytest.raises(AuthenticationFailed) as err:
        gov.auth.authenticate(f"Bearer {new_plain}", None)
    assert err.value.code == "expired_api_key" and new_plain not in err.value.message
    assert gov.defs.key_root[new2.id] == old.id
    # Accepted once (its digest is now remembered): the revocation must still win.
    assert gov.auth.authenticate(f"Bearer {new2_plain}", None).key_id == new2.id
    await gov.store.revoke_key(new2.id, time.time())
    await gov.poll()
    with pytest.raises(AuthenticationFailed) as err:
        gov.auth.authenticate(f"Bearer {new2_plain}", None)
    assert err.value.code == "revoked_api_key"
    _, short, _ = await ops.create_key(gov.store, SECRET, {"project": "acme", "expires_in": 0.2})
    await gov.poll()
    assert gov.auth.authenticate(f"Bearer {short}", None).project == "acme"
    await asyncio.sleep(0.25)
    with pytest.raises(AuthenticationFailed):
        gov.auth.authenticate(f"Bearer {short}", None)


async def test_hard_budget_never_overshoots_under_200_concurrent_requests(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov)
    await ops.create_budget(gov.store, {"scope": "project", "subject": "acme", "amount_usd": "0.02",
                                        "period": "monthly"})
    await gov.poll()
    budget = next(iter(gov.defs.budgets.values()))
    admitted = refused = 0
    spent = 0

    async def one() -> None:
        nonlocal admitted, refused, spent
        ctx = context(gov, plaintext)
        try:
            res = await gov.admit(ctx, request(max_tokens=100))
        except BudgetExceeded as exc:
            refused += 1
            assert "project 'acme' monthly budget" in exc.message
            assert float(exc.headers["x-interlock-budget-limit-usd"]) == 0.02
            assert float(exc.headers["x-interlock-budget-remaining-usd"]) >= 0
            return
        admitted += 1
        await asyncio.sleep(random.random() / 100)
        spent += bill(ctx, 10, random.randint(1, 100)).picousd
        gov.settle(ctx, res)

    await asyncio.gather(*(one() for _ in range(200)))
    # Each request could cost at most ~(13+8 input + 100 output tokens) ≈ 221 µUSD: ~90 fit in 0.02 USD.
    assert admitted > 80 and refused > 0
    assert spent <= budget.amount_micro * 1_000_000
    assert gov.memory is not None and gov.memory.budgets[next(iter(gov.memory.budgets))][1] == 0
    await gov.flush()
    assert sum((await gov.store.spend([period_key("monthly", time.time())])).values()) * 1000 >= spent


async def test_spend_survives_a_restart(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov, budget={"amount_usd": 1, "period": "daily"})
    ctx = context(gov, plaintext)
    res = await gov.admit(ctx, request())
    bill(ctx, 100_000, 0)  # 0.1 USD
    gov.settle(ctx, res)
    await gov.flush()
    again = governance(tmp_path)
    await again._load_all()
    budget = next(iter(again.defs.budgets.values()))
    status = await again.budget_status(budget)
    assert status["spent_usd"] == "0.100000" and status["remaining_usd"] == "0.900000"


async def test_soft_budget_alerts_once_per_threshold_and_never_refuses(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    await ops.create_project(gov.store, {"id": "acme"})
    await ops.create_budget(gov.store, {"scope": "tag", "subject": "team-a", "amount_usd": "0.001", "mode": "soft",
                                        "period": "daily"})
    await gov.poll()
    for _ in range(12):
        ctx = context(gov, tags=("team-a",))
        res = await gov.admit(ctx, request())
        bill(ctx, 100, 0)  # 0.0001 USD each: 1.2x the budget in total
        gov.settle(ctx, res)
    assert [a["threshold_percent"] for a in gov.alerts.recent] == [50, 80, 90, 100]
    ctx = context(gov, tags=("team-a",))
    await gov.admit(ctx, request())
    assert ctx.gov_headers and "tag 'team-a' daily budget 120% used" in dict(ctx.gov_headers)[
        "x-interlock-budget-warning"]


async def test_requests_per_minute_are_exact_and_refusals_carry_openai_headers(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov, limits={"rpm": 7})
    results = await asyncio.gather(*(gov.admit(context(gov, plaintext), request()) for _ in range(30)),
                                   return_exceptions=True)
    refusals = [r for r in results if isinstance(r, RateLimited)]
    assert len(refusals) == 23
    headers = refusals[0].headers
    assert headers["x-ratelimit-limit-requests"] == "7" and headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(headers["retry-after"]) <= 60 and headers["x-ratelimit-reset-requests"].endswith("s")


async def test_tokens_per_minute_reserve_then_settle(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov, limits={"tpm": 1000})
    ctx = context(gov, plaintext)
    res = await gov.admit(ctx, request(max_tokens=900))  # reserves ~ 900 + the prompt bound
    with pytest.raises(RateLimited) as err:
        await gov.admit(context(gov, plaintext), request(max_tokens=900))
    assert err.value.headers["x-ratelimit-limit-tokens"] == "1000"
    bill(ctx, 10, 20)
    gov.settle(ctx, res)  # 30 tokens actually used: the rest is released
    ctx2 = context(gov, plaintext)
    await gov.admit(ctx2, request(max_tokens=900))
    assert dict(ctx2.gov_headers or [])["x-ratelimit-remaining-tokens"] == str(1000 - 30 - 900 - 25)


async def test_concurrency_limit_frees_slots_on_settle(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov)
    await ops.create_limit(gov.store, {"scope": "project", "subject": "acme", "concurrent": 2})
    await gov.poll()
    held = [context(gov, plaintext) for _ in range(2)]
    reservations = [await gov.admit(c, request()) for c in held]
    with pytest.raises(RateLimited) as err:
        await gov.admit(context(gov, plaintext), request())
    assert err.value.headers["retry-after"] == "1" and "concurrent" in err.value.message
    gov.settle(held[0], reservations[0])
    assert await gov.admit(context(gov, plaintext), request()) is not None


async def test_allowed_models_and_vendors(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    await ops.create_project(gov.store, {"id": "acme", "allowed_models": ["openai/*"], "log_level": "full"})
    _, plaintext, _ = await ops.create_key(gov.store, SECRET, {"project": "acme"})
    await gov.poll()
    ok = context(gov, plaintext, targets=(target(key="openai/gpt"),))
    await gov.admit(ok, request())
    assert ok.log_level == "full"
    with pytest.raises(PermissionDenied) as err:
        await gov.admit(context(gov, plaintext, targets=(target(key="anthropic/claude"),)), request())
    assert err.value.code == "model_not_allowed" and err.value.status == 403


def test_worst_case_is_an_upper_bound_and_picks_the_dearest_target() -> None:
    cheap, dear = target(), target(price=type(PRICE)(input=5_000_000, output=20_000_000), key="v2/m")
    tokens, nano = Estimator().worst(request("x" * 400, max_tokens=50), (cheap, dear))
    prompt = 8 + 8 + 4 + 400  # framing + role + text bytes
    assert tokens == prompt + 50
    assert nano == -(-(prompt * 5_000_000 + 50 * 20_000_000) // 1000)
    _, no_max = Estimator().worst(request(max_tokens=None), (target(max_output=4000),))
    assert no_max >= 4000 * 2_000_000 // 1000


def test_parsing() -> None:
    assert parse_budget_spec("10/month") == (10_000_000, "monthly", "hard")
    assert parse_budget_spec("2.5/day:soft") == (2_500_000, "daily", "soft")
    assert parse_duration("30d") == 30 * 86400
    t = 1_717_200_000.0  # 2024-06-01 00:00 UTC, a Saturday
    assert period_key("monthly", t) == "2024-06" and period_key("weekly", t) == "2024-W22"
    assert period_end("weekly", t) == t + 2 * 86400 and period_end("monthly", t) == t + 30 * 86400


async def test_a_refused_request_counts_nothing_on_the_checks_it_passed(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov, limits={"rpm": 5, "tpm": 10**6, "concurrent": 10})
    # 1 µUSD cannot cover any request: the budget (checked after the key's limits) refuses every one.
    await ops.create_budget(gov.store, {"scope": "project", "subject": "acme", "amount_usd": "0.000001"})
    await gov.poll()
    for _ in range(8):
        with pytest.raises(BudgetExceeded):
            await gov.admit(context(gov, plaintext), request())
    assert gov.memory is not None
    assert sorted(k[0] for k in gov.memory.values) == ["c", "r", "t"]  # each was passed, then taken back
    assert set(gov.memory.values.values()) == {0}
    assert [b[1] for b in gov.memory.budgets.values()] == [0]


async def test_limits_follow_a_definition_change_within_the_minute(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov, limits={"rpm": 100})
    assert await gov.admit(context(gov, plaintext), request()) is not None
    await ops.create_limit(gov.store, {"scope": "project", "subject": "acme", "rpm": 1})
    await gov.poll()
    await gov.admit(context(gov, plaintext), request())
    with pytest.raises(RateLimited) as err:
        await gov.admit(context(gov, plaintext), request())
    assert "project 'acme'" in err.value.message


async def test_request_windows_roll_over_with_the_minute(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    plaintext = await setup(gov, limits={"rpm": 2})
    for _ in range(2):
        await gov.admit(context(gov, plaintext), request())
    with pytest.raises(RateLimited):
        await gov.admit(context(gov, plaintext), request())
    fake_clock(gov).advance(60)
    ctx = context(gov, plaintext)
    await gov.admit(ctx, request())
    assert dict(ctx.gov_headers or [])["x-ratelimit-remaining-requests"] == "1"


async def test_budgets_per_end_user_and_limits_per_model_are_kept_apart(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    await ops.create_project(gov.store, {"id": "acme"})
    # One request reserves ~221 µUSD (see the 200-request test): one fits in 300 µUSD, two do not.
    await ops.create_budget(gov.store, {"scope": "end_user", "subject": "*", "amount_usd": "0.0003"})
    await ops.create_limit(gov.store, {"scope": "model", "subject": "v2/m", "rpm": 1})
    await gov.poll()
    assert await gov.admit(context(gov, user="alice"), request()) is not None
    with pytest.raises(BudgetExceeded) as err:
        await gov.admit(context(gov, user="alice"), request())
    assert "every end user" in err.value.message
    assert await gov.admit(context(gov, user="bob"), request()) is not None
    other = (target(key="v2/m"),)
    assert await gov.admit(context(gov, user="carol", targets=other), request()) is not None
    with pytest.raises(RateLimited) as limited:
        await gov.admit(context(gov, user="dave", targets=other), request())
    assert "model 'v2/m'" in limited.value.message


async def test_project_zero_data_retention_reaches_the_principal(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    with pytest.raises(ops.DefinitionError) as err:
        await ops.create_project(gov.store, {"id": "acme", "zero_data_retention": "yes"})
    assert err.value.field == "zero_data_retention"
    plaintext = await setup(gov)
    assert not gov.auth.authenticate(f"Bearer {plaintext}", None).zero_data_retention
    acme = (await gov.store.load()).projects["acme"]
    assert not acme.zero_data_retention and acme.to_json()["zero_data_retention"] is False
    await ops.update_project(gov.store, acme, {"zero_data_retention": True})
    await gov.poll()
    assert (await gov.store.load()).projects["acme"].zero_data_retention
    assert gov.auth.authenticate(f"Bearer {plaintext}", None).zero_data_retention


async def test_projects_defined_before_zero_data_retention_upgrade_in_place(tmp_path: Path) -> None:
    import sqlite3

    from interlock.governance.schema import MIGRATIONS
    from interlock.governance.store import SQLiteGovStore
    from interlock.state.migrations import statements

    db = tmp_path / "interlock.db"
    with sqlite3.connect(db) as conn:  # the tables as governance migration 1 left them, with a project
        conn.execute("CREATE TABLE governance_schema (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
        for stmt in statements(MIGRATIONS[0][1]):
            conn.execute(stmt)
        conn.execute("INSERT INTO governance_schema VALUES (1, 0)")
        conn.execute("INSERT INTO gov_projects (id, name, created_at) VALUES ('old', 'Old', 1.0)")
    store = SQLiteGovStore(db)
    try:
        assert store.migrate() == MIGRATIONS[-1][0]
        assert not (await store.load()).projects["old"].zero_data_retention
    finally:
        await store.close()


async def test_key_expiry_reads_the_injected_clock(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    await setup(gov)
    _, short, _ = await ops.create_key(gov.store, SECRET, {"project": "acme", "expires_in": 300})
    await gov.poll()
    assert gov.auth.authenticate(f"Bearer {short}", None).project == "acme"
    fake_clock(gov).advance(400)
    with pytest.raises(AuthenticationFailed) as err:
        gov.auth.authenticate(f"Bearer {short}", None)
    assert err.value.code == "expired_api_key"


async def test_the_background_loop_waits_on_the_injected_clock(tmp_path: Path) -> None:
    gov = governance(tmp_path)
    clock = fake_clock(gov)
    plaintext = await setup(gov, budget={"amount_usd": 1, "period": "daily"})
    ctx = context(gov, plaintext)
    res = await gov.admit(ctx, request())
    bill(ctx, 10, 10)
    gov.settle(ctx, res)
    assert gov.pending
    gov.start(asyncio.get_running_loop())
    try:
        await asyncio.sleep(0.05)  # real time passes; the loop sleeps on the fake clock, so nothing is flushed
        assert gov.pending
        clock.advance(gov.cfg.poll_interval_s + gov.cfg.flush_interval_s)
        for _ in range(30):  # well under the real poll interval: only the fake clock can have woken it
            if not gov.pending:
                break
            await asyncio.sleep(0.01)
        assert not gov.pending
        assert sum((await gov.store.spend([period_key("daily", clock.time())])).values()) > 0
    finally:
        await gov.stop()
