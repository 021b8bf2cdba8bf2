"""Validated settings: config file + environment → one frozen :class:`Settings`.

Everything is checked at start, so a typo fails the start with the file, line
and key instead of surfacing as a strange runtime error. Secrets are read from
environment variables (``api_key: ${OPENAI_API_KEY}``) and never printed: the
:class:`VendorConfig` repr hides them.

This module knows no vendor: the composition root hands :func:`load_settings` a
:class:`VendorTable` (``interlock.vendors.registry.VENDOR_TABLE``) with the
built-in vendors and, per vendor type, the keys it reads and the function that
parses its typed :class:`VendorSettings` from its section.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from interlock.configfile import ConfigError, Document, Section, unsafe_header_value
from interlock.core.regions import BUILTIN_REGIONS, BadRegionName, RegionTable, parse_names, valid_name
from interlock.core.vendor import Timeouts, VendorSpec

DEFAULT_PORT = 8400
DEFAULT_MAX_BODY = 32 * 1024 * 1024
ENGINES = ("native", "granian")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = ["ConfigError", "ServerSettings", "Settings", "VendorConfig", "VendorSettings", "VendorTable", "VendorType",
           "load_settings"]

S = TypeVar("S", bound="VendorSettings")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY
    state_dir: Path = Path(".interlock")
    #: The HTTP server: interlock's own HTTP/1.1 server, or Granian (TLS-less HTTP/2, its own tuning).
    engine: str = "native"
    #: Native server: a request head must arrive within this many seconds; idle keep-alive closes after.
    head_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    #: Native server: the longest gap between two pieces of a request body before it is refused (408).
    body_timeout: float = 30.0
    #: On SIGTERM: seconds of serving with ``/readyz`` failing before the listener closes (a load balancer's
    #: check interval times the failures it needs); then requests in flight get ``grace_s`` to finish.
    drain_s: float = 0.0
    grace_s: float = 10.0
    #: Load balancers and proxies whose ``X-Forwarded-For`` names the client (addresses or CIDR networks);
    #: a request from anywhere else is attributed to its own peer address, whatever the header says.
    trusted_proxies: tuple[IPNetwork, ...] = ()


def _networks(sec: Section, key: str) -> tuple[IPNetwork, ...]:
    """A list of IP addresses or CIDR networks (``10.0.0.0/8``, ``::1``)."""
    raw = sec.raw(key)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise sec.error("expected a list of IP addresses or networks, e.g. [127.0.0.1, 10.0.0.0/8]", key)
    out: list[IPNetwork] = []
    for value in raw:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise sec.error(f"{value!r} is not an IP address or network (CIDR)", key) from None
    return tuple(out)


class VendorSettings:
    """One vendor type's own settings (cloud region, credentials file, API version...).

    The base holds none; each vendor package under ``interlock.vendors`` that reads
    keys of its own subclasses it as a frozen dataclass and parses it from the
    vendor's config section (:attr:`VendorType.read`).
    """

    __slots__ = ()
    #: True when these settings, not ``api_key``, decide whether the vendor can run: a cloud
    #: credential (Bedrock, Vertex AI), or none needed at all (the simulator).
    decides_liveness: ClassVar[bool] = False

    def missing(self) -> str | None:
        """Why the vendor cannot run for want of a setting (None when it can); read when :attr:`decides_liveness`."""
        return None

    def regions(self) -> tuple[str, ...]:
        """Where the vendor runs, as its settings say (Bedrock's region, Vertex's location); () when they don't."""
        return ()


NO_SETTINGS = VendorSettings()

#: ``(spec, section or None, environment, base_url) -> (settings, base_url)``: a vendor type's settings parser.
#: ``section`` is None for a built-in vendor the config file does not list; ``base_url`` is what the file or the
#: spec gives, and the parser returns it, or one derived from its settings (Bedrock's region, Vertex's location).
SettingsReader = Callable[[VendorSpec, Section | None, Mapping[str, str], str | None],
                          tuple[VendorSettings, str | None]]


def no_settings(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
                base_url: str | None) -> tuple[VendorSettings, str | None]:
    """The reader of a vendor type with no keys of its own."""
    return NO_SETTINGS, base_url


