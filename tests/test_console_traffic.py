"""The model page's figures from this gateway's own traffic: uptime, error rate, traffic per day.

The view functions on hand-made rollup rows; the per-model cache; and a gateway
whose requests (answered, refused by the vendor, failed) show up on the model
page through the request log's hourly route rollup.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock.app import Gateway
from interlock.console.traffic import Hours, RouteTraffic, percent, route_health, traffic_view
from tests.conftest import MASTER_KEY
from tests.inprocess import Proto, Scope, running_gateway

NOW_HOUR = 486_111  # 2025-06-15 15:00 UTC, a Sunday
MINI = "openai/gpt-4.1-mini"


def test_percent_never_rounds_a_share_away() -> None:
    assert percent(0, 0) == "—" and percent(0, 0, complement=True) == "—"
    assert (percent(0, 10), percent(0, 10, complement=True)) == ("0%", "100%")
    assert (percent(10, 10), percent(10, 10, complement=True)) == ("100%", "0%")
    assert percent(1, 8) == "12.5%" and percent(1, 8, complement=True) == "87.5%"
    assert percent(1, 100_000) == "<0.1%" and percent(1, 100_000, complement=True) == ">99.9%"


def test_route_health_over_one_hour_a_day_and_a_week() -> None:
    rows = (
        (NOW_HOUR - 100, "openai", 100, 10, 4, 0, 0),  # only in 7 d
        (NOW_HOUR - 5, "openai", 50, 0, 0, 0, 0),      # 24 h and 7 d
        (NOW_HOUR - 1, "openai", 8, 1, 1, 0, 0),       # every window (1 h: the previous hour and this one)
        (NOW_HOUR, "openai", 2, 1, 0, 0, 0),
        (NOW_HOUR - 2, "azure", 5, 5, 5, 0, 0),
    )
    health = route_health(Hours(NOW_HOUR, rows))
    # 1 h: 10 requests, 2 errors, 1 failure; 24 h: 60 / 2 / 1; 7 d: 160 / 12 / 5.
    assert (health["openai"]["uptime"], health["openai"]["errors"]) == ("90.0% · 98.3% · 96.9%", "20.0% · 3.3% · 7.5%")
    assert (health["azure"]["uptime"], health["azure"]["errors"]) == ("— · 0% · 0%", "— · 100% · 100%")
    assert health["azure"]["uptime_parts"] == [("1 h", "—"), ("24 h", "0%"), ("7 d", "0%")]
    assert route_health(None) == {} and route_health(Hours(NOW_HOUR, failed=True)) == {}


def test_traffic_view_sums_utc_days_and_draws_one_bar_each() -> None:
    today = NOW_HOUR // 24
    rows = ((NOW_HOUR, "openai", 30, 0, 0, 3000, 600), (NOW_HOUR - 1, "azure", 10, 0, 0, 1000, 200),
            (today * 24 - 1, "openai", 20, 1, 0, 2000, 400),        # yesterday's last hour
            ((today - 6) * 24, "openai", 1, 0, 0, 5, 1),            # the first of the 7 days
            ((today - 6) * 24 - 1, "openai", 99, 0, 0, 9, 9))       # the day before: not shown
    view = traffic_view(Hours(NOW_HOUR, rows), log_enabled=True)
    assert view["state"] == "ok" and (view["requests"], view["input"], view["output"]) == ("61", "6,005", "1,201")
    bars = view["bars"]
    assert [b["date"] for b in bars] == [f"2025-06-{d:02d}" for d in range(9, 16)]
    assert [b["requests"] for b in bars] == [1, 0, 0, 0, 0, 20, 40]
    assert [b["label"] for b in bars][-1] == "Sun"
    assert bars[-1]["height"] == 88 and bars[-2]["height"] == 44 and bars[0]["height"] == 2.2
    assert bars[1]["height"] == 0.0 and bars[-1]["y"] == 14
    assert view["summary"].endswith("Sat 20, Sun 40")
    assert traffic_view(Hours(NOW_HOUR), log_enabled=True)["state"] == "empty"
    assert traffic_view(None, log_enabled=False) == {"state": "off"}
    assert traffic_view(Hours(NOW_HOUR, failed=True), log_enabled=True) == {"state": "failed"}


class CountingStore:
    """A log store answering ``route_hours`` only, counting the reads (optionally failing them)."""

    kind = "fake"

    def __init__(self, fail: bool = False) -> None:
        self.reads: list[tuple[str, int]] = []
        self.fail = fail

    async def route_hours(self, model: str, since_hour: int) -> list[tuple[Any, ...]]:
        self.reads.append((model, since_hour))
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("the store is down")
        return [(since_hour + 168, "openai", 1, 0, 0, 1, 1)]


async def test_route_traffic_reads_once_per_model_and_ttl() -> None:
    now = [NOW_HOUR * 3600.0 + 10]
    store = CountingStore()
    traffic = RouteTraffic(store, ttl=30.0, clock=lambda: now[0])  # type: ignore[arg-type]
    first, second = await asyncio.gather(traffic.hours(MINI), traffic.hours(MINI))
    assert first == second == Hours(NOW_HOUR, ((NOW_HOUR, "openai", 1, 0, 0, 1, 1),))
    await traffic.hours("anthropic/claude-sonnet-4-5")
    now[0] += 29
    await traffic.hours(MINI)
    assert store.reads == [(MINI, NOW_HOUR - 168), ("anthropic/claude-sonnet-4-5", NOW_HOUR - 168)]
    now[0] += 1
    await traffic.hours(MINI)
    assert len(store.reads) == 3
    broken = RouteTraffic(CountingStore(fail=True))  # type: ignore[arg-type]
    assert (await broken.hours(MINI) or Hours(0)).failed
    assert await RouteTraffic(None).hours(MINI) is None


# --------------------------------------------------------------------------- through a gateway


def call(gw: Gateway, loop: asyncio.AbstractEventLoop, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> Proto:
    async def run() -> Proto:
        proto = Proto(orjson.dumps(body) if body is not None else b"")
        scope = Scope(method, path, {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json",
                                     "host": "127.0.0.1:4000", **(headers or {})})
        await gw.__rsgi__(scope, proto)  # type: ignore[arg-type]
        return proto
    return loop.run_until_complete(run())


def cells(html: str, label: str) -> list[str]:
    """Each route's cell of a health column, as its joined text (the title)."""
    return re.findall(rf'<td data-label="{re.escape(label)}" class="num health" title="([^"]*)">', html)


