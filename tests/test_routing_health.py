"""Circuit breaker transitions, live statistics windows, and the Redis sharing of statistics."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from interlock.catalog import load_catalog
from interlock.config import Settings, load_settings
from interlock.configfile import ConfigError
from interlock.routing.circuit import CLOSED, HALF_OPEN, OPEN, Breaker, BreakerSettings, Circuits
from interlock.routing.setup import build_routing, validate_routing
from interlock.routing.stats import LiveStats, hist_index, hist_value, percentile
from interlock.vendors.registry import VENDOR_TABLE
from tests.test_routing_fixtures import MODEL, chat, simulator, world

SETTINGS = BreakerSettings(failure_rate=0.5, min_requests=4, window_s=10, cooldown_s=5, max_cooldown_s=20)


def test_breaker_opens_on_failure_rate_only_with_enough_requests() -> None:
    b = Breaker(SETTINGS)
    for _ in range(3):
        b.record(False, 100.0)
    assert b.state == CLOSED  # 3 < min_requests
    b.record(True, 100.0)
    assert b.state == CLOSED  # 3/4 failed but... the 4th was a success: rate is checked on failures
    b.record(False, 100.0)
    assert b.state == OPEN and b.reopen_at == 105.0
    assert not b.available(104.9) and b.available(105.0)


def test_breaker_window_slides() -> None:
    b = Breaker(SETTINGS)
    for _ in range(3):
        b.record(False, 100.0)
    b.record(True, 100.0)
    # 11 s later the old failures have left the window: one failure in a fresh window does not open.
    b.record(False, 111.0)
    assert b.state == CLOSED and b.counts(111.0) == (0, 1)


def test_half_open_probe_with_real_traffic() -> None:
    b = Breaker(SETTINGS)
    for _ in range(4):
        b.record(False, 0.0)
    assert b.state == OPEN
    assert not b.acquire(4.0)
    assert b.acquire(5.0) and b.state == HALF_OPEN
    assert not b.acquire(5.1)  # one probe at a time
    b.record(False, 5.2)  # the probe failed: open again, cooldown doubled
    assert b.state == OPEN and b.reopen_at == pytest.approx(15.2)
    assert b.acquire(15.2) and b.state == HALF_OPEN
    b.record(True, 15.3)
    assert b.state == CLOSED and b.counts(15.3) == (0, 0)
    # Cooldown reset after closing.
    for _ in range(4):
        b.record(False, 16.0)
    assert b.reopen_at == 21.0


def test_released_probe_lets_the_next_request_probe() -> None:
    b = Breaker(SETTINGS)
    for _ in range(4):
        b.record(False, 0.0)
    assert b.acquire(6.0)
    b.release()
    assert b.state == HALF_OPEN and b.acquire(6.1)


async def test_dispatch_opens_the_circuit_and_routes_around_it_then_probes() -> None:
    settings = BreakerSettings(min_requests=2, cooldown_s=30)
    sick = simulator({MODEL: "error=503"})
    w = world({"sima": sick, "simb": simulator()}, breaker=settings)
    ctx, canonical = w.context(chat())
    await w.dispatcher.complete(ctx, canonical, {})
    assert w.engine.circuits.state(f"sima/{MODEL}") == OPEN
    # Next request: sima is filtered with its reason, never tried.
    ctx, canonical = w.context(chat())
    await w.dispatcher.complete(ctx, canonical, {})
    assert [a.vendor for a in ctx.attempts] == ["simb"]
    assert ctx.routing is not None and "circuit open" in ctx.routing.reason
    # After the cooldown, real traffic probes sima; it still fails: open again, the request still succeeds.
    w.advance(31)
    ctx, canonical = w.context(chat())
    await w.dispatcher.complete(ctx, canonical, {})
    assert [a.vendor for a in ctx.attempts] == ["sima", "simb"]
    assert w.engine.circuits.state(f"sima/{MODEL}") == OPEN


def test_circuits_are_per_target() -> None:
    c = Circuits(BreakerSettings(min_requests=1), clock=lambda: 0.0)
    c.record("a/x", False)
    assert c.state("a/x") == OPEN and c.state("a/y") == CLOSED and c.available("a/y")


def test_histogram_percentiles_are_within_a_bucket() -> None:
    hist = [0] * 64
    for ms in range(1, 1001):
        hist[hist_index(float(ms))] += 1
    p50 = percentile(hist, 0.5)
    p95 = percentile(hist, 0.95)
    assert p50 is not None and 500 / 1.25 <= p50 <= 500 * 1.25
    assert p95 is not None and 950 / 1.25 <= p95 <= 950 * 1.25
    assert hist_value(hist_index(300.0)) == pytest.approx(300.0, rel=0.15)


def test_stats_windows() -> None:
    now = [1_000_000.0]
    stats = LiveStats(clock=lambda: now[0])
    key = f"sima/{MODEL}"
    # A day ago-ish (20 h): failures only.
    now[0] -= 20 * 3600
    for _ in range(10):
        stats.attempt(key, ok=False, down=True)
    # 20 minutes ago: slow successes.
    now[0] += 20 * 3600 - 20 * 60
    for _ in range(10):
        stats.attempt(key, ok=True)
        stats.answered(key, 2.0, output_tokens=100, generation_s=2.0)
    # Now: fast successes and a rate limit (an error, but not downtime).
    now[0] += 20 * 60
    for _ in range(9):
        stats.attempt(key, ok=True)
        stats.answered(key, 0.3, output_tokens=200, generation_s=1.0)
    stats.attempt(key, ok=False, down=False)
    summary = stats.summary(key)
    assert summary is not None
    w5, w30, w1d = (summary.windows[n] for n in ("5m", "30m", "1d"))
    assert (w5.requests, w30.requests, w1d.requests) == (10, 20, 30)
    assert w5.error_rate == pytest.approx(0.1) and w5.uptime == 1.0
    assert w1d.uptime == pytest.approx(20 / 30)
    assert w5.ttft_p50_ms is not None and 240 <= w5.ttft_p50_ms <= 375
    assert w30.ttft_p95_ms is not None and w30.ttft_p95_ms >= 1600
    assert w5.tokens_per_s == pytest.approx(200.0)
    assert w30.tokens_per_s == pytest.approx((1800 + 1000) / (9 + 20))
    endpoint = stats.endpoint_stats()[("sima", MODEL)]
    assert endpoint["latency_ms"] == pytest.approx(w5.ttft_p50_ms, rel=0.01)
    assert endpoint["uptime"] == 1.0 and endpoint["requests_1d"] == 30


REDIS_URL = os.environ.get("INTERLOCK_TEST_REDIS", "redis://127.0.0.1:6379/15")


async def test_stats_are_shared_across_replicas_through_redis() -> None:
    redis = pytest.importorskip("redis.asyncio")
    from interlock.routing.shared import SharedStats

    prefix = f"interlock-test:{os.getpid()}:{id(object())}:"
    probe = redis.Redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except OSError:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (make services)")
    now = [1_000_000.0]
    a, b = LiveStats(clock=lambda: now[0]), LiveStats(clock=lambda: now[0])
    sa, sb = SharedStats(a, REDIS_URL, prefix=prefix), SharedStats(b, REDIS_URL, prefix=prefix)
    try:
        key = f"sima/{MODEL}"
        for _ in range(3):
            a.attempt(key, ok=True)
            a.answered(key, 0.5, output_tokens=100, generation_s=1.0)
        b.attempt(key, ok=False, down=True)
        await sa.sync_once()
        await sb.sync_once()
        await sa.sync_once()
        for stats in (a, b):
            window = stats.summary(key).windows["5m"]  # type: ignore[union-attr]
            assert window.requests == 4 and window.uptime == pytest.approx(0.75)
            assert window.tokens_per_s == pytest.approx(100.0)
        # Pushed counters are not pushed twice.
        await sa.sync_once()
        assert a.summary(key).windows["5m"].requests == 4  # type: ignore[union-attr]
    finally:
        keys = [k async for k in probe.scan_iter(match=f"{prefix}*")]
        if keys:
            await probe.delete(*keys)
        await sa.close()
        await sb.close()
        await probe.aclose()


def _settings(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "interlock.yaml"
    path.write_text(text)
    return load_settings(path, vendor_table=VENDOR_TABLE, environ={})


def test_circuit_breaker_thresholds_come_from_the_config(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "circuit_breaker:\n  failure_rate: 0.25\n  min_requests: 2\n  window_s: 5\n"
                                   "  cooldown_s: 1\n  max_cooldown_s: 8\n")
    engine = build_routing(settings, load_catalog(), {})
    assert engine.circuits.settings == BreakerSettings(failure_rate=0.25, min_requests=2, window_s=5.0,
                                                       cooldown_s=1.0, max_cooldown_s=8.0)
    breaker = engine.circuits.get(f"sima/{MODEL}")
    breaker.record(False, 100.0)
    assert breaker.state == CLOSED  # 1 < min_requests
    breaker.record(False, 100.0)
    assert breaker.state == OPEN and breaker.reopen_at == 101.0
    # Nothing configured: the documented defaults.
    assert build_routing(_settings(tmp_path, "{}\n"), load_catalog(), {}).circuits.settings == BreakerSettings()


@pytest.mark.parametrize(("text", "expected"), [
    ("circuit_breaker:\n  failure_rate: 1.5\n", ":2: circuit_breaker.failure_rate: expected a share"),
    ("circuit_breaker:\n  failure_rate: 0\n", "circuit_breaker.failure_rate: expected a positive number"),
    ("circuit_breaker:\n  min_requests: 0\n", "circuit_breaker.min_requests: expected an integer ≥ 1"),
    ("circuit_breaker:\n  window_s: .inf\n", "circuit_breaker.window_s: expected a finite number"),
    ("circuit_breaker:\n  cooldown_s: 10\n  max_cooldown_s: 5\n",
     ":3: circuit_breaker.max_cooldown_s: expected at least cooldown_s (10)"),
    ("circuit_breaker:\n  min_request: 3\n", "circuit_breaker.min_request: unknown key (did you mean 'min_requests'?)"),
])
def test_circuit_breaker_config_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_routing(_settings(tmp_path, text), load_catalog())
    assert expected in str(info.value) and "interlock.yaml" in str(info.value)
