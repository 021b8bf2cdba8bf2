"""What both stores share: spend rollups and the log/spend query language.

SQLite and PostgreSQL hold the same tables (``requests``, ``spend_daily`` and
``spend_dims``), so the filters and their SQL are built once here with a
placeholder style per backend. Rollups are summed per batch in the gateway
(:func:`rollup_deltas`, one dict update per record) from the rows the store
actually inserted, and upserted in the transaction that inserts them, which
keeps replays (after a store outage) from counting spend twice.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from interlock.core.cache import BYPASS, HIT, MISS
from interlock.ledger.record import GUARDRAIL_ACTIONS, GUARDRAIL_COLUMN
from interlock.ledger.rowcodec import (
    R_CACHE_READ,
    R_CACHE_SAVED,
    R_COST,
    R_INPUT,
    R_KEY,
    R_MODEL,
    R_OUTPUT,
    R_PROJECT,
    R_RECEIVED,
    R_RESPONSE_CACHE,
    R_STATUS,
    R_TAGS,
    R_VENDOR,
    READ_COLUMNS,
    Row,
)

#: Rollup rows with this tag count every request once; rows with a real tag count requests carrying it.
ALL_TAGS = "*"
ROLLUP_KEYS = ("day", "project", "key_id", "model", "vendor", "tag")
#: ``saved_picousd`` and ``cache_hits`` (ledger schema v6 SQLite / v7 PostgreSQL) are the response cache's:
#: what the answers it replayed cost when they were made, and how many it replayed (not the vendor's prompt
#: cache, which is ``cache_read_tokens``). New values go last: old migrations create the first ones only.
ROLLUP_VALUES = ("requests", "errors", "input_tokens", "cache_read_tokens", "output_tokens", "cost_picousd",
                 "saved_picousd", "cache_hits")
#: The log's ``response_cache`` filter: what the response cache did, or "off" (it was not on).
RESPONSE_CACHE_FILTERS = (HIT, MISS, BYPASS, "off")
#: The log's ``guardrail`` filter: the strongest action the guardrails took, or "any" detection.
GUARDRAIL_FILTERS = ("any", *reversed(GUARDRAIL_ACTIONS))
#: At most this many keys' last use in one ``last_used`` read (one indexed MAX each).
MAX_KEYS = 500
GROUPS = {"day": "day", "project": "project", "key": "key_id", "model": "model", "vendor": "vendor", "tag": "tag"}


def day_of(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d")


_DAYS: dict[int, str] = {}


def _day(number: int) -> str:
    day = _DAYS.get(number)
    if day is None:
        if len(_DAYS) > 4096:
            _DAYS.clear()
        day = _DAYS[number] = day_of(number * 86400.0)
    return day


def rollup_deltas(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    """Per (day, project, key, model, vendor, tag) sums of a batch of rows, ready to upsert.

    Both stores' rollups (PostgreSQL upserts them with :func:`pg_rollup_sql`). One dict update per row;
    dates, empty-string keys and tags are dealt with once per group.
    """
    acc: dict[tuple[Any, ...], list[Any]] = {}
    get = acc.get
    for r in rows:
        key = (r[R_RECEIVED] // 86400.0, r[R_PROJECT], r[R_KEY], r[R_MODEL], r[R_VENDOR], r[R_TAGS])
        v = get(key)
        if v is None:
            hit = r[R_RESPONSE_CACHE] == HIT
            acc[key] = [1, int(r[R_STATUS] >= 400), r[R_INPUT] or 0, r[R_CACHE_READ] or 0, r[R_OUTPUT] or 0,
                        r[R_COST] or 0, (r[R_CACHE_SAVED] or 0) if hit else 0, int(hit)]
        else:
            v[0] += 1
            if r[R_STATUS] >= 400:
                v[1] += 1
            v[2] += r[R_INPUT] or 0
            v[3] += r[R_CACHE_READ] or 0
            v[4] += r[R_OUTPUT] or 0
            v[5] += r[R_COST] or 0
            if r[R_RESPONSE_CACHE] == HIT:  # "" (absent) when the cache was not on: saved is "" too
                v[6] += r[R_CACHE_SAVED] or 0
                v[7] += 1
    out: dict[tuple[str, ...], list[int]] = {}
    for (number, project, key_id, model, vendor, tags), values in acc.items():
        base = (_day(int(number)), project or "", key_id or "", model or "", vendor or "")
        tag_list = orjson.loads(tags) if tags else ()
        for tag in (ALL_TAGS, *(tag_list if isinstance(tag_list, list) else ())):
            k = (*base, str(tag))
            row = out.get(k)
            if row is None:
                out[k] = list(values)
            else:
                for i, value in enumerate(values):
                    row[i] += value
    # Sorted: the order rollup rows are locked in is the same for every writer.
    return [(*k, *v) for k, v in sorted(out.items())]


#: Second rollup level: per (day, dimension, value), so a month by day - overall, or for one
#: project / key / model / vendor / tag - reads ~30 rows per value, whatever the traffic.
DIMS = ("project", "key_id", "model", "vendor")
DIM_KEYS = ("day", "dim", "value")


def dim_deltas(rollups: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Fold rollup deltas (from :func:`rollup_deltas`) into per-dimension day totals."""
    acc: dict[tuple[str, str, str], list[int]] = {}
    n = len(ROLLUP_KEYS)
    for row in rollups:
        day, project, key_id, model, vendor, tag = row[:n]
        values = row[n:]
        keys = ([(day, ALL_TAGS, ALL_TAGS), (day, "project", project), (day, "key_id", key_id),
                 (day, "model", model), (day, "vendor", vendor)] if tag == ALL_TAGS else [(day, "tag", tag)])
        for key in keys:
            target = acc.get(key)
            if target is None:
                acc[key] = list(values)
            else:
                for i, v in enumerate(values):
                    target[i] += v
    return [(*k, *v) for k, v in sorted(acc.items())]


