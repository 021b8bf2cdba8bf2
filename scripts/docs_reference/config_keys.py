"""The config's keys: every key the loader reads, found by running it over configs that use every section.

``configfile.Section`` is instrumented to record each key's path, type and default and the keys each section
accepts (``Section.only``). Sections parsed as plain data, where the recorder sees nothing, are read from the
code that parses them: the simulator's key table and settings class, the ``_only(...)`` calls of the MCP
parsers (``mcp/model.py``), the key sets of the catalog overrides (``catalog/overrides.py``).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import SRC, const_str, quiet
from .config_data import PARTIAL_CONFIGS, PLAIN_TYPES, RAW_TYPES, RICH_CONFIG


@dataclass(frozen=True)
class ConfigKey:
    path: tuple[str, ...]
    type: str
    default: Any
    reader: str

    @property
    def dotted(self) -> str:
        out = ""
        for part in self.path:
            out += part if part.startswith("[") else (f".{part}" if out else part)
        return out


_KINDS = {"string": "string", "choice": "string", "number": "number", "integer": "integer", "boolean": "boolean",
          "secret": "string (secret: ${ENV_VAR})", "string_map": "mapping of strings",
          "header_map": "mapping of header names to values", "section": "mapping", "raw": "any"}



def _plain_sections() -> list[ConfigKey]:
    """The keys of sections parsed as plain data, not through ``configfile.Section``."""
    return [*_simulator_keys(), *_plain(_mcp_paths()), *_plain(_catalog_paths())]


def _simulator_keys() -> list[ConfigKey]:
    from interlock.simulator import settings as sim

    fields = {f.name: f for f in dataclasses.fields(sim.SimulatorSettings)}
    out = []
    for key in sorted(sim._KNOWN_KEYS):
        f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else {}
        out.append(ConfigKey(("simulator", key), _type_name(str(f.type)), default, "SimulatorSettings"))
    return out


def _type_name(annotation: str) -> str:
    return {"float": "number", "int": "integer", "bool": "boolean", "int | None": "integer",
            "str": "string"}.get(annotation, "mapping" if annotation.startswith("Mapping") else annotation)



def _plain(paths: list[tuple[str, ...]]) -> list[ConfigKey]:
    """Keys with their type and default from PLAIN_TYPES (type ``any`` when it has none: the tests fail)."""
    out = []
    for path in paths:
        key = ConfigKey(path, "any", None, "plain")
        kind, default = PLAIN_TYPES.get(key.dotted, ("any", None))
        out.append(dataclasses.replace(key, type=kind, default=default))
    return out


#: The functions of ``mcp/model.py`` that check a server's, its ``per_user``'s and a tool pack's keys
#: (``_only(data, key, (...))``), by the section they read.
MCP_PARSERS = {
    "parse_server": ("mcp", "servers", "<name>"),
    "_per_user": ("mcp", "servers", "<name>", "per_user"),
    "parse_pack": ("mcp", "tool_packs", "<name>"),
}


def _mcp_paths() -> list[tuple[str, ...]]:
    """The keys of ``mcp.servers.<name>`` and ``mcp.tool_packs.<name>``, from the ``_only`` calls of the parsers
    (the admin API's definitions are parsed by the same functions)."""
    tree = ast.parse((SRC / "mcp" / "model.py").read_text(encoding="utf-8"))
    found: dict[str, dict[str, None]] = {}
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef) or func.name not in MCP_PARSERS:
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_only" \
                    and len(node.args) == 3 and isinstance(node.args[2], ast.Tuple):
                keys = found.setdefault(func.name, {})
                keys.update(dict.fromkeys(k for k in map(const_str, node.args[2].elts) if k))
    missing = sorted(set(MCP_PARSERS) - set(found))
    if missing:
        raise ValueError(f"no _only(...) keys found in mcp/model.py's {missing}: update MCP_PARSERS")
    return [(*MCP_PARSERS[name], key) for name, keys in found.items() for key in keys]


def _catalog_paths() -> list[tuple[str, ...]]:
    """The keys of ``catalog:`` overrides, from the key sets ``catalog/overrides.py`` checks against."""
    from interlock.catalog import overrides
    from interlock.core.pricing import PriceTier

    model = ("catalog", "models", "<name>")
    route = (*model, "routes", "<name>")
    price = (*route, "price")
    # apply_overrides: ``models`` and ``vendors`` at the top, ``zdr`` the only key of a vendor.
    paths = [("catalog", "models"), model, ("catalog", "vendors"), ("catalog", "vendors", "<name>"),
             ("catalog", "vendors", "<name>", "zdr")]
    paths += [(*model, key) for key in sorted(overrides._MODEL_KEYS)]
    paths += [route, *((*route, key) for key in sorted(overrides._ROUTE_KEYS))]
    paths += [(*price, key) for key in sorted(overrides._PRICE_KEYS)]
    paths += [(*price, "tiers"), *((*price, "tiers[]", f.name) for f in dataclasses.fields(PriceTier))]
    return paths


