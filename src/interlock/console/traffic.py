"""The model page's figures from this gateway's own traffic: per-route uptime and error rate, traffic per day.

They come from the request log's hourly route rollup (``ledger.routes``), never
from raw records: :class:`RouteTraffic` reads one model's last 7 days of hours
(at most 169 rows per vendor, one indexed range) off the event loop and keeps
them per model for ``ttl`` seconds, so a page costs at most one small query.
The view functions below are pure. Windows are whole UTC clock hours: "1 h" is
the previous hour and the current one so far, "24 h" and "7 d" likewise 24 and
168 hours back. Uptime is 1 - failures / requests (failures: status >= 500,
the vendor's or the gateway's), error rate is errors / requests (status >= 400,
caller errors included).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interlock.ledger.writer import LogStore

log = logging.getLogger("interlock.console")

#: (label, hours back from the current hour) of the uptime / error windows.
WINDOWS: tuple[tuple[str, int], ...] = (("1 h", 1), ("24 h", 24), ("7 d", 168))
DAYS = 7
#: A rollup row as the store returns it: (hour, vendor, requests, errors, failures, input, output).
HourRow = tuple[Any, ...]
DASH = "—"


@dataclass(frozen=True, slots=True)
class Hours:
    """One model's rollup rows since ``now_hour - 168``; ``failed`` when the log could not be read."""

    now_hour: int
    rows: tuple[HourRow, ...] = ()
    failed: bool = False


