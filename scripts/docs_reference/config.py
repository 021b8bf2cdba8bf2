"""config.md: every key the config loader reads, found by running it over configs that use every section.

``configfile.Section`` is instrumented to record each key's path, type and default and the keys each section
accepts (``Section.only``); sections parsed as plain data (``simulator:``) come from their own key tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import GENERATED_NOTE, quiet
from .config_data import (
    DEFAULT_TEXT,
    EXAMPLES,
    NAMES,
    PARTIAL_CONFIGS,
    RAW_TYPES,
    RICH_CONFIG,
    VENDOR_OF_TYPE,
)


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


#: Sections parsed as plain data, not through ``configfile.Section``: their keys come from these tables.
def _plain_sections() -> list[ConfigKey]:
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
            path = None
            if text is not None:
                path = Path(tmp) / f"config-{i}.yaml"
                path.write_text(text)
            try:
                validate(load_settings(path, vendor_table=VENDOR_TABLE, environ=env))
            except ConfigError:
                if text in PARTIAL_CONFIGS:
                    continue
                raise
    # A parser may read a key its section refuses (shared code for several detectors): not a key of the section.
    keys = {path: key for path, key in recorder.keys.items()
            if path[:-1] not in recorder.accepted or path[-1] in recorder.accepted[path[:-1]]}
    # Keys a section accepts but reads only as a whole elsewhere (raw), or not on the paths the configs took.
    for section, allowed in recorder.accepted.items():
        for key in allowed:
            path = (*section, key)
            if path not in keys:
                keys[path] = ConfigKey(path, "any", None, "raw")
    for key in _plain_sections():
        keys[key.path] = key
    out = []
    for key in keys.values():
        dotted = key.dotted
        kind = RAW_TYPES.get(dotted, key.type) if key.reader == "raw" else key.type
        if kind == "any" and len(key.path) == 1:
            kind = "mapping"  # a top-level section, read by its subsystem
        out.append(dataclasses.replace(key, type=kind))
    # A per-policy or per-project override read only as raw data has the type of the key it overrides.
    out = [dataclasses.replace(key, type=next(
        (k.type for k in out if k.path[-1] == key.path[-1] and k.path[0] == key.path[0] and k.type != "any"
         and len(k.path) < len(key.path)), "any")) if key.type == "any" else key for key in out]
    return sorted(out, key=lambda k: k.path), recorder.accepted



def _yaml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, bool) else str(value).lower()


def config_example(key: ConfigKey, keys: Sequence[ConfigKey] = ()) -> str | None:
    """``a: {b: value}`` for the key, with its default, else an example value: from EXAMPLES, else the default
    of the key of the same name it overrides (``cache.projects.<name>.ttl_s`` → ``cache.ttl_s``)."""
    dotted = key.dotted
    value = EXAMPLES.get(dotted, key.default)
    if value is None:
        value = next((k.default for k in keys if k.path[-1] == key.path[-1] and k.path[0] == key.path[0]
                      and k.default not in (None, {}) and len(k.path) < len(key.path)), None)
    if value is None and key.type == "boolean":
        value = True
    if value is None or (value == {} and key.type.startswith("mapping") and dotted not in EXAMPLES):
        return None
    parts = _named_path(key.path)
    text = _yaml_value(value)
    for part in reversed(parts):
        text = "{" + (f"{part[:-2]}: [{text}]" if part.endswith("[]") else f"{part}: {text}") + "}"
    return text[1:-1]


def _named_path(path: tuple[str, ...]) -> list[str]:
    """``path`` with each ``<name>`` replaced by a name that fits there (a vendor of the key's type, ...)."""
    from interlock.vendors.registry import VENDOR_TABLE

    out: list[str] = []
    for i, part in enumerate(path):
        if part != "<name>":
            out.append(part)
            continue
        if tuple(out) == ("vendors",):
            key = path[i + 1] if i + 1 < len(path) else ""
            kind = next((t for t, v in VENDOR_TABLE.types.items() if key in v.keys), None)
            name = VENDOR_OF_TYPE.get(kind or "", "openai")
        elif out[-2:] == ["scores", "openai/gpt-4.1-mini"]:
            name = "mmlu"
        else:
            name = next((n for tail, n in NAMES.items() if tuple(out[-len(tail):]) == tail), "example")
        out.append(name)
    return [json.dumps(part) if "/" in part else part for part in out]


def config_page() -> str:
    keys, _ = config_keys()
    missing: list[str] = []
    lines = ["# Configuration reference", "", GENERATED_NOTE.strip(), "",
             "Every key of `interlock.yaml`, as the loader reads it: its type, its default (what applies when "
             "the key is absent) and an example. `<name>` stands for a name you choose (a vendor id, a policy, "
             "a project); `[]` for an item of a list. A value may name an environment variable as `${VAR}` or "
             "`${VAR:-default}`. An unknown key fails the start with the file, line and key.", ""]
    for top in sorted({k.path[0] for k in keys}):
        lines += [f"## `{top}`", "", "| key | type | default | example |", "|---|---|---|---|"]
        for key in (k for k in keys if k.path[0] == top):
            default = DEFAULT_TEXT.get(key.dotted) or (
                "—" if key.default is None or key.default == {} else f"`{_yaml_value(key.default)}`")
            example = config_example(key, keys)
            if example is None and key.type != "mapping":
                missing.append(key.dotted)
            lines.append(f"| `{key.dotted}` | {key.type} | {default} | "
                         + (f"`{example.replace('|', '&#124;')}`" if example else "a section: the keys below") + " |")
        lines.append("")
    if missing:
        raise ValueError(f"config keys with no default and no example (add them to EXAMPLES): {missing}")
    return "\n".join(lines)