@dataclass(frozen=True, slots=True)
class VendorType:
    """What the config needs of one vendor type (a ``VendorSpec.type``): its keys and their parser."""

    #: Keys of a ``vendors.<id>`` section this type reads, besides the ones every vendor has.
    keys: tuple[str, ...] = ()
    read: SettingsReader = no_settings
    #: Whether a config may declare a vendor of its own with this ``type``.
    custom: bool = True


@dataclass(frozen=True, slots=True)
class VendorTable:
    """The vendors this build knows: built-in specs by id, vendor types by name (in declaration order)."""

    specs: Mapping[str, VendorSpec]
    types: Mapping[str, VendorType]

    @property
    def custom_types(self) -> tuple[str, ...]:
        return tuple(name for name, kind in self.types.items() if kind.custom)

    @property
    def setting_keys(self) -> tuple[str, ...]:
        """Every type's own keys, each once."""
        return tuple(dict.fromkeys(key for kind in self.types.values() for key in kind.keys))


@dataclass(frozen=True, slots=True)
class VendorConfig:
    """A vendor as this deployment runs it: the spec plus credentials, URL and timeouts."""

    spec: VendorSpec
    base_url: str | None
    api_key: str | None = field(repr=False)
    key_source: str | None
    headers: Mapping[str, str]
    timeouts: Timeouts
    enabled: bool
    explicitly_configured: bool = False
    #: The vendor type's own settings, parsed by its package (:class:`VendorType`).
    settings: VendorSettings = NO_SETTINGS
    #: The built-in vendor this one is an instance of (``like: azure``): its spec, and its catalog routes.
    like: str | None = None
    #: Where this instance runs (vendors' own region names): ``regions`` in its section, else what its
    #: settings derive; () when unknown, which no region rule admits (core/regions.py).
    regions: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    def settings_as(self, kind: type[S]) -> S:
        """The typed settings; a config built without any (tests, benchmarks) gets the type's defaults."""
        settings = self.settings
        if isinstance(settings, kind):
            return settings
        if settings is NO_SETTINGS:
            return kind()
        raise TypeError(f"vendor {self.id!r} has {type(settings).__name__}, not {kind.__name__}")

    @property
    def live(self) -> bool:
        """Usable here: enabled, with a base URL, and a credential where one is needed."""
        if not self.enabled or not self.base_url:
            return False
        if self.settings.decides_liveness:
            return self.settings.missing() is None
        if self.spec.needs_key:
            return self.api_key is not None
        # Local servers need no key, but run only when the config asks for them.
        return self.explicitly_configured

    def why_not_live(self) -> str:
        if not self.enabled:
            return "disabled in the config"
        missing = self.settings.missing() if self.settings.decides_liveness else None
        if missing:
            return missing
        if not self.base_url:
            env = f" (set {self.spec.base_url_env})" if self.spec.base_url_env else ""
            return f"no base_url configured{env}"
        if self.spec.needs_key and self.api_key is None:
            names = self.key_source or " or ".join(self.spec.key_env) or "an api_key"
            return f"no credential: set {names}"
        if not self.explicitly_configured:
            return f"a local server: list '{self.id}' under vendors: in the config to use it"
        return "live"


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings
    vendors: Mapping[str, VendorConfig]
    aliases: Mapping[str, str]
    #: Raw ``simulator:`` section, validated by the simulator's own settings class.
    simulator: Mapping[str, Any]
    simulator_enabled: bool
    #: Raw ``catalog:`` overrides, validated by the catalog.
    catalog: Mapping[str, Any]
    logging_enabled: bool
    source: str | None
    #: ``store: postgresql://...``: the request log in PostgreSQL (default: SQLite in the state directory).
    store_url: str | None = None
    #: Region name -> jurisdiction: the built-in table plus ``regions.jurisdictions``.
    regions: RegionTable = BUILTIN_REGIONS
    #: The parsed file, so subsystems that validate their own section (``policies:``,
    #: ``logging:``, ``telemetry:``) can report errors with the file and line.
    document: Document | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def section(self, key: str) -> Section:
        """A top-level section of the config file, for a subsystem to validate."""
        doc = self.document or Document({}, {}, "(defaults)")
        data = doc.data if isinstance(doc.data, dict) else {}
        return Section(doc, (key,), data.get(key), self.environ)

    def vendor_regions(self) -> dict[str, tuple[str, ...]]:
        """Each configured vendor's regions (spend by region names them, live or not)."""
        return {vid: v.regions for vid, v in self.vendors.items()}

    def live_vendors(self) -> list[VendorConfig]:
        return [v for v in self.vendors.values() if v.live]


