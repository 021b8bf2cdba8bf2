"""The hourly route rollup (``route_hourly``): summed per batch, written with the batch, counted once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interlock.console.traffic import RouteTraffic, route_health, traffic_view
from interlock.ledger.routes import route_deltas
from interlock.ledger.rowcodec import row_from_record
from interlock.ledger.writer import LedgerWriter, LogStore, SpillFile

T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC, hour 486111
H0 = int(T0 // 3600)
MINI = "openai/gpt-4.1-mini"


def rec(i: int, at: float, status: int = 200, vendor: str = "openai", model: str = MINI, **extra: Any) -> dict[str, Any]:
    return {"id": f"req_{i:06d}", "received_at": at, "inbound": "openai.chat", "model": model, "vendor": vendor,
            "status": status, "input_tokens": 10, "output_tokens": 5, "content_level": "metadata", **extra}


def test_route_deltas_sum_per_model_hour_and_vendor() -> None:
    rows = [row_from_record(r) for r in (
        rec(1, T0), rec(2, T0 + 10, status=429), rec(3, T0 + 20, status=503), rec(4, T0 + 3600),
        rec(5, T0, vendor="azure"), rec(6, T0, model="", vendor=""), rec(7, T0, status=500, input_tokens=None,
                                                                        output_tokens=None))]
    assert route_deltas(rows) == [
        (MINI, H0, "azure", 1, 0, 0, 10, 5),
        (MINI, H0, "openai", 4, 3, 2, 30, 15),  # 429 is an error, not a failure; a row without a model is left out
        (MINI, H0 + 1, "openai", 1, 0, 0, 10, 5),
    ]


async def test_the_writer_fills_route_hourly_once(log_store: LogStore, tmp_path: Path) -> None:
    writer = LedgerWriter(log_store, SpillFile(tmp_path / "spill"), interval=60.0)
    batch = [rec(i, T0 + i * 600, status=502 if i == 3 else 200) for i in range(8)]
    for r in batch:
        writer.submit(r)
    await writer.flush()
    assert writer.written == 8
    assert await log_store.route_hours(MINI, H0) == [
        (H0, "openai", 6, 1, 1, 60, 30), (H0 + 1, "openai", 2, 0, 0, 20, 10)]
    # A replayed batch (written, then spilled after a lost answer) counts nothing twice.
    assert await log_store.write([*batch, rec(8, T0 + 5000, status=404)]) == 1
    assert await log_store.route_hours(MINI, H0 + 1) == [(H0 + 1, "openai", 3, 1, 0, 30, 15)]
    assert await log_store.route_hours("anthropic/claude-sonnet-4-5", 0) == []


async def test_page_figures_from_either_store(log_store: LogStore) -> None:
    """What the model page shows, read from SQLite and from PostgreSQL through the console's reader."""
    await log_store.write([rec(i, T0 + i, status=(503 if i < 2 else 429 if i < 5 else 200)) for i in range(20)])
    await log_store.write([rec(100 + i, T0 - 3 * 86400, vendor="azure") for i in range(4)])
    traffic = RouteTraffic(log_store, clock=lambda: T0 + 60)
    hours = await traffic.hours(MINI)
    assert hours is not None and not hours.failed
    assert {v: (h["uptime"], h["errors"]) for v, h in route_health(hours).items()} == {
        "openai": ("90.0% · 90.0% · 90.0%", "25.0% · 25.0% · 25.0%"),
        "azure": ("— · — · 100%", "— · — · 0%"),
    }
    view = traffic_view(hours, log_enabled=True)
    assert (view["requests"], view["input"], view["output"]) == ("24", "240", "120")
    assert [b["requests"] for b in view["bars"]] == [0, 0, 0, 4, 0, 0, 20]
