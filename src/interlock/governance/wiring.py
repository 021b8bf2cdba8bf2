"""Building governance for a worker, and the start-up check of the launching process.

Kept out of ``app.py`` so the gateway's wiring stays a few lines.

Several workers without ``redis:`` would each count limits and budgets on
their own (a 60 rpm limit would admit 60 per worker), so ``interlock serve
--workers N`` refuses to start when any budget or limit is defined and no
Redis is configured. Without definitions it starts (keys alone need no shared
counters), and the admin API then refuses to create budgets or limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from interlock.config import ConfigError, Settings
from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.governance.auth import Authenticator, SecretMismatch, check_secret, server_secret
from interlock.governance.model import Definitions
from interlock.governance.service import Governance
from interlock.governance.settings import GovernanceSettings
from interlock.governance.store import GovStore, open_store
from interlock.vendors.transport import HttpTransport


def build_governance(settings: Settings, auth: Authenticator, http: HttpTransport | None,
                     clock: Clock = SYSTEM_CLOCK) -> Governance:
    cfg = GovernanceSettings.from_settings(settings)
    governance = Governance(cfg, open_store(cfg.store_url, settings.server.state_dir), auth, http, clock=clock)
    governance.load_now()
    return governance


async def _check_secret(store: GovStore, secret: bytes, where: str) -> None:
    try:
        await check_secret(store, secret, where)
    finally:
        await store.close()


def check_store_secret(settings: Settings, environ: Mapping[str, str]) -> None:
    """Refuse to start (a :class:`ConfigError` naming the fix) when the governance store was set up under
    another key-hashing secret than this replica's."""
    cfg = GovernanceSettings.from_settings(settings)
    state_dir = settings.server.state_dir
    where = "on PostgreSQL (store:)" if cfg.store_url else f"in {state_dir / 'interlock.db'}"
    try:
        asyncio.run(_check_secret(open_store(cfg.store_url, state_dir), server_secret(state_dir, environ), where))
    except SecretMismatch as exc:
        raise ConfigError(f"{settings.source or '(defaults)'}: {exc}") from None


async def _definitions(store: GovStore) -> Definitions:
    try:
        return await store.load()
    finally:
        await store.close()


def validate_governance(settings: Settings) -> None:
    cfg = GovernanceSettings.from_settings(settings)
    if cfg.workers <= 1 or cfg.redis_url is not None:
        return
    defs = asyncio.run(_definitions(open_store(cfg.store_url, settings.server.state_dir)))
    if defs.enforcing:
        raise ConfigError(
            f"{settings.source or '(defaults)'}: {len(defs.budgets)} budget(s) and {len(defs.limits)} rate limit(s) "
            f"are defined, and {cfg.workers} workers would each count them separately: add a redis: URL to the "
            "config so that every worker shares one set of counters, or run one worker")