_TOP_KEYS = ("server", "vendors", "aliases", "simulator", "catalog", "logging", "store", "telemetry", "console",
             "policies", "redis", "governance", "circuit_breaker", "guardrails", "cache", "mcp",
             "routing", "regions")
#: ``logging:`` keys; the ledger (``ledger/settings.py``) reads and checks their values.
LOGGING_KEYS = ("enabled", "level", "retention_days", "zero_data_retention", "flush_interval", "batch_size")
#: Keys of a ``vendors.<id>`` section every vendor has; each type adds its own (:attr:`VendorType.keys`).
_VENDOR_KEYS = ("type", "base_url", "api_key", "headers", "timeouts", "enabled", "name", "regions", "like")


def _timeouts(section: Section, base: Timeouts) -> Timeouts:
    section.only("connect", "first_byte", "idle", "total")
    return Timeouts(
        connect=section.number("connect", base.connect, positive=True),
        first_byte=section.number("first_byte", base.first_byte, positive=True),
        idle=section.number("idle", base.idle, positive=True),
        total=section.number("total", base.total, positive=True),
    )


def _env_key(spec: VendorSpec, environ: Mapping[str, str]) -> str | None:
    """The vendor's key from its usual environment variables; one that would break the request head is an error."""
    for name in spec.key_env:
        value = environ.get(name)
        if value:
            if unsafe_header_value(value):
                raise ConfigError(f"environment variable {name} (the {spec.id} API key) contains CR, LF or NUL, "
                                  "which would inject a header into every request; remove them")
            return value
    return None


def region_names(sec: Section, key: str, table: RegionTable, *, known: bool) -> tuple[str, ...]:
    """A list of region or jurisdiction names (one name alone is accepted too); ``known``: each must be
    in the region table, so a typo is an error rather than a route no rule will ever admit."""
    raw = sec.raw(key)
    if raw is None:
        return ()
    try:
        names = parse_names(raw)
        return table.check_known(names) if known else names
    except BadRegionName as exc:
        raise sec.error(exc.message, key) from None


def _region_table(sec: Section) -> RegionTable:
    sec.only("jurisdictions")
    juris = sec.section("jurisdictions")
    extra: dict[str, tuple[str, ...]] = {}
    for name in juris.names():
        if not valid_name(name):
            raise juris.error(f"{name!r} is not a jurisdiction name (lower case letters, digits and hyphens)", name)
        extra[name] = region_names(juris, name, BUILTIN_REGIONS, known=False)
    return BUILTIN_REGIONS.extended(extra) if extra else BUILTIN_REGIONS