class RouteTraffic:
    """Reads ``route_hourly`` for the model page; ``store`` is None when the request log is off."""

    def __init__(self, store: LogStore | None, *, ttl: float = 30.0, clock: Callable[[], float] = time.time,
                 max_models: int = 4096) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self.max_models = max_models
        self._cache: dict[str, tuple[float, asyncio.Task[Hours]]] = {}

    async def hours(self, model_id: str) -> Hours | None:
        """The model's last 7 days of hours, at most ``ttl`` seconds old (one read shared by concurrent pages)."""
        if self.store is None:
            return None
        now = self.clock()
        cached = self._cache.get(model_id)
        if cached is None or now - cached[0] >= self.ttl:
            if len(self._cache) >= self.max_models:
                self._cache.clear()
            task = asyncio.get_running_loop().create_task(self._read(self.store, model_id, int(now // 3600)))
            cached = self._cache[model_id] = (now, task)
        return await asyncio.shield(cached[1])

    @staticmethod
    async def _read(store: LogStore, model_id: str, now_hour: int) -> Hours:
        try:
            rows = await store.route_hours(model_id, now_hour - WINDOWS[-1][1])
        except Exception as exc:  # noqa: BLE001 - the page shows "—" and says so rather than failing
            log.warning("console: reading the route rollup of %s failed: %s: %s", model_id, type(exc).__name__, exc)
            return Hours(now_hour, failed=True)
        return Hours(now_hour, tuple(rows))


# --------------------------------------------------------------------------- pure views


def percent(part: int, whole: int, *, complement: bool = False) -> str:
    """``part / whole`` (or 1 - that) as a compact percentage that never rounds a non-zero share away."""
    if whole <= 0:
        return DASH
    share = part / whole
    value = 1.0 - share if complement else share
    if part == 0:
        return "100%" if complement else "0%"
    if part == whole:
        return "0%" if complement else "100%"
    text = f"{value * 100:.1f}%"
    if complement and text == "100.0%":
        return ">99.9%"
    if not complement and text == "0.0%":
        return "<0.1%"
    return text


def _window_sums(rows: Iterable[HourRow], now_hour: int) -> dict[str, list[list[int]]]:
    """vendor -> per window [requests, errors, failures]."""
    out: dict[str, list[list[int]]] = {}
    for hour, vendor, requests, errors, failures, *_ in rows:
        sums = out.get(vendor)
        if sums is None:
            sums = out[vendor] = [[0, 0, 0] for _ in WINDOWS]
        for i, (_, back) in enumerate(WINDOWS):
            if hour >= now_hour - back:
                w = sums[i]
                w[0] += requests
                w[1] += errors
                w[2] += failures
    return out


def route_health(hours: Hours | None) -> dict[str, dict[str, Any]]:
    """vendor -> {"uptime": "99.9% · 100% · 98.7%", "errors": ...} over :data:`WINDOWS` ("—": no traffic)."""
    if hours is None or hours.failed:
        return {}
    out = {}
    for vendor, sums in _window_sums(hours.rows, hours.now_hour).items():
        out[vendor] = _cells([percent(f, n, complement=True) for n, _, f in sums], [percent(e, n) for n, e, _ in sums])
    return out


def _cells(uptime: list[str], errors: list[str]) -> dict[str, Any]:
    """The joined text and, for the table's stacked layout, (window, figure) pairs."""
    labels = [label for label, _ in WINDOWS]
    return {"uptime": " · ".join(uptime), "errors": " · ".join(errors),
            "uptime_parts": list(zip(labels, uptime, strict=True)), "errors_parts": list(zip(labels, errors, strict=True))}


NO_TRAFFIC = _cells([DASH] * len(WINDOWS), [DASH] * len(WINDOWS))


def with_route_health(routes: Sequence[dict[str, Any]], hours: Hours | None) -> list[dict[str, Any]]:
    """The model page's route rows with their ``uptime`` and ``errors`` cells."""
    health = route_health(hours)
    return [{**r, **health.get(r["vendor"], NO_TRAFFIC)} for r in routes]


def count(value: int) -> str:
    """``1234567`` -> ``"1.23M"``, ``12345`` -> ``"12.3K"``, small numbers as they are."""
    if value >= 1_000_000_000:
        return f"{value / 1e9:.3g}B"
    if value >= 1_000_000:
        return f"{value / 1e6:.3g}M"
    if value >= 10_000:
        return f"{value / 1e3:.3g}K"
    return f"{value:,}"


#: The bar chart's geometry (SVG user units).
CHART_W, CHART_H, BAR_W, GAP, LABEL_H, TOP = 336, 120, 36, 12, 18, 14


def traffic_view(hours: Hours | None, *, log_enabled: bool) -> dict[str, Any]:
    """The "Traffic through this gateway (7 d)" section: totals, one bar per UTC day, the numbers as a table."""
    if not log_enabled or hours is None:
        return {"state": "off"}
    if hours.failed:
        return {"state": "failed"}
    today = hours.now_hour // 24
    first = today - (DAYS - 1)
    per_day = {d: [0, 0, 0] for d in range(first, today + 1)}
    for hour, _vendor, requests, _errors, _failures, tin, tout in hours.rows:
        sums = per_day.get(hour // 24)
        if sums is not None:
            sums[0] += requests
            sums[1] += tin
            sums[2] += tout
    totals = [sum(v[i] for v in per_day.values()) for i in range(3)]
    peak = max(v[0] for v in per_day.values())
    bars = []
    plot_h = CHART_H - LABEL_H - TOP
    for i, (day, (requests, tin, tout)) in enumerate(sorted(per_day.items())):
        date = dt.datetime.fromtimestamp(day * 86400, dt.UTC)
        height = round(plot_h * requests / peak, 1) if peak else 0.0
        if requests and height < 1.0:
            height = 1.0  # a day with traffic is never an empty slot
        x = GAP / 2 + i * (BAR_W + GAP)
        bars.append({
            "date": date.strftime("%Y-%m-%d"), "label": date.strftime("%a"), "requests": requests,
            "requests_text": count(requests), "input": f"{tin:,}", "output": f"{tout:,}",
            "x": x, "y": round(TOP + plot_h - height, 1), "height": height, "cx": x + BAR_W / 2,
            "value_y": round(TOP + plot_h - height - 3, 1),
        })
    return {
        "state": "ok" if totals[0] else "empty",
        "requests": f"{totals[0]:,}", "input": f"{totals[1]:,}", "output": f"{totals[2]:,}",
        "bars": bars, "width": CHART_W, "height": CHART_H, "bar_w": BAR_W, "label_y": CHART_H - 4,
        "summary": (f"Requests per day through this gateway, {bars[0]['date']} to {bars[-1]['date']} (UTC): "
                    + ", ".join(f"{b['label']} {b['requests']:,}" for b in bars)),
    }


def health_note(hours: Hours | None, *, log_enabled: bool) -> str | None:
    """Why the uptime and error cells are all "—", when it is not just a lack of traffic."""
    if not log_enabled:
        return "The request log is off on this gateway (logging), so there are no uptime or error figures."
    if hours is not None and hours.failed:
        return "The request log could not be read just now, so uptime and error figures are missing."
    return None


def merge_view(view: Mapping[str, Any], hours: Hours | None, *, log_enabled: bool) -> dict[str, Any]:
    """The model page's view with its route health cells, traffic section and notes."""
    return {**view, "routes": with_route_health(view["routes"], hours),
            "traffic": traffic_view(hours, log_enabled=log_enabled),
            "health_note": health_note(hours, log_enabled=log_enabled)}
