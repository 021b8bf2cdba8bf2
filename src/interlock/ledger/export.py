"""What the admin API and the CLI share about reading the log: time parameters and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from typing import Any

import orjson

from interlock.core.errors import InvalidRequest
from interlock.ledger.record import CACHE_COLUMNS, COLUMNS

#: ``-30m``, ``-1h``, ``-7d``: that long before now.
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time(value: str, param: str) -> float:
    """Epoch seconds, ISO 8601 (a date means its midnight, UTC unless an offset is given), or a time before
    now (``-1h``, ``-30m``, ``-7d``)."""
    try:
        return float(value)
    except ValueError:
        pass
    if value.startswith("-") and value[-1:] in _UNITS and value[1:-1].isdigit():
        return time.time() - int(value[1:-1]) * _UNITS[value[-1]]
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"Invalid '{param}': expected an ISO 8601 time (2025-06-01 or 2025-06-01T12:00:00Z), "
                             f"epoch seconds or a time before now (-1h, -30m, -7d), got {value!r}.",
                             param=param) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def parse_day(value: str, param: str) -> str:
    return dt.datetime.fromtimestamp(parse_time(value, param), dt.UTC).strftime("%Y-%m-%d")


#: The export's columns: the response cache's after the ones exports had before it.
CSV_COLUMNS = (*COLUMNS, "cost_usd", *CACHE_COLUMNS, "cache_saved_usd")


def csv_lines(rows: list[dict[str, Any]], header: bool) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    if header:
        writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in CSV_COLUMNS])
    return buf.getvalue().encode()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return "" if value is None else value
