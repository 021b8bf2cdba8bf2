"""``interlock mcp ...``: registered users, their credentials, access keys, servers, packs, key rotation.

The commands work on the store directly (like ``interlock projects``), with the same checks as the admin API
(``admin.put_credential``, ``admin.mint_access_key``). A secret never comes from the command line, which
other users of the machine can read in the process list: ``--api-key-env VAR`` names an environment
variable, else it is read from standard input.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from interlock.core.errors import GatewayError
from interlock.governance.store import Duplicate, open_store
from interlock.mcp.admin import mint_access_key, put_credential
from interlock.mcp.auth import Registry
from interlock.mcp.model import SpecError, check_id
from interlock.mcp.sealing import Sealer
from interlock.mcp.settings import McpSettings
from interlock.mcp.store import McpStore

Command = Callable[[McpStore, Registry, McpSettings, argparse.Namespace], Awaitable[int]]


def _show(data: Any) -> None:
    print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


async def _users(store: McpStore, registry: Registry, settings: McpSettings, args: argparse.Namespace) -> int:
    if args.action == "list":
        _show([{"id": u.id, "project": u.project, "name": u.name} for u in await store.users(args.project, "", 1000)])
        return 0
    if not args.id or not args.project:
        print(f"usage: interlock mcp users {args.action} USER_ID --project P", file=sys.stderr)
        return 2
    if args.action == "create":
        check_id(args.id, "id", "registered user")
        user = await store.add_user(args.project, args.id, args.name or "")
        print(f"registered user {user.id} in project {user.project}")
        return 0
    if not await store.delete_user(args.project, args.id):
        print(f"interlock: no registered user {args.id!r} in project {args.project!r}", file=sys.stderr)
        return 2
    print(f"deleted {args.id} (its credentials too; its access keys are revoked)")
    return 0


async def _credentials(store: McpStore, registry: Registry, settings: McpSettings, args: argparse.Namespace) -> int:
    if not args.user or not args.project:
        print(f"usage: interlock mcp credentials {args.action} USER_ID [SERVER] --project P", file=sys.stderr)
        return 2
    if await store.user(args.project, args.user) is None:
        print(f"interlock: no registered user {args.user!r} in project {args.project!r}", file=sys.stderr)
        return 2
    if args.action == "list":
        _show(await store.credentials(args.project, args.user))
        return 0
    if not args.server:
        print(f"usage: interlock mcp credentials {args.action} USER_ID SERVER --project P", file=sys.stderr)
        return 2
    if args.action == "delete":
        found = await store.delete_credential(args.project, args.user, args.server)
        print("deleted" if found else "no such credential")
        return 0 if found else 2
    if args.oauth:
        body: dict[str, Any] = {"oauth": orjson.loads(_secret(args))}
    else:
        body = {"api_key": _secret(args)}
    _show(await put_credential(store, registry, body, args.project, args.user, args.server))
    return 0


def _secret(args: argparse.Namespace) -> str:
    if args.api_key_env:
        value = os.environ.get(args.api_key_env)
        if not value:
            raise SystemExit(f"interlock: the environment variable {args.api_key_env} is not set")
        return value
    if sys.stdin.isatty():
        print("the secret (then Enter): ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip()


async def _access_keys(store: McpStore, registry: Registry, settings: McpSettings, args: argparse.Namespace) -> int:
    if args.action == "list":
        _show(await store.access_keys(args.project))
        return 0
    if args.action == "revoke":
        if not args.id or not await store.revoke(None, args.id):
            print("interlock: no such active access key", file=sys.stderr)
            return 2
        print(f"revoked {args.id}")
        return 0
    minted = await mint_access_key(store, registry, settings, None, args.pack, args.user, args.ttl)
    print(f"access key {minted['id']} for tool pack {minted['tool_pack']} and registered user "
          f"{minted['registered_user']} (shown once):\n    {minted['key']}")
    return 0


async def _servers(store: McpStore, registry: Registry, settings: McpSettings, args: argparse.Namespace) -> int:
    servers, _ = await registry.current()
    _show([s.public() for _, s in sorted(servers.items())])
    return 0


async def _packs(store: McpStore, registry: Registry, settings: McpSettings, args: argparse.Namespace) -> int:
    _, packs = await registry.current()
    _show([p.public() for _, p in sorted(packs.items()) if not args.project or p.project == args.project])
    return 0


async def _reseal(store: McpStore, registry: Registry, settings: McpSettings, args: argparse.Namespace) -> int:
    count = await store.reseal()
    print(f"resealed {count} credential(s) under key {store.sealer.current_id}")
    return 0


COMMANDS: dict[str, Command] = {"users": _users, "credentials": _credentials, "access-keys": _access_keys,
                                "servers": _servers, "packs": _packs, "reseal": _reseal}


def cmd_mcp(args: argparse.Namespace) -> int:
    # Imported here: a command imports what it runs, so the CLI starts fast.
    from interlock.config import load_cli_settings
    from interlock.governance.auth import server_secret
    from interlock.governance.settings import GovernanceSettings
    from interlock.vendors.registry import VENDOR_TABLE

    settings = load_cli_settings(args.config, VENDOR_TABLE)
    state_dir = settings.server.state_dir
    mcp = McpSettings.from_settings(settings)
    gov = open_store(GovernanceSettings.from_settings(settings).store_url, state_dir)
    store = McpStore(gov, Sealer.from_env(os.environ, state_dir), server_secret(state_dir, os.environ),
                     config_servers=mcp.servers)

    async def main() -> int:
        try:
            return await COMMANDS[args.group](store, Registry(mcp, store), mcp, args)
        finally:
            await gov.close()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        print(f"interlock: {exc.message}", file=sys.stderr)
    except SpecError as exc:
        print(f"interlock: {exc}", file=sys.stderr)
    except Duplicate:
        print("interlock: an item with this id already exists", file=sys.stderr)
    return 2


def add_mcp_parser(sub: Any) -> None:
    mcp = sub.add_parser("mcp", help="the MCP gateway: registered users, credentials, access keys, servers, packs")
    groups = mcp.add_subparsers(dest="group", required=True)
    users = groups.add_parser("users", help="create, list or delete registered users")
    users.add_argument("action", choices=("create", "list", "delete"))
    users.add_argument("id", nargs="?", help="the registered user's id (create, delete)")
    users.add_argument("--project", help="the project the user belongs to")
    users.add_argument("--name", help="the user's display name")
    creds = groups.add_parser("credentials", help="set, list or delete a registered user's upstream credentials")
    creds.add_argument("action", choices=("set", "list", "delete"))
    creds.add_argument("user", help="the registered user's id")
    creds.add_argument("server", nargs="?", help="the upstream MCP server (set, delete)")
    creds.add_argument("--project", help="the user's project")
    creds.add_argument("--api-key-env", help="the environment variable holding the secret (else: stdin)")
    creds.add_argument("--oauth", action="store_true",
                       help='the secret is OAuth tokens as JSON: {"access_token", "refresh_token", "expires_in"}')
    keys = groups.add_parser("access-keys", help="mint, list or revoke access keys for one (pack, user)")
    keys.add_argument("action", choices=("create", "list", "revoke"))
    keys.add_argument("id", nargs="?", help="with revoke: the access key's id (mak_...)")
    keys.add_argument("--pack", help="the tool pack the key opens")
    keys.add_argument("--user", help="the registered user the key acts as")
    keys.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    keys.add_argument("--project", help="the project of the pack and user")
    servers = groups.add_parser("servers", help="list MCP servers (config and admin API)")
    packs = groups.add_parser("packs", help="list tool packs")
    packs.add_argument("--project", help="only this project's tool packs")
    reseal = groups.add_parser("reseal", help="re-encrypt every credential under INTERLOCK_ENCRYPTION_KEY "
                                              "(after a rotation)")
    for parser in (users, creds, keys, servers, packs, reseal):
        parser.add_argument("--config", default=None)
    mcp.set_defaults(func=cmd_mcp, project=None)
