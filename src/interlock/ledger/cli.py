"""``interlock logs`` and ``interlock spend``: the request log and spend, read from the store directly.

They open the same store the gateway writes (the SQLite file in the state
directory, or ``store: postgresql://...``), so they work while the gateway is
down and need no admin key - access to the state directory or the database is
the credential.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from dataclasses import replace
from typing import Any

import orjson

from interlock.core.errors import InvalidRequest
from interlock.ledger.export import csv_lines, parse_day, parse_time
from interlock.ledger.schema import (
    DERIVED_GROUPS,
    GUARDRAIL_FILTERS,
    RESPONSE_CACHE_FILTERS,
    SPEND_GROUPS,
    LogQuery,
    SpendQuery,
    by_region,
)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def add_ledger_parsers(sub: Any) -> None:
    logs = sub.add_parser("logs", help="show the request log (newest first), or --follow it")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new records as they land")
    logs.add_argument("--project", help="only this project's requests")
    logs.add_argument("--key", help="key id")
    logs.add_argument("--model", help="only requests for this model")
    logs.add_argument("--vendor", help="only requests this vendor answered")
    logs.add_argument("--status", help="ok, error or an HTTP status code")
    logs.add_argument("--tag", help="only requests with this tag")
    logs.add_argument("--response-cache", choices=RESPONSE_CACHE_FILTERS,
                      help="what the response cache did (off: it was not on for the request)")
    logs.add_argument("--guardrail", choices=GUARDRAIL_FILTERS,
                      help="the strongest action the guardrails took (any: something was detected)")
    logs.add_argument("--since", help="ISO 8601 time or date, or epoch seconds")
    logs.add_argument("--until", help="only requests before this time: ISO 8601 time or date, or epoch seconds")
    logs.add_argument("--limit", type=_count, default=20, help="records to show (default 20; 0 = all, for exports)")
    logs.add_argument("--format", choices=("table", "jsonl", "csv"), default="table", help="output format")
    logs.add_argument("--config", default=None)
    logs.set_defaults(func=cmd_logs)

    spend = sub.add_parser("spend", help="spend from the daily rollups, grouped by day, project, key, ...")
    spend.add_argument("--group-by", choices=SPEND_GROUPS, default="day",
                       help="what to total spend by (region: by the vendors' configured regions)")
    spend.add_argument("--from", dest="since", help="first day (default: 30 days ago)")
    spend.add_argument("--to", dest="until", help="last day, inclusive (default: today)")
    spend.add_argument("--project", help="only this project")
    spend.add_argument("--key", help="only this API key (id)")
    spend.add_argument("--model", help="only this model")
    spend.add_argument("--vendor", help="only this vendor")
    spend.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    spend.add_argument("--config", default=None)
    spend.set_defaults(func=cmd_spend)


def _open(args: argparse.Namespace) -> Any:
    # Imported here: a command imports what it runs, so the CLI starts fast.
    from interlock.config import load_cli_settings
    from interlock.ledger.settings import LogSettings
    from interlock.ledger.store import SQLiteStore
    from interlock.ledger.wiring import open_log_store
    from interlock.vendors.registry import VENDOR_TABLE

    settings = args.settings = load_cli_settings(args.config, VENDOR_TABLE)
    log_settings = LogSettings.from_settings(settings)
    return open_log_store(log_settings, SQLiteStore(settings.server.state_dir / "interlock.db"))


def _time(value: str | None, flag: str) -> float | None:
    # An InvalidRequest names the flag; the CLI prints it as one line (cli.main).
    return None if value is None else parse_time(value, flag)


def _fmt_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _row(r: dict[str, Any]) -> str:
    cost = f"${r['cost_usd']:.6f}" if r.get("cost_usd") is not None else "-"
    tokens = f"{r.get('input_tokens') or 0}→{r.get('output_tokens') or 0}"
    err = f"  {r['error_type']}" if r.get("error_type") else ""
    cache = f"  response cache {r['response_cache']}" if r.get("response_cache") else ""
    return (f"{_fmt_time(r['received_at'])}  {r['id']}  {r['status']:>3}  {r.get('model') or '-'!s:<32} "
            f"{r.get('vendor') or '-'!s:<10} {tokens:>11} {cost:>11} {r.get('duration_ms') or 0:>8.1f}ms"
            f"  {r.get('project') or '-'}{err}{cache}")


def _print(rows: list[dict[str, Any]], fmt: str, header: bool) -> None:
    if fmt == "jsonl":
        for r in rows:
            sys.stdout.write(orjson.dumps(r).decode() + "\n")
    elif fmt == "csv":
        sys.stdout.write(csv_lines(rows, header).decode())
    else:
        for r in rows:
            print(_row(r))
    sys.stdout.flush()


async def _logs(args: argparse.Namespace) -> int:
    store = _open(args)
    status = args.status
    if status is not None and status not in ("ok", "error") and not (status.isdigit() and len(status) == 3):
        print("interlock: --status: expected ok, error or an HTTP status code", file=sys.stderr)
        return 2
    q = LogQuery(since=_time(args.since, "--since"), until=_time(args.until, "--until"), project=args.project,
                 key_id=args.key, model=args.model, vendor=args.vendor, status=status, tag=args.tag,
                 response_cache=args.response_cache, guardrail=args.guardrail, limit=args.limit if args.limit > 0 else 1000)
    try:
        if args.limit > 0:
            rows = await store.query(q)
            # Oldest at the top, like a log.
            _print(list(reversed(rows)), args.format, True)
            last = (rows[0]["received_at"], rows[0]["id"]) if rows else None
        else:
            # Export everything matching, oldest first, a page at a time.
            page = replace(q, ascending=True)
            last, header = None, True
            while rows := await store.query(page):
                _print(rows, args.format, header)
                header = False
                last = (rows[-1]["received_at"], rows[-1]["id"])
                page = replace(page, cursor=last)
        if not args.follow:
            return 0
        follow = replace(q, ascending=True, limit=500, cursor=last, since=q.since if last is None else None)
        if last is None and follow.since is None:
            follow = replace(follow, since=time.time())
        while True:
            rows = await store.query(follow)
            if rows:
                _print(rows, args.format, False)
                follow = replace(follow, cursor=(rows[-1]["received_at"], rows[-1]["id"]), since=None)
            else:
                await asyncio.sleep(1.0)
    finally:
        await store.close()


def cmd_logs(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_logs(args))
    except KeyboardInterrupt:
        return 0


async def _spend(args: argparse.Namespace) -> int:
    store = _open(args)
    today = dt.datetime.now(dt.UTC)
    try:
        since = parse_day(args.since, "--from") if args.since else (today - dt.timedelta(days=30)).strftime("%Y-%m-%d")
        until = parse_day(args.until, "--to") if args.until else today.strftime("%Y-%m-%d")
    except InvalidRequest as exc:
        print(f"interlock: {exc.message}", file=sys.stderr)
        return 2
    derived = DERIVED_GROUPS.get(args.group_by)
    q = SpendQuery(group_by=derived or args.group_by, since=since, until=until, project=args.project,
                   key_id=args.key, model=args.model, vendor=args.vendor)
    try:
        rows = await store.spend(q)
    finally:
        await store.close()
    if derived is not None:
        rows = by_region(rows, args.settings.vendor_regions())
    if args.format == "json":
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"spend {since} .. {until} by {args.group_by}")
    # "cache hits" and "saved USD" are the response cache's replays and what they cost when made.
    print(f"{args.group_by:<40} {'requests':>10} {'errors':>8} {'input tok':>12} {'output tok':>12} {'cost USD':>14} "
          f"{'cache hits':>10} {'saved USD':>14}")
    for r in rows:
        print(f"{r[args.group_by] or '-'!s:<40} {r['requests']:>10} {r['errors']:>8} {r['input_tokens']:>12} "
              f"{r['output_tokens']:>12} {r['cost_usd']:>14.6f} {r['cache_hits']:>10} {r['saved_usd']:>14.6f}")
    if args.group_by != "tag":
        print(f"{'total':<40} {sum(r['requests'] for r in rows):>10} {'':>8} {'':>12} {'':>12} "
              f"{sum(r['cost_usd'] for r in rows):>14.6f} {sum(r['cache_hits'] for r in rows):>10} "
              f"{sum(r['saved_usd'] for r in rows):>14.6f}")
    return 0


def cmd_spend(args: argparse.Namespace) -> int:
    return asyncio.run(_spend(args))