# ----------------------------------------------------------------- rollups in SQL


def sqlite_upsert(table: str, keys: tuple[str, ...], values: tuple[str, ...] = ROLLUP_VALUES) -> str:
    """SQLite: add one row of keys then values to ``table`` (``values``: the migrations' older layouts)."""
    return (f"INSERT INTO {table} ({', '.join(keys + values)}) VALUES ({', '.join('?' for _ in keys + values)}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET " + ", ".join(f"{v} = {v} + excluded.{v}" for v in values))


#: SQLite: add one row of :func:`rollup_deltas` (or :func:`dim_deltas`) to ``spend_daily`` (``spend_dims``).
SQLITE_UPSERT_ROLLUP = sqlite_upsert("spend_daily", ROLLUP_KEYS)
SQLITE_UPSERT_DIMS = sqlite_upsert("spend_dims", DIM_KEYS)

_DIM_PROJECTIONS = (("'*'", "'*'", "tag = '*'"), ("'project'", "project", "tag = '*'"),
                    ("'key_id'", "key_id", "tag = '*'"), ("'model'", "model", "tag = '*'"),
                    ("'vendor'", "vendor", "tag = '*'"), ("'tag'", "tag", "tag <> '*'"))
_VALUES = ", ".join(ROLLUP_VALUES)


def _upsert(table: str, keys: tuple[str, ...], select: str) -> str:
    return (f"INSERT INTO {table} ({', '.join(keys + ROLLUP_VALUES)}) {select} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
            + ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in ROLLUP_VALUES))


def _dims_select(source: str) -> str:
    """spend_dims rows from a table of spend_daily-shaped deltas (one pass per dimension over a few rows)."""
    parts = [f"SELECT day, {dim} AS dim, {value} AS value, {', '.join(ROLLUP_VALUES)} FROM {source} WHERE {cond}"
             for dim, value, cond in _DIM_PROJECTIONS]
    sums = ", ".join(f"sum({v})" for v in ROLLUP_VALUES)
    return (f"SELECT day, dim, value, {sums} FROM ({' UNION ALL '.join(parts)}) AS x "
            "GROUP BY day, dim, value ORDER BY day, dim, value")


def pg_rollup_sql(extra: Sequence[str] = ()) -> str:
    """PostgreSQL: upsert a batch's rollup deltas into ``spend_daily`` and ``spend_dims``, in one statement.

    ``extra`` are more CTEs to run in the same statement (``routes.pg_routes_cte``, with its own parameter).

    ``$1`` is :func:`rollup_deltas`' rows as one JSON array of arrays (``ROLLUP_KEYS``, then
    ``ROLLUP_VALUES``): orjson encodes a batch of many groups in microseconds, where asyncpg's array
    parameters cost microseconds per element. Rows are upserted sorted by key, so concurrent writers lock
    them in the same order and cannot deadlock.
    """
    names = ROLLUP_KEYS + ROLLUP_VALUES
    fields = ", ".join(f"d->>{i} AS {name}" if i < len(ROLLUP_KEYS) else f"(d->>{i})::bigint AS {name}"
                       for i, name in enumerate(names))
    keys = ", ".join(ROLLUP_KEYS)
    return f"""
WITH delta AS (
    SELECT {fields} FROM jsonb_array_elements($1::jsonb) AS d
), daily AS (
    {_upsert("spend_daily", ROLLUP_KEYS, f"SELECT {keys}, {_VALUES} FROM delta ORDER BY {keys}")}
), dims AS (
    {_upsert("spend_dims", DIM_KEYS, _dims_select("delta"))}
){''.join(f", {cte}" for cte in extra)}
SELECT 1"""