def test_model_page_shows_uptime_errors_and_traffic_after_requests(tmp_path: Path) -> None:
    config = ("simulator: {enabled: true, time_scale: 0, allow_fault_headers: true}\n"
              "logging: {flush_interval: 0.05}\n")
    with running_gateway(config, tmp_path) as (gw, loop):
        chat = {"model": MINI, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
        statuses = [call(gw, loop, "POST", "/v1/chat/completions", chat).status for _ in range(6)]
        statuses.append(call(gw, loop, "POST", "/v1/chat/completions", chat,
                             {"x-interlock-simulator-fault": "error=400"}).status)
        statuses.append(call(gw, loop, "POST", "/v1/chat/completions", chat,
                             {"x-interlock-simulator-fault": "error=500"}).status)
        assert statuses[:7] == [200] * 6 + [400] and statuses[7] >= 500
        assert gw.obs.writer is not None
        loop.run_until_complete(gw.obs.writer.flush())
        page = call(gw, loop, "GET", "/models/openai/gpt-4.1-mini")
        html = b"".join(page.chunks).decode()
    assert page.status == 200
    # The simulator row answers for the model here: 8 requests, 2 errors, 1 failure.
    assert cells(html, "Uptime 1 h · 24 h · 7 d")[0] == "87.5% · 87.5% · 87.5%"
    assert cells(html, "Errors 1 h · 24 h · 7 d")[0] == "25.0% · 25.0% · 25.0%"
    assert set(cells(html, "Uptime 1 h · 24 h · 7 d")[1:]) == {"— · — · —"}  # vendors not configured here
    assert "Traffic through this gateway (7 d)" in html
    assert re.search(r'<span class="k">Requests</span> <span class="figure">8</span>', html)
    assert '<svg class="bars"' in html and "<title id=\"traffic-svg-title\">Requests per day" in html
    assert "style=" not in html


@pytest.mark.parametrize("level", ["off"])
def test_model_page_without_a_request_log(tmp_path: Path, level: str) -> None:
    config = f"simulator: {{enabled: true, time_scale: 0}}\nlogging: {{level: {level}}}\n"
    with running_gateway(config, tmp_path) as (gw, loop):
        page = call(gw, loop, "GET", "/models/openai/gpt-4.1-mini")
        html = b"".join(page.chunks).decode()
    assert page.status == 200
    assert set(cells(html, "Uptime 1 h · 24 h · 7 d")) == {"— · — · —"}
    assert "The request log is off on this gateway" in html and '<svg class="bars"' not in html