def _vendor(vid: str, section: Section | None, environ: Mapping[str, str], default_timeouts: Timeouts,
            table: VendorTable, regions: RegionTable = BUILTIN_REGIONS) -> VendorConfig:
    spec = table.specs.get(vid)
    if section is None:
        assert spec is not None
        settings, base_url = table.types[spec.type].read(
            spec, None, environ, spec.base_url or (environ.get(spec.base_url_env) if spec.base_url_env else None))
        return VendorConfig(
            spec=spec,
            base_url=base_url,
            api_key=_env_key(spec, environ),
            key_source=" or ".join(spec.key_env) or None,
            headers=MappingProxyType(dict(spec.headers)),
            timeouts=default_timeouts,
            enabled=True,
            settings=settings,
            regions=settings.regions(),
        )
    section.only(*_VENDOR_KEYS, *table.setting_keys)
    vtype = section.string("type")
    like = section.string("like")
    if like is not None:
        spec = _instance_spec(vid, like, vtype, section, table)
    elif spec is None:
        custom = ", ".join(table.custom_types)
        if vtype is None:
            raise section.error(f"'{vid}' is not a built-in vendor: give it a type ({custom}) and a base_url")
        if vtype not in table.custom_types:
            raise section.error(f"unknown vendor type {vtype!r}; expected one of: {custom}", "type")
        spec = VendorSpec(vid, section.string("name", vid) or vid, vtype, None, needs_key=False)
    elif vtype is not None and vtype != spec.type:
        raise section.error(f"'{vid}' is a built-in vendor of type {spec.type!r}; remove 'type' or rename the vendor", "type")
    elif section.has("name"):  # a built-in vendor's display name (errors, the console); its id stays
        spec = replace(spec, name=section.string("name") or spec.name)
    kind = table.types[spec.type]
    for key in table.setting_keys:
        if key not in kind.keys and section.has(key):
            owners = [name for name, other in table.types.items() if key in other.keys and other.custom]
            noun = "vendor type" if len(owners) == 1 else "vendor types"
            raise section.error(f"'{key}' applies to the {' and '.join(owners)} {noun} only", key)
    base_url = section.string("base_url")
    if base_url is None:
        base_url = spec.base_url or (environ.get(spec.base_url_env) if spec.base_url_env else None)
    if base_url is not None:
        if not base_url.startswith(("http://", "https://")):
            raise section.error(f"expected an http:// or https:// URL, got {base_url!r}", "base_url")
        if any(c <= " " or c == "\x7f" for c in base_url):
            raise section.error(f"the URL contains whitespace or control characters: {base_url!r}", "base_url")
        base_url = base_url.rstrip("/")
    api_key, key_source = section.secret("api_key")
    if not section.has("api_key"):
        api_key = _env_key(spec, environ)
        key_source = " or ".join(spec.key_env) or None
    elif api_key is not None and unsafe_header_value(api_key):
        raise section.error("the key contains CR, LF or NUL, which would inject a header into every request "
                            "(check the value or the environment variable it names)", "api_key")
    headers = dict(spec.headers)
    headers.update(section.header_map("headers"))
    settings, base_url = kind.read(spec, section, environ, base_url)
    return VendorConfig(
        spec=spec,
        base_url=base_url,
        api_key=api_key,
        key_source=key_source,
        headers=MappingProxyType(headers),
        timeouts=_timeouts(section.section("timeouts"), default_timeouts),
        enabled=section.boolean("enabled", True),
        explicitly_configured=True,
        settings=settings,
        like=like,
        regions=region_names(section, "regions", regions, known=True) or settings.regions(),
    )


def _instance_spec(vid: str, like: str, vtype: str | None, section: Section, table: VendorTable) -> VendorSpec:
    """The spec of ``vid: {like: <built-in>}``: the built-in's (auth, headers, quirks, credential variables),
    under its own id. Not its base URL variable (Azure's endpoint): an instance in another region must
    say where it is, or it would silently reach the built-in's."""
    template = table.specs.get(like)
    if template is None:
        raise section.error(f"'like' names a built-in vendor ({', '.join(sorted(table.specs))}), got {like!r}",
                            "like")
    if vid in table.specs:
        raise section.error(f"'{vid}' is itself a built-in vendor; 'like' is for an instance of your own", "like")
    if vtype is not None and vtype != template.type:
        raise section.error(f"'{like}' is of type {template.type!r}; remove 'type'", "type")
    return replace(template, id=vid, name=section.string("name", f"{template.name} ({vid})") or vid,
                   base_url_env=None)


def load_cli_settings(config: str | None, vendor_table: VendorTable, **overrides: object) -> Settings:
    """Settings for a CLI command: ``--config``, else ``$INTERLOCK_CONFIG``, else the embedded default."""
    path = config or os.environ.get("INTERLOCK_CONFIG") or None
    return load_settings(Path(path) if path else None, vendor_table=vendor_table, overrides=overrides or None)