class _Recorder:
    def __init__(self) -> None:
        self.keys: dict[tuple[str, ...], ConfigKey] = {}
        self.accepted: dict[tuple[str, ...], set[str]] = {}
        self.named: set[tuple[str, ...]] = set()

    def norm(self, path: tuple[str | int, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for part in path:
            if isinstance(part, int):
                out[-1] = out[-1] + "[]"
            elif tuple(out) in self.named:
                out.append("<name>")
            else:
                out.append(part)
        return tuple(out)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from interlock.configfile import Section

        saved = {name: getattr(Section, name) for name in (*_KINDS, "only", "names")}
        recorder = self

        def reader(name: str) -> Callable[..., Any]:
            original = saved[name]

            def read(self: Section, key: str, *args: Any, **kwargs: Any) -> Any:
                default = args[0] if args else kwargs.get("default")
                if name in ("section", "string_map", "header_map", "secret"):
                    default = None
                section = recorder.norm(self.path)
                path = (*section, "<name>" if section in recorder.named else key)
                known = recorder.keys.get(path)
                if known is None or (known.reader == "raw" and name != "raw"):
                    recorder.keys[path] = ConfigKey(path, _KINDS[name], default, name)
                return original(self, key, *args, **kwargs)
            return read

        def only(self: Section, *allowed: str) -> None:
            recorder.accepted.setdefault(recorder.norm(self.path), set()).update(allowed)
            saved["only"](self, *allowed)

        def names(self: Section) -> Iterator[str]:
            recorder.named.add(recorder.norm(self.path))
            return saved["names"](self)  # type: ignore[no-any-return]

        try:
            for name in _KINDS:
                setattr(Section, name, reader(name))
            Section.only = only  # type: ignore[method-assign]
            Section.names = names  # type: ignore[method-assign]
            yield
        finally:
            for name, original in saved.items():
                setattr(Section, name, original)


def config_keys() -> tuple[list[ConfigKey], dict[tuple[str, ...], set[str]]]:
    """Every key the loader reads (path, type, default) and, per section, the keys it accepts."""
    from interlock.app import validate
    from interlock.config import ConfigError, load_settings
    from interlock.vendors.registry import VENDOR_TABLE

    recorder = _Recorder()
    with tempfile.TemporaryDirectory() as tmp, recorder.installed(), quiet():
        env = {"INTERLOCK_HOME": str(Path(tmp) / "state")}
        for i, text in enumerate((None, RICH_CONFIG, *PARTIAL_CONFIGS)):
            file = None
            if text is not None:
                file = Path(tmp) / f"config-{i}.yaml"
                file.write_text(text)
            try:
                validate(load_settings(file, vendor_table=VENDOR_TABLE, environ=env))
            except ConfigError:
                if text in PARTIAL_CONFIGS:
                    continue
                raise
    # A parser may read a key its section refuses (shared code for several detectors): not a key of the section.
    keys = {path: key for path, key in recorder.keys.items()
            if path[:-1] not in recorder.accepted or path[-1] in recorder.accepted[path[:-1]]}
    # Keys a section accepts but reads only as a whole elsewhere (raw), or not on the paths the configs took.
    for section, allowed in recorder.accepted.items():
        for name in allowed:
            if (*section, name) not in keys:
                keys[(*section, name)] = ConfigKey((*section, name), "any", None, "raw")
    for plain in _plain_sections():
        keys[plain.path] = plain
    out = []
    for key in keys.values():
        kind = RAW_TYPES.get(key.dotted, key.type) if key.reader == "raw" else key.type
        if kind == "any" and len(key.path) == 1:
            kind = "mapping"  # a top-level section, read by its subsystem
        out.append(dataclasses.replace(key, type=kind))
    # A per-policy or per-project override read only as raw data has the type of the key it overrides.
    out = [dataclasses.replace(key, type=next(
        (k.type for k in out if k.path[-1] == key.path[-1] and k.path[0] == key.path[0] and k.type != "any"
         and len(k.path) < len(key.path)), "any")) if key.type == "any" and key.reader == "raw" else key
        for key in out]
    return sorted(out, key=lambda k: k.path), recorder.accepted


