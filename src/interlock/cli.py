"""The ``interlock`` command: serve, models, simulate, simulator, admin-key."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from interlock import __version__
from interlock.config import ConfigError, Settings, load_cli_settings
from interlock.core.errors import GatewayError
from interlock.governance.cli import add_governance_parsers
from interlock.ledger.cli import add_ledger_parsers
from interlock.mcp.cli import add_mcp_parser
from interlock.simulator.cli import add_simulate_parser, add_simulator_parser
from interlock.state.migrations import MigrationError

if TYPE_CHECKING:  # the catalog loads only for the commands that use it: `interlock --help` stays fast
    from interlock.catalog import Catalog


def banner(settings: Settings, master_key: object, catalog: Catalog | None = None) -> str:
    # Imported here: only when serve prints its banner.
    from interlock.governance.auth import MasterKey
    from interlock.governance.settings import GovernanceSettings
    from interlock.governance.unpriced import unpriced_routes

    assert isinstance(master_key, MasterKey)
    srv = settings.server
    live = settings.live_vendors()
    lines = [
        f"interlock {__version__} — http://{srv.host}:{srv.port}/v1  ({srv.workers} worker{'s' if srv.workers > 1 else ''})",
        f"  config:  {settings.source or 'none (embedded default)'}",
        f"  state:   {srv.state_dir.resolve()} (SQLite)"
        + ("; request log in PostgreSQL" if settings.store_url else ""),
        "  vendors: " + (", ".join(v.id for v in live) or "none live"),
    ]
    if settings.simulator_enabled:
        lines.append("           the simulator answers for every catalog model no live vendor serves (offline, no key)")
    if catalog is not None:
        routes, vendors = unpriced_routes(catalog, [v.id for v in live])
        if routes or vendors:
            allow = GovernanceSettings.from_settings(settings).allow_unpriced
            lines.append("  unpriced routes (cost unknown, recorded as 0; " + (
                "governance.unpriced: allow admits them under hard budgets):" if allow else
                "refused under a hard budget unless the config prices them):"))
            lines += [f"      {r}" for r in routes]
            if vendors:
                lines.append(f"      any model not in the catalog, passed through by name on: {', '.join(vendors)}")
    if master_key.generated:
        lines += [
            "  admin key (shown once; store it now):",
            f"      {master_key.generated}",
        ]
    else:
        lines.append(f"  admin key: {master_key.prefix}… (from {master_key.source})")
    lines += [
        "  authenticate with: Authorization: Bearer <admin key>",
        f"  try: OPENAI_BASE_URL=http://{srv.host}:{srv.port}/v1 OPENAI_API_KEY=<admin key> python -c "
        "\"import openai; print(openai.OpenAI().chat.completions.create(model='openai/gpt-4.1-mini', "
        "messages=[{'role':'user','content':'hi'}]).choices[0].message.content)\"",
    ]
    return "\n".join(lines)


def cmd_serve(args: argparse.Namespace) -> int:
    # Imported here: a command imports what it runs, so the CLI starts fast.
    from interlock.app import build_catalog, prepare_state, validate
    from interlock.vendors.registry import VENDOR_TABLE

    settings = load_cli_settings(args.config, VENDOR_TABLE, host=args.host, port=args.port, workers=args.workers,
                                 engine=args.engine)
    validate(settings)
    state = prepare_state(settings)
    state.store.close()
    catalog = build_catalog(settings)
    print(banner(settings, state.master, catalog), flush=True)
    try:
        for line in residency_findings(settings, catalog):
            print(f"warning: {line}", file=sys.stderr, flush=True)
    except (OSError, sqlite3.Error, MigrationError) as exc:  # the store may be down: the gateway starts, unready
        print(f"warning: data residency was not checked at start-up: {error_line(exc)}", file=sys.stderr, flush=True)
    if settings.source:
        os.environ["INTERLOCK_CONFIG"] = str(Path(settings.source).resolve())
    else:
        os.environ.pop("INTERLOCK_CONFIG", None)
    os.environ.setdefault("INTERLOCK_HOME", str(settings.server.state_dir.resolve()))
    # Workers read the file again: the worker count (--workers wins over the file) goes with the environment.
    os.environ["INTERLOCK_WORKERS"] = str(settings.server.workers)
    srv = settings.server
    if srv.engine == "granian":
        return _serve_granian(settings)
    # Imported here: only the engine that serves is imported.
    from interlock.server.runner import serve

    def load_app() -> object:
        # Imported here: run in the worker that builds the app.
        from interlock.app import gateway_from_env

        return gateway_from_env()

    return serve(srv.host, srv.port, srv.workers, load_app, head_timeout=srv.head_timeout,
                 keepalive_timeout=srv.keepalive_timeout, body_timeout=srv.body_timeout,
                 max_body_bytes=srv.max_body_bytes, drain=srv.drain_s, grace=srv.grace_s)


def _serve_granian(settings: Settings) -> int:
    # Imported here: only the engine that serves is imported.
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings

    from interlock.server.refusals import MAX_HEAD  # imported with the engine it configures

    srv = settings.server
    # The limits Granian can enforce, as the native server does: the head's read timeout (Granian allows
    # 1 ms to 60 s) and its size (hyper's read buffer: a head that does not fit is refused). The body's gap
    # timeout is enforced by the app under Granian (entry.py); keep-alive idle is not configurable.
    http1 = HTTP1Settings(header_read_timeout=min(60_000, max(1, round(srv.head_timeout * 1000))),
                          max_buffer_size=MAX_HEAD)
    server = Granian(
        "interlock.entry:app",
        address=settings.server.host,
        port=settings.server.port,
        interface=Interfaces.RSGI,
        workers=settings.server.workers,
        loop=Loops.uvloop,
        log_access=False,
        backlog=2048,
        workers_kill_timeout=10,
        http1_settings=http1,
    )
    server.serve()
    return 0


def residency_findings(settings: Settings, catalog: Catalog) -> list[str]:
    """Routing policies that no project's data-residency regions leave a target of (routing/residency.py)."""
    # Imported here: a command imports what it runs, so the CLI starts fast.
    import asyncio

    from interlock.app import build_simulator
    from interlock.governance.store import open_store
    from interlock.routing.residency import unreachable
    from interlock.routing.setup import reloaded_planner
    from interlock.vendors.registry import build_vendors
    from interlock.vendors.transport import HttpTransport

    async def projects() -> dict[str, tuple[str, ...]]:
        store = open_store(settings.store_url, settings.server.state_dir)
        try:
            return {p.id: p.regions for p in (await store.load()).projects.values()}
        finally:
            await store.close()

    found = asyncio.run(projects())
    if not any(found.values()):
        return []
    planner = reloaded_planner(settings, catalog, build_vendors(settings, HttpTransport(), build_simulator(
        settings, catalog)))
    return unreachable(planner, found, settings.regions)


