"""The Overview and Spend pages' pure parts: windows, charts, series, spend periods, parameters and CSV."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from interlock.console.charts import count, line_chart, ms, pct, stacked_chart, usd
from interlock.console.overview import route_health, series_view, top_rows, window_of
from interlock.console.spend import (
    budget_source,
    csv_text,
    parse_params,
    period_of,
    periods_between,
    spend_view,
)
from interlock.core.errors import InvalidRequest, PermissionDenied
from interlock.governance.model import Budget
from interlock.ledger.usage import TPS_COLUMNS, TTFT_COLUMNS
from interlock.routing.stats import LiveStats

NOW = 1_765_000_000.0  # 2025-12-06 05:46:40 UTC
HOUR = int(NOW // 3600)
TODAY = dt.date(2025, 12, 6)


def test_formatting() -> None:
    assert usd(None) == "—" and usd(0) == "$0.00" and usd(12_345 * 10**12) == "$12,345.00"
    assert usd(25 * 10**9) == "$0.0250" and usd(1_234_567) == "$0.000001"
    assert count(9_999) == "9,999" and count(12_345) == "12.3k" and count(4_560_000) == "4.56M"
    assert pct(1, 5) == "20%" and pct(1, 3) == "33%" and pct(1, 200) == "0.5%" and pct(1, 0) == "—"
    assert ms(None) == "—" and ms(212.4) == "212 ms" and ms(1530) == "1.53 s"


@pytest.mark.parametrize(("name", "buckets", "per"), [("1h", 2, 1), ("24h", 24, 1), ("7d", 28, 6), ("30d", 30, 24)])
def test_windows_are_whole_utc_buckets_ending_with_the_current_one(name: str, buckets: int, per: int) -> None:
    w = window_of(name, NOW)
    assert w.buckets == buckets and w.bucket_hours == per
    assert w.first_hour % per == 0 and w.until_hour % per == 0 and w.first_hour <= HOUR < w.until_hour
    assert w.until_hour - HOUR <= per


def test_series_view_sums_buckets_and_reads_percentiles() -> None:
    w = window_of("7d", NOW)
    hist = [0] * len(TTFT_COLUMNS)
    hist[5] = 10
    speed = [0] * len(TPS_COLUMNS)
    speed[8] = 10
    row = (w.first_hour + 1, 10, 2, 100, 50, 4 * 10**12, 10**12, *hist, *speed)
    view = series_view(w, [row, (w.first_hour + 2, *row[1:]), (w.first_hour - 1, *row[1:])])  # the last is outside
    assert view["totals"]["requests"] == "20" and view["totals"]["error_rate"] == "20%"
    assert view["totals"]["spend"] == "$8.00" and view["totals"]["saved"] == "$2.00"
    assert view["table"][0]["requests"] == "20" and view["table"][1]["requests"] == "0"
    assert view["totals"]["ttft50"] == view["table"][0]["ttft50"] != "—" and view["table"][1]["ttft50"] == "—"
    chart = view["charts"]["requests"]
    assert len(chart["bars"]) == 28 and [s["pattern"] for s in chart["bars"][0]["segments"]] == [0, 1]
    assert "succeeded" in chart["names"] and not view["empty"]
    assert series_view(w, [])["empty"]


def test_top_rows_rank_by_spend_then_requests() -> None:
    rows = [("a", 5, 0, 1, 1, 10, 0), ("b", 1, 1, 1, 1, 30, 0), ("c", 9, 0, 1, 1, 10, 0)]
    top = top_rows(rows, 1, 50)
    assert [t["name"] for t in top] == ["b", "c", "a"] and top[0]["share"] == "60%" and top[0]["errors"] == "100%"


def test_charts_never_rely_on_colour_alone() -> None:
    chart = stacked_chart("c", ["a", "b"], [[1.0, 2.0], [0.0, 0.5]], ["x", "y"], str, title="T",
                          lines=[(2.5, "budget"), (100.0, "far budget")])
    assert [s["pattern"] for s in chart["bars"][0]["segments"]] == [0, 1]  # a pattern per series
    assert chart["lines"][0]["text"] == "budget" and "above this scale" in chart["lines"][1]["text"]
    assert chart["summary"] == "T: a 3.0, b 0.5"
    lines = line_chart("l", ["a", "b", "c"], [("p50", [1.0, None, 3.0]), ("p95", [None, None, None])], str, title="L")
    p50, p95 = lines["series"]
    assert p50["paths"] == [] and len(p50["dots"]) == 2 and p50["latest"] == "3.0"  # a gap splits the line
    assert p95["latest"] == "—" and p50["cls"] != p95["cls"]


def test_spend_periods() -> None:
    assert period_of("2025-12-06", "day") == "2025-12-06"
    assert period_of("2025-12-06", "week") == "2025-12-01"  # the Monday
    assert period_of("2025-12-06", "month") == "2025-12"
    assert periods_between("2025-11-29", "2025-12-02", "week") == ["2025-11-24", "2025-12-01"]


def test_spend_parameters() -> None:
    p = parse_params({}, TODAY, admin=True, own=None)
    assert p == {"by": "day", "group": "model", "from": "2025-11-07", "to": "2025-12-06", "project": ""}
    assert parse_params({"by": "week"}, TODAY, admin=True, own=None)["from"] == "2025-09-15"  # a Monday
    assert parse_params({"by": "month"}, TODAY, admin=True, own=None)["from"] == "2025-01-01"
    assert parse_params({}, TODAY, admin=False, own="beta")["project"] == "beta"
    for params, field in (({"by": "year"}, "by"), ({"group": "colour"}, "group"), ({"from": "2025-13-01"}, "from"),
                          ({"from": "2025-12-07"}, "from"), ({"from": "2020-01-01"}, "from"), ({"to": "x"}, "to")):
        with pytest.raises(InvalidRequest) as info:
            parse_params(params, TODAY, admin=True, own=None)
        assert info.value.param == field
    with pytest.raises(PermissionDenied):
        parse_params({"project": "alpha"}, TODAY, admin=False, own="beta")


def test_spend_view_stacks_the_largest_groups_and_draws_matching_budgets() -> None:
    choice = parse_params({"from": "2025-12-01", "to": "2025-12-02", "group": "key"}, TODAY, admin=True, own=None)
    rows = [("2025-12-01", f"k{i}", (i + 1) * 10**12, 0, 1) for i in range(8)]
    rows.append(("2025-12-02", "k7", 10**12, 5 * 10**11, 2))
    budgets = [{"name": "daily", "period": "daily", "amount_usd": 20.0}, {"name": "monthly", "period": "monthly",
                                                                          "amount_usd": 1.0}]
    view = spend_view(rows, choice, budgets)
    assert view["names"] == ["k7", "k6", "k5", "k4", "k3", "k2", "other"]
    assert view["table"][0]["cells"][-1] == "$3.00" and view["table"][1]["cells"][0] == "$1.00"
    assert view["table"][1]["cells"][1] == "—" and view["table"][1]["saved"] == "$0.5000"
    assert [line["text"] for line in view["chart"]["lines"]] == ["daily $20.00"]
    assert view["total"] == "$37.00" and view["requests"] == "10"
    text = csv_text(view["csv"], "day", "key")
    assert text.splitlines()[0] == "day,key,cost_usd,saved_usd,requests"
    assert "2025-12-02,k7,1.000000000000,0.500000000000,2" in text.splitlines()


async def test_budgets_a_viewer_sees() -> None:
    defined = [Budget("b1", "project", "alpha", 5_000_000, "daily"), Budget("b2", "project", "beta", 1_000_000,
                                                                           "monthly"),
               Budget("b3", "key", "key_1", 2_000_000, "weekly")]
    read: list[str] = []

    async def status(b: Budget) -> dict[str, Any]:
        read.append(b.id)
        return {"spent_usd": "1.5", "reserved_usd": "0", "remaining_usd": "3.5"}

    source = budget_source(lambda: defined, status)
    assert [b["subject"] for b in await source(None)] == ["alpha", "beta", "key_1"]
    (beta,) = await source("beta")
    assert beta["name"] == "project 'beta' monthly budget" and beta["amount_usd"] == 1.0 and beta["spent_usd"] == 1.5
    assert read == ["b1", "b2", "b3", "b2"]  # a project's view reads no other budget's status


def test_route_health_reads_live_stats_and_circuits() -> None:
    stats = LiveStats(clock=lambda: NOW)
    for ok in (True, True, True, False):
        stats.attempt("openai/openai/gpt-4.1-mini", ok=ok, down=not ok)
    stats.attempt("azure/openai/gpt-4.1-mini", ok=False, down=True)
    health = route_health(stats, lambda key: "open" if key.startswith("azure/") else "closed")
    assert [(h["vendor"], h["model"]) for h in health] == [("azure", "openai/gpt-4.1-mini"),
                                                          ("openai", "openai/gpt-4.1-mini")]
    azure, openai = health
    assert (azure["uptime"], azure["errors"], azure["circuit"], azure["circuit_ok"]) == ("0.0%", "100%", "open", False)
    assert (openai["uptime"], openai["errors"], openai["requests_30m"], openai["circuit_ok"]) == ("75%", "25%", "4",
                                                                                                True)
