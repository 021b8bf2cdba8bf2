"""Config reload without a restart: ``SIGHUP`` to ``interlock serve`` or ``POST /admin/v1/reload``.

The config file is read again and validated in full, as at start-up (a mistake is a ``ConfigError`` naming
file, line and key, and the running config keeps serving). What reloads: the vendors (keys, base URLs,
which are live), aliases, routing policies (``policies:``) and the guardrails (the floor and the per-project
entries). Everything is built first (a new floor's detectors included); then the live vendor table, the
planner and the guardrails are swapped in one synchronous step, so a request sees the old config or the new
one, never a mix; circuit breakers and live statistics carry over by route. What needs a restart (and is
reported as unchanged until a restart): every other section - server, store, redis, logging, cache, catalog,
simulator, console, mcp, governance, circuit_breaker, routing, telemetry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock.config import ConfigError, Settings, load_settings
from interlock.core.vendor import VendorRuntime
from interlock.guardrails.guard import Guard, Guards
from interlock.guardrails.settings import GuardrailConfig
from interlock.routing.engine import RoutingEngine
from interlock.routing.planner import Planner
from interlock.routing.setup import reloaded_planner
from interlock.vendors.registry import VENDOR_TABLE, build_vendors
from interlock.vendors.transport import HttpTransport, Transport

log = logging.getLogger("interlock")

#: Sections a reload applies; a change anywhere else takes effect at the next restart.
RELOADED = ("vendors", "aliases", "policies", "guardrails")


@dataclass(frozen=True, slots=True)
class Reloaded:
    source: str
    vendors: tuple[str, ...]
    policies: tuple[str, ...]
    aliases: int
    #: Sections that differ from the running config but need a restart.
    pending: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"object": "config.reload", "source": self.source, "live_vendors": list(self.vendors),
                "policies": list(self.policies), "aliases": self.aliases, "restart_needed_for": list(self.pending)}


class Reloader:
    """Re-reads ``path`` and swaps what can change at run time into the running gateway."""

    def __init__(self, settings: Settings, path: Path | None, routing: RoutingEngine,
                 vendors: MutableMapping[str, VendorRuntime], http: HttpTransport, simulator: Transport | None,
                 workers: int, validate: Callable[[Settings], None], guardrails: GuardrailConfig,
                 guards: Guards, reauthorize: Callable[[], None]) -> None:
        self.settings = settings
        #: The shared guardrails section and detectors; ``reauthorize`` recomputes each key's effective
        #: guardrails (``Authenticator.load`` with the current definitions).
        self.guardrails = guardrails
        self.guards = guards
        self.reauthorize = reauthorize
        #: The start-up check of every section (``app.validate``).
        self.validate = validate
        self.path = path
        self.routing = routing
        self.vendors = vendors
        self.http = http
        self.simulator = simulator
        self.workers = workers

    def prepare(self) -> Prepared:
        """Read and check the file and build what it describes, changing nothing (may run on a worker thread).
        Raises :class:`ConfigError` when the file is not valid: the running config stays."""
        if self.path is None:
            raise ConfigError("this gateway runs without a config file (the embedded default): there is "
                              "nothing to reload; start it with --config to reload one")
        settings = load_settings(self.path, vendor_table=VENDOR_TABLE, overrides={"workers": self.workers})
        self.validate(settings)
        vendors = build_vendors(settings, self.http, self.simulator)
        guardrails = GuardrailConfig.from_settings(settings)
        # A new floor's detectors are built here, off the loop (rules to compile, perhaps a model to load).
        floor = Guard(guardrails.floor) if guardrails.floor != self.guards.floor.settings else None
        return Prepared(settings, vendors, reloaded_planner(settings, self.routing.planner.catalog, self.vendors),
                        guardrails, floor)

    def apply(self, new: Prepared) -> Reloaded:
        """Swap ``new`` in, with no await in between (call on the event loop)."""
        self.vendors.clear()
        self.vendors.update(new.vendors)
        self.routing.replan(new.planner)
        self.guardrails.update(new.guardrails)
        if new.floor is not None:
            self.guards.replace(new.floor)
        self.reauthorize()
        pending = _pending(self.settings, new.settings)
        self.settings = new.settings
        planner = new.planner
        result = Reloaded(new.settings.source or str(self.path), tuple(sorted(new.vendors)),
                          tuple(sorted(planner.policies)), len(planner.aliases), pending)
        log.warning("config reloaded from %s: %d live vendors, %d policies, %d aliases%s", result.source,
                    len(new.vendors), len(planner.policies), len(planner.aliases),
                    f"; a restart is needed for {', '.join(pending)}" if pending else "")
        return result

    def reload(self) -> Reloaded:
        return self.apply(self.prepare())


@dataclass(frozen=True, slots=True)
class Prepared:
    settings: Settings
    vendors: Mapping[str, VendorRuntime]
    planner: Planner
    guardrails: GuardrailConfig
    #: The new floor's guard when the floor changed (None: the running one stays, with its caches).
    floor: Guard | None


def _pending(old: Settings, new: Settings) -> tuple[str, ...]:
    """Top-level sections that changed but are not reloaded."""
    a = _sections(old)
    b = _sections(new)
    return tuple(sorted(k for k in set(a) | set(b) if k not in RELOADED and a.get(k) != b.get(k)))


def _sections(settings: Settings) -> Mapping[str, Any]:
    doc = settings.document
    return doc.data if doc is not None and isinstance(doc.data, dict) else {}
