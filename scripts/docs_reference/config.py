"""config.md: every key of ``interlock.yaml`` (``config_keys.py``): its type, default, example and meaning."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .common import GENERATED_NOTE
from .config_data import DEFAULT_TEXT, EXAMPLE_WITH, EXAMPLES, NAMES, STDIO_SERVER, VENDOR_OF_TYPE
from .config_keys import ConfigKey, config_keys
from .config_meanings import MEANINGS


def _yaml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, bool) else str(value).lower()


def config_example(key: ConfigKey, keys: Sequence[ConfigKey] = ()) -> str | None:
    """``a: {b: value}`` for the key, with its default, else an example value: from EXAMPLES, else the default
    of the key of the same name it overrides (``cache.projects.<name>.ttl_s`` → ``cache.ttl_s``); with the keys
    beside it that it needs (EXAMPLE_WITH)."""
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
    beside = EXAMPLE_WITH.get(dotted) or EXAMPLE_WITH.get(ConfigKey(key.path[:-1], "", None, "").dotted, {})
    last = parts[-1]
    text = f"{last[:-2]}: [{_yaml_value(value)}]" if last.endswith("[]") else f"{last}: {_yaml_value(value)}"
    text += "".join(f", {name}: {_yaml_value(v)}" for name, v in beside.items() if name != key.path[-1])
    for part in reversed(parts[:-1]):
        text = f"{part[:-2]}: [{{{text}}}]" if part.endswith("[]") else f"{part}: {{{text}}}"
    return text


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
            # ``like`` is for an instance of your own (a built-in vendor refuses it).
            name = "azure-eu" if key == "like" else VENDOR_OF_TYPE.get(kind or "", "openai")
        elif tuple(out) == ("policies",) and path[i + 1:i + 2] in (("tiers",), ("tier_strategy",), ("difficulty",)):
            # The difficulty strategy's keys: into RICH_CONFIG's difficulty policies (one calibrated, one fixed).
            name = "smart-fixed" if path[-1] == "threshold" else "smart"
        elif out[-2:] == ["scores", "openai/gpt-4.1-mini"]:
            name = "mmlu"
        elif tuple(out) == ("mcp", "servers") and path[i + 1:i + 2] in tuple((k,) for k in STDIO_SERVER[1]):
            name = STDIO_SERVER[0]
        else:
            name = next((n for tail, n in NAMES.items() if tuple(out[-len(tail):]) == tail), "example")
        out.append(name)
    return [json.dumps(part) if "/" in part else part for part in out]


def config_page() -> str:
    keys, _ = config_keys()
    missing: list[str] = []
    lines = ["# Configuration reference", "", GENERATED_NOTE.strip(), "",
             "Every key of `interlock.yaml`, as the loader reads it: its type, its default (what applies when "
             "the key is absent), what it means and an example. `<name>` stands for a name you choose (a vendor id, a policy, "
             "a project); `[]` for an item of a list. A value may name an environment variable as `${VAR}` or "
             "`${VAR:-default}`. An unknown key fails the start with the file, line and key.", ""]
    for top in sorted({k.path[0] for k in keys}):
        lines += [f"## `{top}`", "", "| key | type | default | meaning | example |", "|---|---|---|---|---|"]
        for key in (k for k in keys if k.path[0] == top):
            default = DEFAULT_TEXT.get(key.dotted) or (
                "—" if key.default is None or key.default == {} else f"`{_yaml_value(key.default)}`")
            example = config_example(key, keys)
            if example is None and key.type != "mapping":
                missing.append(key.dotted)
            meaning = MEANINGS.get(key.dotted, "").replace("|", "&#124;")
            lines.append(f"| `{key.dotted}` | {key.type} | {default} | {meaning} | "
                         + (f"`{example.replace('|', '&#124;')}`" if example else "a section: the keys below") + " |")
        lines.append("")
    if missing:
        raise ValueError(f"config keys with no default and no example (add them to EXAMPLES): {missing}")
    return "\n".join(lines)