def load_settings(
    path: Path | None,
    *,
    vendor_table: VendorTable,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read and validate the config file (``None`` = the embedded default) plus the environment.

    ``vendor_table`` is the vendors this build knows (``interlock.vendors.registry.VENDOR_TABLE``);
    ``overrides`` are command-line values (host, port, workers) that win over the file.
    """
    env = os.environ if environ is None else environ
    doc = Document.load(path) if path is not None else Document({}, {}, "(defaults)")
    top = Section(doc, (), doc.data, env)
    top.only(*_TOP_KEYS)

    srv = top.section("server")
    srv.only("host", "port", "workers", "max_body_bytes", "state_dir", "timeouts", "engine", "head_timeout",
             "keepalive_timeout", "body_timeout", "drain_s", "grace_s", "trusted_proxies")
    home = env.get("INTERLOCK_HOME")
    state_dir = Path(srv.string("state_dir") or home or ".interlock")
    if path is not None and not state_dir.is_absolute() and srv.has("state_dir"):
        state_dir = path.parent / state_dir
    server = ServerSettings(
        host=srv.string("host", "127.0.0.1") or "127.0.0.1",
        port=srv.integer("port", DEFAULT_PORT, minimum=0),
        workers=srv.integer("workers", 1, minimum=1),
        max_body_bytes=srv.integer("max_body_bytes", DEFAULT_MAX_BODY, minimum=1024),
        state_dir=state_dir,
        engine=srv.choice("engine", "native", ENGINES),
        head_timeout=srv.number("head_timeout", 10.0, positive=True),
        keepalive_timeout=srv.number("keepalive_timeout", 75.0, positive=True),
        body_timeout=srv.number("body_timeout", 30.0, positive=True),
        drain_s=srv.number("drain_s", 0.0, minimum=0.0),
        grace_s=srv.number("grace_s", 10.0, minimum=0.0),
        trusted_proxies=_networks(srv, "trusted_proxies"),
    )
    if overrides:
        port = overrides.get("port")
        server = replace(
            server,
            host=str(overrides.get("host") or server.host),
            port=int(port) if port is not None else server.port,
            workers=int(overrides.get("workers") or server.workers),
            engine=str(overrides.get("engine") or server.engine),
        )
    if server.port > 65535:
        raise srv.error(f"expected a port number ≤ 65535, got {server.port}", "port")
    default_timeouts = _timeouts(srv.section("timeouts"), Timeouts())
    region_table = _region_table(top.section("regions"))

    vendors_section = top.section("vendors")
    vendors: dict[str, VendorConfig] = {}
    for vid in vendor_table.specs:
        if not vendors_section.has(vid):
            vendors[vid] = _vendor(vid, None, env, default_timeouts, vendor_table, region_table)
    for vid in vendors_section.names():
        if "/" in vid or not vid.strip():
            raise vendors_section.error("vendor ids may not contain '/'", vid)
        vendors[vid] = _vendor(vid, vendors_section.section(vid), env, default_timeouts, vendor_table,
                               region_table)

    aliases_section = top.section("aliases")
    aliases: dict[str, str] = {}
    for name in aliases_section.names():
        target = aliases_section.string(name)
        if not target or "/" not in target:
            raise aliases_section.error(f"an alias must name a model as vendor/model, got {target!r}", name)
        aliases[name] = target

    sim = top.section("simulator")
    # With no config file the simulator serves every catalog model; with one it
    # serves traffic only when the file says so.
    simulator_enabled = sim.boolean("enabled", path is None)
    sim_raw = {k: v for k, v in sim.value.items() if k != "enabled"}
    if not simulator_enabled and "simulator" in vendors:
        vendors["simulator"] = replace(vendors["simulator"], enabled=False)

    cat = top.raw("catalog") or {}
    if not isinstance(cat, dict):
        raise top.error("expected a mapping", "catalog")
    log = top.section("logging")
    log.only(*LOGGING_KEYS)
    store_url = top.string("store")
    if store_url is not None and not store_url.startswith(("postgresql://", "postgres://")):
        raise top.error(f"expected a postgresql://user@host:port/database URL, got {store_url!r}", "store")

    return Settings(
        server=server,
        vendors=MappingProxyType(vendors),
        aliases=MappingProxyType(aliases),
        simulator=MappingProxyType(sim_raw),
        simulator_enabled=simulator_enabled,
        catalog=MappingProxyType(cat),
        logging_enabled=log.boolean("enabled", True),
        store_url=store_url,
        regions=region_table,
        source=str(path) if path is not None else None,
        document=doc,
        environ=env,
    )