# ----------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class LogQuery:
    since: float | None = None
    until: float | None = None
    project: str | None = None
    key_id: str | None = None
    model: str | None = None
    vendor: str | None = None
    #: "ok", "error" or an HTTP status as text.
    status: str | None = None
    tag: str | None = None
    min_cost_picousd: int | None = None
    max_cost_picousd: int | None = None
    #: What the response cache did: hit, miss, bypass, or "off" (it was not on for the request).
    response_cache: str | None = None
    #: The strongest guardrail action (``record.GUARDRAIL_ACTIONS``), or "any" (something was detected).
    guardrail: str | None = None
    text: str | None = None
    limit: int = 50
    cursor: tuple[float, str] | None = None
    #: Oldest first (``--follow`` reads forward from a point); newest first otherwise.
    ascending: bool = False


@dataclass(frozen=True, slots=True)
class SpendQuery:
    group_by: str = "day"
    since: str | None = None  # YYYY-MM-DD, inclusive
    until: str | None = None  # YYYY-MM-DD, inclusive
    project: str | None = None
    key_id: str | None = None
    model: str | None = None
    vendor: str | None = None


def encode_cursor(received_at: float, rid: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([received_at, rid])).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, str]:
    """Raises ValueError on anything that is not a cursor this gateway produced."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        at, rid = orjson.loads(raw)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ValueError("not a cursor returned by this endpoint") from None
    if not isinstance(at, int | float) or not isinstance(rid, str):
        raise ValueError("not a cursor returned by this endpoint")
    return float(at), rid


Placeholder = Callable[[int], str]

#: PostgreSQL's select list: since its migration 3 ``detail`` is text, and the json ``detail`` of rows
#: written before is ``detail_json`` (``pgstore.MIGRATIONS``); a row has one or the other.
PG_READ_COLUMNS: tuple[str, ...] = (*READ_COLUMNS[:-1], "coalesce(detail, detail_json::text)")


def qmark(_: int) -> str:
    return "?"


def dollar(i: int) -> str:
    return f"${i}"


def log_sql(q: LogQuery, ph: Placeholder, *, postgres: bool) -> tuple[str, list[Any]]:
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return ph(len(args))

    if q.since is not None:
        where.append(f"received_at >= {arg(q.since)}")
    if q.until is not None:
        where.append(f"received_at < {arg(q.until)}")
    for column, value in (("project", q.project), ("key_id", q.key_id), ("vendor", q.vendor)):
        if value is not None:
            where.append(f"{column} = {arg(value)}")
    if q.model is not None:
        where.append(f"(model = {arg(q.model)} OR requested_model = {arg(q.model)})")
    if q.status == "error":
        where.append("status >= 400")
    elif q.status == "ok":
        where.append("status < 400")
    elif q.status is not None:
        where.append(f"status = {arg(int(q.status))}")
    if q.tag is not None:
        if postgres:
            where.append(f"tags ? {arg(q.tag)}")
        else:
            where.append(f"tags LIKE {arg('%' + _like_escape(orjson.dumps(q.tag).decode()) + '%')} ESCAPE '\\'")
    if q.min_cost_picousd is not None:
        where.append(f"cost_picousd >= {arg(q.min_cost_picousd)}")
    if q.max_cost_picousd is not None:
        where.append(f"cost_picousd <= {arg(q.max_cost_picousd)}")
    if q.response_cache == "off":
        where.append("response_cache IS NULL")
    elif q.response_cache is not None:
        where.append(f"response_cache = {arg(q.response_cache)}")
    if q.guardrail == "any":
        where.append(f"{GUARDRAIL_COLUMN} IS NOT NULL")
    elif q.guardrail is not None:
        where.append(f"{GUARDRAIL_COLUMN} = {arg(q.guardrail)}")
    if q.text is not None:
        pattern = "%" + _like_escape(q.text) + "%"
        cast, like = ("::text", "ILIKE") if postgres else ("", "LIKE")
        where.append(f"(request_content{cast} {like} {arg(pattern)} ESCAPE '\\' "
                     f"OR response_content{cast} {like} {arg(pattern)} ESCAPE '\\')")
    if q.cursor is not None:
        at, rid = q.cursor
        op = ">" if q.ascending else "<"
        where.append(f"(received_at, id) {op} ({arg(at)}, {arg(rid)})")
    order = "ASC" if q.ascending else "DESC"
    sql = f"SELECT {', '.join(PG_READ_COLUMNS if postgres else READ_COLUMNS)} FROM requests"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY received_at {order}, id {order} LIMIT {arg(q.limit)}"
    return sql, args


def spend_sql(q: SpendQuery, ph: Placeholder, *, postgres: bool) -> tuple[str, list[Any]]:
    column = GROUPS[q.group_by]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return ph(len(args))

    total = "SUM" if postgres else "TOTAL"
    sums = ", ".join(f"{total}({v}) AS {v}" for v in ROLLUP_VALUES)
    filters = [(c, v) for c, v in (("project", q.project), ("key_id", q.key_id), ("model", q.model),
                                   ("vendor", q.vendor)) if v is not None]
    if not filters or (len(filters) == 1 and q.group_by == "day"):
        # The small per-dimension table answers: no scan of the full rollup.
        where = []
        if filters:
            where += [f"dim = {arg(filters[0][0])}", f"value = {arg(filters[0][1])}"]
        elif q.group_by == "day":
            where.append("dim = '*'")
        else:
            where.append(f"dim = {arg(column)}")
        if q.since is not None:
            where.append(f"day >= {arg(q.since)}")
        if q.until is not None:
            where.append(f"day <= {arg(q.until)}")
        grp = "day" if q.group_by == "day" else "value"
        return (f"SELECT {grp} AS grp, {sums} FROM spend_dims WHERE {' AND '.join(where)} "
                f"GROUP BY {grp} ORDER BY {grp}"), args
    where = ["tag <> '*'" if q.group_by == "tag" else "tag = '*'"]
    if q.since is not None:
        where.append(f"day >= {arg(q.since)}")
    if q.until is not None:
        where.append(f"day <= {arg(q.until)}")
    for col, value in filters:
        where.append(f"{col} = {arg(value)}")
    sql = (f"SELECT {column} AS grp, {sums} FROM spend_daily WHERE {' AND '.join(where)} "
           f"GROUP BY {column} ORDER BY {column}")
    return sql, args


#: Spend groups computed from another: ``region`` totals the ``vendor`` rows by each vendor instance's regions.
DERIVED_GROUPS = {"region": "vendor"}
SPEND_GROUPS = (*GROUPS, *DERIVED_GROUPS)


def by_region(vendor_rows: Iterable[dict[str, Any]], regions: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Vendor spend rows totalled per region, by the vendors' regions as configured now (a vendor no longer
    configured, or with no declared region, totals under ``region: null``)."""
    out: dict[str | None, dict[str, Any]] = {}
    for row in vendor_rows:
        where = ", ".join(regions.get(row["vendor"] or "", ())) or None
        item = out.setdefault(where, {"region": where, **{name: 0 for name in ROLLUP_VALUES}})
        for name in ROLLUP_VALUES:
            item[name] += row[name]
    for item in out.values():
        item["cost_usd"] = item["cost_picousd"] / 1e12
        item["saved_usd"] = item["saved_picousd"] / 1e12
    return sorted(out.values(), key=lambda r: -r["cost_picousd"])


def spend_rows(group_by: str, rows: Iterable[Iterable[Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        grp, *values = list(row)
        item: dict[str, Any] = {group_by: grp if grp != "" else None}
        for name, value in zip(ROLLUP_VALUES, values, strict=True):
            item[name] = int(value or 0)
        item["cost_usd"] = item["cost_picousd"] / 1e12
        item["saved_usd"] = item["saved_picousd"] / 1e12
        out.append(item)
    return out


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


DIMS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS spend_dims (
    day TEXT NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL,
    {values},
    PRIMARY KEY (day, dim, value)
)"""


def dims_backfill_sql(values: tuple[str, ...]) -> tuple[str, ...]:
    """Fills spend_dims' ``values`` from spend_daily (a migration on a log that already has rollups)."""
    return tuple(
        f"INSERT INTO spend_dims (day, dim, value, {', '.join(values)}) "
        f"SELECT day, {dim_sql}, {value_sql}, {', '.join(f'SUM({v})' for v in values)} FROM spend_daily "
        f"WHERE {cond} GROUP BY day" + ("" if value_sql.startswith("'") else f", {value_sql}")
        for dim_sql, value_sql, cond in _DIM_PROJECTIONS)