def cmd_policies(args: argparse.Namespace) -> int:
    """``interlock policies check``: the config's policies validated, and data residency checked against them."""
    from interlock.app import build_catalog
    from interlock.vendors.registry import VENDOR_TABLE

    settings = load_cli_settings(args.config, VENDOR_TABLE)
    catalog = build_catalog(settings)
    found = residency_findings(settings, catalog)
    count = len(settings.section("policies").value or {})
    for line in found:
        print(line)
    print(f"{count} {'policy' if count == 1 else 'policies'} checked: "
          + (f"{len(found)} problem{'s' if len(found) != 1 else ''}" if found else "no problems"))
    return 1 if found else 0


async def _recorded_scores(args: argparse.Namespace) -> tuple[list[float], int]:
    """Difficulty scores of the newest recorded requests (see ``routing.replay.difficulty_of``), and how many
    rows were read."""
    from interlock.ledger.cli import _open, _time
    from interlock.ledger.schema import LogQuery
    from interlock.routing.replay import difficulty_of

    store = _open(args)
    try:
        rows = await store.query(LogQuery(since=_time(args.since, "--since"), project=args.project,
                                          limit=args.limit))
    finally:
        await store.close()
    scores = [score for score in map(difficulty_of, rows) if score is not None]
    return scores, len(rows)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``interlock policies calibrate --strong-share 0.3``: the difficulty threshold that sends that share of
    this gateway's recorded traffic to the strong tier (``routing/difficulty.py``)."""
    import asyncio

    from interlock.routing.difficulty import calibrate, shipped_threshold

    share = args.strong_share
    if not 0.0 <= share <= 1.0:
        print("interlock: --strong-share: expected a share between 0 and 1 (0.3 = 30%)", file=sys.stderr)
        return 2
    if args.limit < 1 or args.min_sample < 1:
        print("interlock: --limit and --min-sample: expected a positive number of requests", file=sys.stderr)
        return 2
    scores, read = asyncio.run(_recorded_scores(args))
    if len(scores) < args.min_sample:
        print(f"interlock: {len(scores)} of the {read} requests read have a difficulty score (a recorded one, or "
              f"their logged text); at least {args.min_sample} are needed (--min-sample). Log content "
              "(logging.level: full) or route traffic through a difficulty policy first.", file=sys.stderr)
        return 1
    threshold = calibrate(scores, share)
    strong = sum(1 for s in scores if s >= threshold)
    print(f"{len(scores)} of {read} recorded requests scored; threshold {threshold:.4f} sends {strong} "
          f"({100 * strong / len(scores):.1f}%) to the strong tier")
    print(f"(the shipped calibration, over the scorer's training prompts, gives {shipped_threshold(share):.4f})")
    print(f"    difficulty: {{threshold: {threshold:.4f}}}")
    return 0


