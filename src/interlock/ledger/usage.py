"""The hourly usage rollup, ``usage_hourly``: what the console's Overview reads, whatever the log's size.

One row per (project, model, vendor, epoch hour) with requests, errors, tokens in and out, cost, the
response cache's savings and two fixed log-spaced histograms - time to first token and output tokens per
second of the requests that succeeded - as bucket-count columns, so percentiles over any set of rows are
read off their summed histogram (:func:`percentile`; a bucket spans a factor of √2, so a percentile is
within ±19 % of the exact one). Besides the (project, model, vendor) rows, each hour holds the same
figures summed per project (model and vendor ``*``), per model and vendor over every project (project
``*``) and over everything (all three ``*``): a window's series reads one row per hour, its top models or
projects a few rows per hour, never a scan. Like the other rollups it is summed per batch in the gateway
(:func:`usage_deltas`) and upserted in the transaction that inserts the batch. Rollups hold no content.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Sequence
from operator import add
from typing import Any

from interlock.core.cache import HIT
from interlock.ledger.rowcodec import (
    R_CACHE_SAVED,
    R_COST,
    R_DETAIL,
    R_INPUT,
    R_MODEL,
    R_OUTPUT,
    R_PROJECT,
    R_RECEIVED,
    R_RESPONSE_CACHE,
    R_STATUS,
    R_STREAM,
    R_VENDOR,
    Row,
)
from interlock.ledger.schema import ROLLUP_VALUES

ALL = "*"
HOUR = 3600
USAGE_KEYS = ("project", "model", "vendor", "hour")
COUNTERS = ("requests", "errors", "input_tokens", "output_tokens", "cost_picousd", "saved_picousd")
#: Upper bounds of the TTFT buckets (ms) and of the output speed buckets (tokens/s): bucket i holds
#: [edge i-1, edge i), the first everything below edge 0, the last everything from the last edge on.
TTFT_EDGES: tuple[float, ...] = tuple(25.0 * 2 ** (i / 2) for i in range(23))
TPS_EDGES: tuple[float, ...] = tuple(2.0 * 2 ** (i / 2) for i in range(21))
TTFT_COLUMNS = tuple(f"ttft_{i}" for i in range(len(TTFT_EDGES) + 1))
TPS_COLUMNS = tuple(f"tps_{i}" for i in range(len(TPS_EDGES) + 1))
USAGE_VALUES = COUNTERS + TTFT_COLUMNS + TPS_COLUMNS
_NT, _NS = len(TTFT_COLUMNS), len(TPS_COLUMNS)
_T0 = len(COUNTERS)
_S0 = _T0 + _NT
_WIDTH = len(USAGE_VALUES)


def _timings(detail: Any, stream: Any, output: int) -> tuple[float | None, float | None]:
    """TTFT (ms) and output tokens/s of a row, from the head of its ``detail`` array (no full JSON parse).

    ``detail`` starts ``[version,done_us,duration_us,ttft_us,output_tps,`` (``rowcodec.DETAIL_FIELDS``);
    the speed, when not given, is derived as the log derives it (``rowcodec.decode_row``)."""
    if not isinstance(detail, str):
        return None, None
    # One split in C (a third of the cost of five finds and slices): the writer runs this for every record.
    parts = detail.split(",", 5)
    if len(parts) < 6:
        return None, None
    ttft_text, tps_text = parts[3], parts[4]
    ttft_us = None if ttft_text == "null" else float(ttft_text)
    tps = None if tps_text == "null" else float(tps_text)
    if tps is None and output:
        duration_text = parts[2]
        if duration_text == "null":
            return (None if ttft_us is None else ttft_us / 1000.0), None
        duration = float(duration_text)
        generation = duration - ttft_us if stream and ttft_us is not None else duration
        tps = output * 1e6 / generation if generation > 0 else None
    return (None if ttft_us is None else ttft_us / 1000.0), tps


def usage_deltas(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    """A batch's sums per (project, model, vendor, hour) and its ``*`` levels, sorted (the order rows are locked in)."""
    acc: dict[tuple[Any, ...], list[int]] = {}
    get = acc.get
    edges_t, edges_s, right = TTFT_EDGES, TPS_EDGES, bisect.bisect_right
    for r in rows:
        key = (r[R_PROJECT] or "", r[R_MODEL] or "", r[R_VENDOR] or "", int(r[R_RECEIVED] // HOUR))
        v = get(key)
        if v is None:
            v = acc[key] = [0] * _WIDTH
        status = r[R_STATUS]
        output = r[R_OUTPUT] or 0
        v[0] += 1
        v[2] += r[R_INPUT] or 0
        v[3] += output
        v[4] += r[R_COST] or 0
        if r[R_RESPONSE_CACHE] == HIT:
            v[5] += r[R_CACHE_SAVED] or 0
        if status >= 400:
            v[1] += 1
            continue
        ttft, tps = _timings(r[R_DETAIL], r[R_STREAM], output)
        if ttft is not None:
            v[_T0 + right(edges_t, ttft)] += 1
        if tps is not None and output:
            v[_S0 + right(edges_s, tps)] += 1
    out: dict[tuple[Any, ...], list[int]] = {}
    for (project, model, vendor, hour), values in acc.items():
        for key in ((project, model, vendor, hour), (project, ALL, ALL, hour), (ALL, model, vendor, hour),
                    (ALL, ALL, ALL, hour)):
            row = out.get(key)
            out[key] = list(values) if row is None else list(map(add, row, values))
    return [(*k, *v) for k, v in sorted(out.items())]


def percentile(hist: Sequence[int], q: float, edges: Sequence[float]) -> float | None:
    """The ``q`` quantile (0..1) of a histogram over ``edges``: its bucket's geometric middle; None when empty."""
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    index = len(hist) - 1
    for i, count in enumerate(hist):
        seen += count
        if seen >= rank and count:
            index = i
            break
    if index == 0:
        return edges[0] / 2 ** 0.25
    if index >= len(edges):
        return edges[-1] * 2 ** 0.25
    return float((edges[index - 1] * edges[index]) ** 0.5)


# ----------------------------------------------------------------- DDL, upserts, backfill


def table_sql(integer: str) -> str:
    """``usage_hourly``'s DDL and its index for the per-project level (``integer``: the counters' type)."""
    return (f"CREATE TABLE IF NOT EXISTS usage_hourly (project TEXT NOT NULL, model TEXT NOT NULL, "
            f"vendor TEXT NOT NULL, hour INTEGER NOT NULL, "
            f"{', '.join(f'{v} {integer} NOT NULL DEFAULT 0' for v in USAGE_VALUES)}, "
            f"PRIMARY KEY ({', '.join(USAGE_KEYS)}))")


#: The per-project level's rows by hour (the top projects): partial, so no other read can pick it.
_INDEX = "CREATE INDEX IF NOT EXISTS usage_projects ON usage_hourly (hour, project) WHERE model = '*' AND vendor = '*'"
#: One project's days of ``spend_daily`` (its keys and tags on the Overview, its Spend page), read as
#: ``project = ? AND day IN (...)``: one seek per day here (or in ``spend_tag_day``), where the primary key
#: (day, project, ...) alone left PostgreSQL scanning every project's rows of the range.
SPEND_PROJECT_INDEX = "CREATE INDEX IF NOT EXISTS spend_project_day ON spend_daily (project, day)"


def _bucket_sums(expr: str, edges: Sequence[float]) -> list[str]:
    out = []
    for i in range(len(edges) + 1):
        conds = [f"{expr} IS NOT NULL"]
        if i > 0:
            conds.append(f"{expr} >= {edges[i - 1]!r}")
        if i < len(edges):
            conds.append(f"{expr} < {edges[i]!r}")
        out.append(f"sum(CASE WHEN {' AND '.join(conds)} THEN 1 ELSE 0 END)")
    return out


def backfill_sql(timings: str, hour_expr: str) -> tuple[str, ...]:
    """Fills ``usage_hourly`` from the ``requests`` a log holds (its migration): the rows, then the ``*`` levels.

    ``timings`` is a subquery of requests with ``ttft`` (ms) and ``tps`` columns (NULL unless it succeeded)."""
    counters = ("count(*)", "sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END)", "sum(coalesce(input_tokens, 0))",
                "sum(coalesce(output_tokens, 0))", "sum(coalesce(cost_picousd, 0))",
                "sum(CASE WHEN response_cache = 'hit' THEN coalesce(cache_saved_picousd, 0) ELSE 0 END)")
    names = ", ".join(USAGE_KEYS + USAGE_VALUES)
    base = (f"INSERT INTO usage_hourly ({names}) SELECT coalesce(project, ''), coalesce(model, ''), "
            f"coalesce(vendor, ''), {hour_expr}, {', '.join(counters)}, "
            f"{', '.join(_bucket_sums('ttft', TTFT_EDGES) + _bucket_sums('tps', TPS_EDGES))} FROM ({timings}) AS t "
            f"GROUP BY coalesce(project, ''), coalesce(model, ''), coalesce(vendor, ''), {hour_expr}")
    sums = ", ".join(f"sum({v})" for v in USAGE_VALUES)
    levels = (("project", "'*'", "'*'", "project"), ("'*'", "model", "vendor", "model, vendor"),
              ("'*'", "'*'", "'*'", ""))
    out = [base]
    for project, model, vendor, group in levels:
        out.append(f"INSERT INTO usage_hourly ({names}) SELECT {project}, {model}, {vendor}, hour, {sums} "
                   f"FROM usage_hourly WHERE project <> '*' AND model <> '*' GROUP BY "
                   + (f"{group}, hour" if group else "hour"))
    return tuple(out)


_OK = "status < 400"
#: Each subquery below is computed once per row and fenced from the aggregate above it (SQLite does not
#: flatten a subquery with a LIMIT into an aggregate, PostgreSQL does not pull up one with OFFSET): otherwise
#: every bucket's CASE would re-evaluate the timings, parsing ``detail`` some fifty times a row.
#: Legacy rows (no ``detail``) keep ``ttft_ms`` / ``output_tps`` in columns; newer ones in ``detail``.
_SQLITE_TIMINGS = (
    "SELECT project, model, vendor, received_at, status, input_tokens, output_tokens, cost_picousd, "
    "response_cache, cache_saved_picousd, "
    f"CASE WHEN {_OK} THEN coalesce(ttft_ms, json_extract(detail, '$[3]') / 1000.0) END AS ttft, "
    f"CASE WHEN {_OK} AND output_tokens > 0 THEN coalesce(output_tps, json_extract(detail, '$[4]'), "
    "output_tokens * 1e6 / nullif(json_extract(detail, '$[2]') - CASE WHEN stream = 1 "
    "THEN coalesce(json_extract(detail, '$[3]'), 0) ELSE 0 END, 0)) END AS tps FROM requests LIMIT -1")
#: PostgreSQL parses each row's ``detail`` once, into ``jsonb`` (whose ``->>`` then reads without re-parsing).
_PG_TIMINGS = (
    "SELECT project, model, vendor, received_at, status, input_tokens, output_tokens, cost_picousd, "
    "response_cache, cache_saved_picousd, "
    f"CASE WHEN {_OK} THEN coalesce(ttft_ms, (d->>3)::double precision / 1000.0) END AS ttft, "
    f"CASE WHEN {_OK} AND output_tokens > 0 THEN coalesce(output_tps, (d->>4)::double precision, "
    "output_tokens * 1e6 / nullif((d->>2)::double precision - CASE WHEN stream = 1 "
    "THEN coalesce((d->>3)::double precision, 0) ELSE 0 END, 0)) END AS tps "
    "FROM (SELECT *, coalesce(detail, detail_json::text)::jsonb AS d FROM requests OFFSET 0) AS r OFFSET 0")

SQLITE_MIGRATION = "; ".join((table_sql("INTEGER") + " WITHOUT ROWID", _INDEX, SPEND_PROJECT_INDEX,
                              *backfill_sql(_SQLITE_TIMINGS, "CAST(received_at / 3600 AS INTEGER)")))
PG_MIGRATION = "; ".join((table_sql("bigint") + " WITH (fillfactor = 80)", _INDEX, SPEND_PROJECT_INDEX,
                          *backfill_sql(_PG_TIMINGS, "floor(received_at / 3600)::integer")))

#: SQLite: add one row of :func:`usage_deltas` to ``usage_hourly``.
SQLITE_UPSERT_USAGE = (
    f"INSERT INTO usage_hourly ({', '.join(USAGE_KEYS + USAGE_VALUES)}) "
    f"VALUES ({', '.join('?' for _ in USAGE_KEYS + USAGE_VALUES)}) "
    f"ON CONFLICT ({', '.join(USAGE_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{v} = {v} + excluded.{v}" for v in USAGE_VALUES)
)


def pg_usage_cte(param: str) -> str:
    """PostgreSQL: a CTE upserting :func:`usage_deltas`' rows given as one JSON array in ``param``."""
    names = USAGE_KEYS + USAGE_VALUES
    fields = ", ".join(f"d->>{i} AS {n}" if i < 3 else f"(d->>{i})::bigint AS {n}" for i, n in enumerate(names))
    return (f"usage AS (INSERT INTO usage_hourly ({', '.join(names)}) "
            f"SELECT project, model, vendor, hour::integer, {', '.join(USAGE_VALUES)} FROM "
            f"(SELECT {fields} FROM jsonb_array_elements({param}::jsonb) AS d) AS x "
            f"ORDER BY {', '.join(USAGE_KEYS)} "
            f"ON CONFLICT ({', '.join(USAGE_KEYS)}) DO UPDATE SET "
            + ", ".join(f"{v} = usage_hourly.{v} + excluded.{v}" for v in USAGE_VALUES) + ")")


# ----------------------------------------------------------------- reads

Placeholder = Callable[[int], str]
#: A read: SQL with placeholders made by the store's style, and its arguments.
Read = Callable[[Placeholder], tuple[str, list[Any]]]
#: The top tables need the counters only (summing the histograms too would cost a scan's worth of columns).
_SUMS = ", ".join(f"sum({v})" for v in COUNTERS)


def series_read(project: str, since_hour: int, until_hour: int) -> Read:
    """One row per hour of ``project`` (``*``: every project): hour, then ``USAGE_VALUES``."""
    def build(ph: Placeholder) -> tuple[str, list[Any]]:
        return (f"SELECT hour, {', '.join(USAGE_VALUES)} FROM usage_hourly WHERE project = {ph(1)} "
                f"AND model = '*' AND vendor = '*' AND hour >= {ph(2)} AND hour < {ph(3)} ORDER BY hour",
                [project, since_hour, until_hour])
    return build


def models_read(project: str, since_hour: int, until_hour: int) -> Read:
    """Per model of ``project`` (``*``: every project) in the hours, every vendor's rows summed: model, then
    ``COUNTERS``. Reads every (model, vendor) row of the hours: whole UTC days are cheaper from ``dims_read``."""
    def build(ph: Placeholder) -> tuple[str, list[Any]]:
        return (f"SELECT model, {_SUMS} FROM usage_hourly WHERE project = {ph(1)} AND model <> '*' "
                f"AND hour >= {ph(2)} AND hour < {ph(3)} GROUP BY model",
                [project, since_hour, until_hour])
    return build


def projects_read(since_hour: int, until_hour: int) -> Read:
    """Per project in the hours (the per-project level, read through the partial index ``usage_projects``): project, then ``COUNTERS``."""
    def build(ph: Placeholder) -> tuple[str, list[Any]]:
        return (f"SELECT project, {_SUMS} FROM usage_hourly WHERE model = '*' AND vendor = '*' "
                f"AND hour >= {ph(1)} AND hour < {ph(2)} AND project <> '*' GROUP BY project",
                [since_hour, until_hour])
    return build


def _days(since: str, until: str) -> list[str]:
    first, last = dt.date.fromisoformat(since), dt.date.fromisoformat(until)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _day_in(ph: Placeholder, days: Sequence[str], start: int) -> str:
    """``day IN (...)``, one parameter per day (after the project's: qmark binds in text order), so one
    project's rows of ``spend_daily`` are read by one index seek per day (``SPEND_PROJECT_INDEX``)."""
    return f"day IN ({', '.join(ph(start + i) for i in range(len(days)))})"


def dims_read(group: str, since: str, until: str, project: str | None) -> Read:
    """Spend per value of ``group`` (model, key or tag) between two days: value, then ``schema.ROLLUP_VALUES``' sums."""
    column = {"model": "model", "key": "key_id", "tag": "tag"}[group]
    sums = ", ".join(f"sum({v})" for v in ROLLUP_VALUES)

    def build(ph: Placeholder) -> tuple[str, list[Any]]:
        if project is None:
            return (f"SELECT value, {sums} FROM spend_dims WHERE dim = {ph(1)} AND day >= {ph(2)} AND day <= {ph(3)} "
                    "GROUP BY value", [column, since, until])
        days = _days(since, until)
        tag = "tag <> '*'" if group == "tag" else "tag = '*'"
        return (f"SELECT {column}, {sums} FROM spend_daily WHERE project = {ph(1)} AND {_day_in(ph, days, 2)} "
                f"AND {tag} GROUP BY {column}", [project, *days])
    return build


def spend_periods_read(group: str, since: str, until: str, project: str | None) -> Read:
    """Spend per day and ``group`` value (``schema.GROUPS``'s names) between two days, from the daily rollups.

    Rows: day, value, cost, saved, requests. Every project: ``spend_dims``, a few rows per day; one project:
    its rows of ``spend_daily``."""
    column = {"model": "model", "vendor": "vendor", "project": "project", "key": "key_id", "tag": "tag"}[group]

    def build(ph: Placeholder) -> tuple[str, list[Any]]:
        sums = "sum(cost_picousd), sum(saved_picousd), sum(requests)"
        if project is None:
            return (f"SELECT day, value, {sums} FROM spend_dims WHERE dim = {ph(1)} AND day >= {ph(2)} "
                    f"AND day <= {ph(3)} GROUP BY day, value ORDER BY day", [column, since, until])
        tag = "tag <> '*'" if group == "tag" else "tag = '*'"
        days = _days(since, until)
        return (f"SELECT day, {column}, {sums} FROM spend_daily WHERE project = {ph(1)} AND {_day_in(ph, days, 2)} "
                f"AND {tag} GROUP BY day, {column} ORDER BY day", [project, *days])
    return build
