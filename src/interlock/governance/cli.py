"""``interlock projects`` and ``interlock keys``: manage governance definitions from the shell.

The CLI writes to the same store the gateway reads (the state directory's
SQLite file, or ``store: postgresql://...``); running gateways pick changes up
within their poll interval, so no restart and no running gateway is needed.
A new key is printed once and never again.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from interlock.governance import ops
from interlock.governance.auth import SecretMismatch, check_secret
from interlock.governance.model import DefinitionError, parse_budget_spec, parse_duration, usd_str
from interlock.governance.settings import GovernanceSettings
from interlock.governance.store import Duplicate, GovStore, open_store
from interlock.guardrails.settings import GuardrailConfig, effective, settable
from interlock.state.redis import redis_settings

Command = Callable[[GovStore, bytes, GuardrailConfig], Awaitable[int]]


def _open(args: argparse.Namespace) -> tuple[GovStore, bytes, int, bool, GuardrailConfig]:
    # Imported here: a command imports what it runs, so the CLI starts fast.
    from interlock.config import load_cli_settings
    from interlock.governance.auth import server_secret
    from interlock.vendors.registry import VENDOR_TABLE

    settings = load_cli_settings(args.config, VENDOR_TABLE)
    state_dir = settings.server.state_dir
    store = open_store(settings.store_url, state_dir)
    gov = GovernanceSettings.from_settings(settings)
    if gov.redis_url is not None:
        # Running gateways on the same Redis take the change at once (as from a replica's admin API).
        import redis.asyncio as aioredis

        from interlock.governance.propagate import Propagation

        url = gov.redis_url

        async def announce() -> None:  # a connection per change: the CLI makes one or two
            client = aioredis.Redis.from_url(url)
            try:
                await Propagation(client, gov.redis_prefix + "definitions", store.version, 0.0).announce()
            finally:
                await client.aclose()

        store.on_change = announce
    # The floor a project's --guardrails may only tighten (validated as the gateway validates it).
    guardrails = GuardrailConfig.from_settings(settings)
    args.region_table = settings.regions  # --regions is checked against the config's region table
    return (store, server_secret(state_dir, os.environ), settings.server.workers, redis_settings(settings) is not None,
            guardrails)


def _run(args: argparse.Namespace, fn: Command) -> int:
    store, secret, workers, redis, guardrails = _open(args)
    if getattr(args, "limits_or_budgets", False) and workers > 1 and not redis:
        print(f"interlock: the config runs {workers} workers without redis:; budgets and limits need Redis to be "
              "counted exactly across workers", file=sys.stderr)
        return 2

    async def main() -> int:
        try:
            # A key made under another secret than the gateways' would be refused by all of them.
            await check_secret(store, secret, "of this config")
            return await fn(store, secret, guardrails)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except DefinitionError as exc:
        head, _, rest = exc.field.partition(".")
        where = f"--{head.replace('_', '-')}" + (f": {rest}" if head == "guardrails" and rest else "")
        print(f"interlock: {where}: {exc.message}", file=sys.stderr)
    except ops.Missing as exc:
        print(f"interlock: {exc.message}", file=sys.stderr)
    except Duplicate:
        print("interlock: an item with this id already exists", file=sys.stderr)
    except SecretMismatch as exc:
        print(f"interlock: {exc}", file=sys.stderr)
    return 2


def _budget(spec: str | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    micro, period, mode = parse_budget_spec(spec)
    return {"amount_usd": usd_str(micro), "period": period, "mode": mode}


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _guardrails(text: str) -> Any:
    """``--guardrails '{"pii": {"action": "block"}}'`` (``''`` or ``null`` clears the project's setting)."""
    if not text.strip():
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DefinitionError("guardrails", f"not valid JSON ({exc}); e.g. '{{\"pii\": {{\"action\": \"block\"}}}}'"
                              ) from None


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M")


def cmd_projects(args: argparse.Namespace) -> int:
    args.limits_or_budgets = args.action == "create" and args.budget is not None

    async def run(store: GovStore, _: bytes, guardrails: GuardrailConfig) -> int:
        if args.action in ("show", "update"):
            return await _show_or_update(store, guardrails, args)
        if args.action == "list":
            defs = await store.load()
            print(f"{'ID':<24} {'NAME':<24} {'LOG':<9} KEYS  BUDGETS")
            for p in sorted(defs.projects.values(), key=lambda p: p.id):
                keys = sum(1 for k in defs.keys.values() if k.project == p.id and k.revoked_at is None)
                budgets = ", ".join(f"{usd_str(b.amount_micro)}/{b.period} {b.mode}"
                                    for b in defs.budgets_on.get(("project", p.id), ()))
                level = "zdr" if p.zero_data_retention else p.log_level or "-"
                print(f"{p.id:<24} {p.name[:24]:<24} {level:<9} {keys:<5} {budgets or '-'}")
            return 0
        if not args.id:
            print("usage: interlock projects create ID [--budget 100/month]", file=sys.stderr)
            return 2
        body: dict[str, Any] = {"id": args.id, "name": args.name or args.id}
        if args.log_level:
            body["log_level"] = args.log_level
        if args.zero_data_retention:
            body["zero_data_retention"] = True
        if args.models:
            body["allowed_models"] = _names(args.models)
        if args.vendors:
            body["allowed_vendors"] = _names(args.vendors)
        if args.guardrails is not None:
            body["guardrails"] = _guardrails(args.guardrails)
        if args.regions:
            body["regions"] = _names(args.regions)
        budget = _budget(args.budget)
        project = await ops.create_project(store, body, guardrails=guardrails, regions=args.region_table)
        print(f"project {project.id} created")
        if budget is not None:
            b = await ops.create_budget(store, {"scope": "project", "subject": project.id, **budget})
            print(f"budget {b.id}: {usd_str(b.amount_micro)} USD {b.period}, {b.mode}")
        return 0

    return _run(args, run)


async def _show_or_update(store: GovStore, guardrails: GuardrailConfig, args: argparse.Namespace) -> int:
    """``projects show ID``: the project as JSON with what guardrails apply; ``projects update ID``: change it."""
    if not args.id:
        print(f"usage: interlock projects {args.action} ID", file=sys.stderr)
        return 2
    project = (await store.load()).projects.get(args.id)
    if project is None:
        raise ops.Missing("project", args.id)
    if args.action == "update":
        body: dict[str, Any] = {}
        for name, value in (("name", args.name), ("log_level", args.log_level)):
            if value is not None:
                body[name] = value
        if args.zero_data_retention:
            body["zero_data_retention"] = True
        if args.models is not None:
            body["allowed_models"] = _names(args.models)
        if args.vendors is not None:
            body["allowed_vendors"] = _names(args.vendors)
        if args.guardrails is not None:
            body["guardrails"] = _guardrails(args.guardrails)
        if args.regions is not None:
            body["regions"] = _names(args.regions)
        if not body:
            print("interlock: nothing to update: give --guardrails, --name, --log-level, --models, --vendors, "
                  "--regions or --zero-data-retention", file=sys.stderr)
            return 2
        project = await ops.update_project(store, project, body, guardrails=guardrails, regions=args.region_table)
    data = project.to_json()
    data["effective_guardrails"] = settable(effective(guardrails.floor,
                                                      guardrails.override_for(project.id, project.guardrails)))
    print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    args.limits_or_budgets = args.action == "create" and any(
        v is not None for v in (args.budget, args.rpm, args.tpm, args.concurrent, args.tool_calls))

    async def run(store: GovStore, secret: bytes, _config: GuardrailConfig) -> int:
        if args.action == "list":
            defs = await store.load()
            print(f"{'ID':<22} {'PROJECT':<20} {'PREFIX':<14} {'NAME':<16} {'EXPIRES':<17} STATUS")
            for k in sorted(defs.keys.values(), key=lambda k: k.created_at):
                if args.project and k.project != args.project:
                    continue
                state = "revoked" if k.revoked_at else ("rotated" if k.replaced_by else "active")
                print(f"{k.id:<22} {k.project:<20} {k.prefix + '…':<14} {k.name[:16]:<16} "
                      f"{_when(k.expires_at):<17} {state}")
            return 0
        if args.action == "create":
            if not args.project:
                print("usage: interlock keys create --project P [--budget 10/month] [--rpm 60]", file=sys.stderr)
                return 2
            body: dict[str, Any] = {"project": args.project}
            if args.name:
                body["name"] = args.name
            if args.models:
                body["allowed_models"] = _names(args.models)
            if args.expires:
                body["expires_in"] = args.expires
            if args.regions:
                body["regions"] = _names(args.regions)
            if args.budget:
                body["budget"] = _budget(args.budget)
            limits = {n: v for n, v in (("rpm", args.rpm), ("tpm", args.tpm), ("concurrent", args.concurrent),
                                        ("tool_calls_per_minute", args.tool_calls)) if v is not None}
            if limits:
                body["limits"] = limits
            key, plaintext, _ = await ops.create_key(store, secret, body, regions=args.region_table)
            print(f"key {key.id} for project {key.project} (shown once; store it now):\n    {plaintext}")
            return 0
        if not args.id:
            print(f"usage: interlock keys {args.action} KEY_ID", file=sys.stderr)
            return 2
        found = (await store.load()).keys.get(args.id)
        if found is None:
            raise ops.Missing("key", args.id)
        key = found
        if args.action == "revoke":
            await store.revoke_key(key.id, time.time())
            print(f"key {key.id} revoked (running gateways refuse it within a second)")
            return 0
        new, plaintext = await ops.rotate_key(store, secret, key, parse_duration(args.overlap, "overlap")
                                              if args.overlap not in ("0", "0s") else 0.0)
        print(f"key {new.id} replaces {key.id} (which stays valid for {args.overlap}); shown once:\n    {plaintext}")
        return 0

    return _run(args, run)


def add_governance_parsers(sub: Any) -> None:
    projects = sub.add_parser("projects", help="create, list, show or update projects")
    projects.add_argument("action", choices=("create", "list", "show", "update"))
    projects.add_argument("id", nargs="?", help="with create, show, update: the project id (a-z, 0-9, '_', '.', '-')")
    projects.add_argument("--name", help="the project's display name")
    projects.add_argument("--budget", help="e.g. 100/month, 5/day:soft, 1000 (lifetime)")
    projects.add_argument("--log-level", choices=("off", "metadata", "full"),
                          help="what the request log keeps of this project's requests")
    projects.add_argument("--zero-data-retention", action="store_true",
                          help="keep none of this project's content: no prompts or answers in any log or store")
    projects.add_argument("--models", help="allowed models, comma-separated (openai/* allowed)")
    projects.add_argument("--vendors", help="allowed vendors, comma-separated")
    projects.add_argument("--guardrails", help="the project's guardrails as JSON, only tightening the config's "
                                               "floor, e.g. '{\"pii\": {\"action\": \"block\"}}' ('' clears)")
    projects.add_argument("--regions", help="data residency: jurisdictions or regions its requests may run in, "
                                            "comma-separated, e.g. eu ('' clears)")
    projects.add_argument("--config", default=None)
    projects.set_defaults(func=cmd_projects)

    keys = sub.add_parser("keys", help="create, list, revoke or rotate API keys")
    keys.add_argument("action", choices=("create", "list", "revoke", "rotate"))
    keys.add_argument("id", nargs="?", help="with revoke/rotate: the key id (key_...)")
    keys.add_argument("--project", help="the project the key belongs to")
    keys.add_argument("--name", help="a name for the key")
    keys.add_argument("--budget", help="e.g. 10/month, 1/day:soft")
    keys.add_argument("--rpm", type=int, help="requests per minute this key may make")
    keys.add_argument("--tpm", type=int, help="tokens per minute this key may use")
    keys.add_argument("--concurrent", type=int, help="requests this key may have in flight at once")
    keys.add_argument("--tool-calls", type=int, dest="tool_calls", help="MCP tool calls per minute")
    keys.add_argument("--expires", help="e.g. 30d, 12h")
    keys.add_argument("--models", help="allowed models, comma-separated")
    keys.add_argument("--regions", help="data residency narrower than the project's, comma-separated, e.g. eu")
    keys.add_argument("--overlap", default="1h", help="with rotate: how long the old key keeps working (1h)")
    keys.add_argument("--config", default=None)
    keys.set_defaults(func=cmd_keys)