def cmd_admin_key(args: argparse.Namespace) -> int:
    # Imported here: a command imports what it runs, so the CLI starts fast.
    from interlock.app import prepare_state
    from interlock.governance.auth import reset_master_key
    from interlock.vendors.registry import VENDOR_TABLE

    settings = load_cli_settings(args.config, VENDOR_TABLE)
    state = prepare_state(settings)
    if not args.reset:
        if state.master.generated:
            # Generated just now (a fresh state directory): the one chance to see it, as serve shows it.
            print("admin key (generated now, shown once; store it now):", file=sys.stderr)
            print(state.master.generated)
            return 0
        print(f"admin key: {state.master.prefix}… (from {state.master.source})")
        return 0
    if os.environ.get("INTERLOCK_MASTER_KEY"):
        print("INTERLOCK_MASTER_KEY is set: it is the admin key; unset it to use a generated one.", file=sys.stderr)
        return 2
    print(reset_master_key(state.store, state.secret))
    print("(restart the gateway for the new admin key to take effect)", file=sys.stderr)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    # Imported here: a command imports what it runs, so the CLI starts fast.
    from interlock.app import build_catalog
    from interlock.catalog.render import model_page, models_table
    from interlock.vendors.registry import VENDOR_TABLE

    settings = load_cli_settings(args.config, VENDOR_TABLE)
    catalog = build_catalog(settings)
    live = frozenset(v.id for v in settings.live_vendors())
    if args.action == "show":
        if not args.model:
            print("usage: interlock models show LAB/MODEL", file=sys.stderr)
            return 2
        print(model_page(catalog, args.model, live))
        return 0
    print(models_table(catalog, live, vendor=args.vendor, capability=args.capability, search=args.search))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a usage error on one line (subcommand parsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="interlock", description="A fast, correct LLM gateway.")
    parser.add_argument("--version", action="version", version=f"interlock {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8400)")
    serve.add_argument("--config", default=None, help="interlock.yaml (default: $INTERLOCK_CONFIG, else none)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    serve.add_argument("--engine", choices=("native", "granian"), default=None,
                       help="HTTP server: interlock's own HTTP/1.1 server (default) or Granian")
    serve.set_defaults(func=cmd_serve)

    models = sub.add_parser("models", help="list catalog models, or show one")
    models.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    models.add_argument("model", nargs="?", help="with 'show': the model id, e.g. openai/gpt-4.1-mini")
    models.add_argument("--vendor", help="only models this vendor serves")
    models.add_argument("--capability", help="only models with this capability (tools, vision, reasoning, ...)")
    models.add_argument("--search", help="text to find in the id or name")
    models.add_argument("--config", default=None)
    models.set_defaults(func=cmd_models)

    admin = sub.add_parser("admin-key", help="show the admin key's prefix, or --reset it")
    admin.add_argument("--reset", action="store_true", help="generate a new admin key and print it once")
    admin.add_argument("--config", default=None)
    admin.set_defaults(func=cmd_admin_key)

    policies = sub.add_parser("policies", help="check the routing policies (validity, data residency); calibrate "
                                               "a difficulty threshold on recorded traffic")
    actions = policies.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate the policies and check them against data residency")
    check.add_argument("--config", default=None)
    check.set_defaults(func=cmd_policies)
    cal = actions.add_parser("calibrate", help="the difficulty threshold for a share of strong calls, over the "
                                               "request log's newest requests")
    cal.add_argument("--strong-share", type=float, required=True, help="share of requests for the strong tier")
    cal.add_argument("--project", default=None, help="only this project's requests")
    cal.add_argument("--since", default=None, help="only requests since (ISO time or 7d, 24h, ...)")
    cal.add_argument("--limit", type=int, default=5000, help="newest requests read (default 5000)")
    cal.add_argument("--min-sample", type=int, default=50, help="fewest scored requests to calibrate on")
    cal.add_argument("--config", default=None)
    cal.set_defaults(func=cmd_calibrate)

    add_simulator_parser(sub)
    add_simulate_parser(sub)
    add_ledger_parsers(sub)
    add_governance_parsers(sub)
    add_mcp_parser(sub)
    return parser


def error_line(exc: BaseException) -> str:
    """A command's failure as the one line the user sees (no traceback)."""
    # Imported here: only when a command failed (redis is not otherwise needed by most commands).
    from redis.exceptions import RedisError

    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}"
    if isinstance(exc, GatewayError):
        return exc.message
    if isinstance(exc, MigrationError):
        return f"the store's tables could not be brought up to date: {exc}"
    if isinstance(exc, sqlite3.Error):
        return f"the state directory's SQLite database cannot be used ({exc}); check INTERLOCK_HOME"
    if isinstance(exc, RedisError):
        return f"Redis cannot be used ({exc}); check redis: in the config"
    if type(exc).__module__.startswith("asyncpg"):
        return f"the PostgreSQL store cannot be used ({exc}); check store: in the config"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return (f"{exc.strerror or exc}{where}: the state directory (INTERLOCK_HOME) or the store (store: in the "
                "config) cannot be used")
    return f"unexpected error: {type(exc).__name__}: {exc} (INTERLOCK_DEBUG=1 shows the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Every failure is one line on stderr and exit code 2; the traceback only on request.
        if os.environ.get("INTERLOCK_DEBUG"):
            raise
        print(f"interlock: {error_line(exc)}", file=sys.stderr)
        return 2
