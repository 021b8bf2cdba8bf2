"""The generated reference pages (scripts/docs_reference/) list everything the code defines.

Each check reads the code a second, independent way (a plain scan of the source, or a running gateway's
answers) and fails when the generator missed something, or when an entry has no meaning.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import re
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import openai
import pytest
import yaml

from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "interlock"


def _load() -> ModuleType:
    # The package by its name, as ``python -m docs_reference`` imports it (its modules import each other).
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference" / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ref = _load()


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {uri.split("/")[-1][:-3]: render() for uri, render in ref.PAGES.items()}


def _sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path, path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------- config

def _only_keys() -> set[str]:
    """Every key named in a ``Section.only(...)`` call of the source (literal strings, or module tuples), or in
    an ``_only(data, key, (...))`` call (the MCP parsers, which check plain data)."""
    keys: set[str] = set()
    for _, text in _sources():
        tree = ast.parse(text)
        tuples = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                  for t in node.targets if isinstance(t, ast.Name)}

        def strings(node: ast.AST, tuples: dict[str, ast.expr] = tuples) -> Iterator[str]:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield node.value
            elif isinstance(node, ast.Tuple):
                for elt in node.elts:
                    yield from strings(elt)
            elif isinstance(node, ast.Starred):
                yield from strings(node.value)
            elif isinstance(node, ast.IfExp):
                yield from strings(node.body)
                yield from strings(node.orelse)
            elif isinstance(node, ast.Name) and node.id in tuples:
                yield from strings(tuples[node.id])

        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "only" \
                    and node.args and all(isinstance(a, ast.Constant | ast.Starred) for a in node.args):
                for arg in node.args:
                    keys.update(strings(arg))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_only" \
                    and len(node.args) == 3:
                keys.update(strings(node.args[2]))
    return keys


def test_config_lists_every_key_the_loader_accepts(pages: dict[str, str]) -> None:
    from interlock.catalog.overrides import _MODEL_KEYS, _PRICE_KEYS, _ROUTE_KEYS
    from interlock.config import _TOP_KEYS
    from interlock.simulator.settings import _KNOWN_KEYS
    from interlock.vendors.registry import VENDOR_TABLE

    listed = set(re.findall(r"^\| `([^`]+)` \|", pages["config"], re.M))
    segments = {part.rstrip("[]") for key in listed for part in key.split(".")}
    accepted = _only_keys() | set(_TOP_KEYS) | set(_KNOWN_KEYS) | set(VENDOR_TABLE.setting_keys)
    accepted |= _MODEL_KEYS | _ROUTE_KEYS | _PRICE_KEYS  # the catalog overrides: plain data
    assert len(accepted) > 100
    assert {"per_user", "token_url", "tools", "rename", "vendor_model_id", "tiers"} <= segments
    missing = sorted(accepted - segments)
    assert not missing, f"config keys the loader accepts but config.md does not list: {missing}"
    # And by full path, for what the traced loader saw.
    _, sections = ref.config_keys()
    for section, allowed in sections.items():
        for key in allowed:
            assert ".".join((*section, key)).replace(".[]", "[]") in listed or any(
                k.endswith(f".{key}") for k in listed), (section, key)


def test_config_entries_have_a_type_and_an_example(pages: dict[str, str]) -> None:
    keys, _ = ref.config_keys()
    assert not [k.dotted for k in keys if k.type == "any"], "give these keys a type in RAW_TYPES"
    for key in keys:
        assert key.type == "mapping" or ref.config_example(key, keys), key.dotted
    assert "| `server.port` | integer | `8400` | The TCP port to listen on; `--port` wins. | `server: {port: 8400}` |" \
        in pages["config"]
    dotted = {k.dotted for k in keys}
    for table in (ref.DEFAULT_TEXT, ref.EXAMPLES, ref.RAW_TYPES, ref.PLAIN_TYPES):
        assert not set(table) - dotted, f"entries for keys the loader no longer reads: {set(table) - dotted}"
    sections = {d.rsplit(".", 1)[0] for d in dotted}
    assert not set(ref.EXAMPLE_WITH) - dotted - sections, "EXAMPLE_WITH names keys the loader no longer reads"


def test_config_keys_have_a_meaning(pages: dict[str, str]) -> None:
    """Every key the settings read says what it does: a key added to a settings parser (or to a section parsed
    as plain data) without an entry in MEANINGS (scripts/docs_reference/config_meanings.py) fails here."""
    keys, _ = ref.config_keys()
    dotted = {k.dotted for k in keys}
    assert {"server.trusted_proxies", "mcp.servers.<name>.url", "catalog.models.<name>.routes.<name>.price.input"} \
        <= dotted
    missing = sorted(d for d in dotted if len(ref.MEANINGS.get(d, "").split()) < 3)
    assert not missing, f"config keys with no meaning (add them to MEANINGS): {missing}"
    stale = sorted(set(ref.MEANINGS) - dotted)
    assert not stale, f"MEANINGS describes keys the loader no longer reads: {stale}"
    # And the page shows it: | key | type | default | meaning | example |
    rows = {line.split(" | ")[0][3:-1]: line.split(" | ") for line in pages["config"].splitlines()
            if line.startswith("| `")}
    assert set(rows) == dotted
    for key, cells in rows.items():
        assert len(cells) == 5 and cells[3] == ref.MEANINGS[key].replace("|", "&#124;"), key


# ------------------------------------------------------------------------------------------------- cli

def test_cli_lists_every_command_and_option(pages: dict[str, str]) -> None:
    from interlock.cli import build_parser

    commands = ref.cli_commands()
    assert len(commands) > 10
    names = [name for name, _, _ in commands]
    assert "interlock serve" in names and "interlock models" in names
    for name, help_, parser in commands:
        assert f"## `{name}`" in pages["cli"]
        assert help_ or name == "interlock" or parser.description, f"{name} has no help"
        for action in parser._actions:
            for option in action.option_strings:
                assert option in pages["cli"], (name, option)
        for names_, meaning, _ in ref.cli_options(parser):
            if names_ != "-h, --help":
                assert meaning, f"{name} {names_} has no help text (add it to the parser or CLI_HELP)"
    assert build_parser().prog == "interlock"


# ------------------------------------------------------------------------------------------- endpoints

def test_endpoints_list_every_route_and_operation(pages: dict[str, str]) -> None:
    routes = ref.gateway_routes()
    assert {"/v1/chat/completions", "/docs/*", "/metrics", "/admin/v1/keys/*"} <= {r.path for r in routes}
    for route in routes:
        assert route.meaning, f"route {route.path} has no entry in ROUTES"
        assert f"| `{route.path}` |" in pages["endpoints"]
    stale = set(ref.ROUTES) - {r.path for r in routes}
    assert not stale, f"ROUTES describes routes the gateway no longer has: {stale}"
    for _, method, path, _ in ref.openapi_operations():
        assert f"| {method} | `{path}` |" in pages["endpoints"]
        assert ref.route_of(path, routes) is not None, f"OpenAPI path {path} is served by no route"


# -------------------------------------------------------------------------- headers, errors, metrics

def test_headers_list_every_x_interlock_header_in_the_source(pages: dict[str, str]) -> None:
    literal = {m for _, text in _sources() for m in re.findall(r"[\"'](x-interlock-[a-z0-9-]+)[\"']", text)}
    assert len(literal) > 15
    missing = sorted(h for h in literal if f"| `{h}` |" not in pages["headers"])
    assert not missing, missing
    response, request = ref.scanned_headers()
    for header in response:
        assert ref.HEADERS.get(header), f"response header {header} has no meaning in HEADERS"
    for header in request:
        assert ref.REQUEST_HEADERS.get(header), f"request header {header} has no meaning in REQUEST_HEADERS"
    assert not set(ref.HEADERS) - response, "HEADERS describes headers the code no longer sets"
    assert not set(ref.REQUEST_HEADERS) - request, "REQUEST_HEADERS describes headers the code no longer reads"


def test_errors_list_every_code_in_the_source(pages: dict[str, str]) -> None:
    codes = {m for _, text in _sources() for m in re.findall(r"\bcode=\"([a-z_]+)\"", text)}
    codes |= {m for _, text in _sources() for m in re.findall(r"^\s+code = \"([a-z_]+)\"", text, re.M)}
    assert len(codes) > 40
    missing = sorted(c for c in codes if f"| `{c}` |" not in pages["errors"])
    assert not missing, missing
    for error in ref.error_codes():
        assert error.status and error.type, error
        assert len(error.meaning.split()) >= 3 and "…" not in error.meaning and error.meaning != "A failure.", \
            f"{error.code}: weak meaning {error.meaning!r}: add one to ERROR_MEANINGS"


def test_metrics_have_type_and_meaning() -> None:
    metrics = ref.metrics_list()
    assert len(metrics) > 20
    for m in metrics:
        assert m.kind in ("counter", "gauge", "histogram") and len(m.help.split()) >= 3, m


# A running gateway: what it actually answers must be on the pages.

@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("reference"), "simulator: {enabled: true}\ncache: {enabled: true}\n")
    yield gw
    gw.stop()


def test_live_answers_use_only_listed_headers(live: GatewayProcess, pages: dict[str, str]) -> None:
    client = openai.OpenAI(base_url=live.base_url, api_key=MASTER_KEY, max_retries=0)
    seen: set[str] = set()
    for _ in range(2):  # the second is a cache hit
        raw = client.chat.completions.with_raw_response.create(
            model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "hello"}])
        seen |= {h.lower() for h in raw.headers if h.lower().startswith(("x-interlock-", "x-ratelimit-"))}
    assert {"x-interlock-request-id", "x-interlock-cache"} <= seen
    missing = sorted(h for h in seen if f"| `{h}` |" not in pages["headers"])
    assert not missing, missing


def test_live_metrics_are_all_listed(live: GatewayProcess, pages: dict[str, str]) -> None:
    with urllib.request.urlopen(f"{live.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert "interlock_requests_total" in names
    missing = sorted(n for n in names if f"| `{n}` |" not in pages["metrics"])
    assert not missing, missing


#: Examples the loader cannot accept here, and why: the check needs what a deployment has.
_EXAMPLE_NEEDS = {
    "guardrails.ner.": "a spaCy pipeline, which the operator installs",
    "vendors.<name>.credentials_file": "a Google service-account file on disk",
    "vendors.<name>.profile": "an AWS profile instead of the static keys the base config gives Bedrock",
    "store": "a PostgreSQL server with that role and database (the gateway checks it at start)",
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        elif isinstance(value, list) and isinstance(base.get(key), list) and value and base[key] \
                and isinstance(value[0], dict) and isinstance(base[key][0], dict):
            _merge(base[key][0], value[0])
        else:
            base[key] = value
    return base


def test_config_examples_are_accepted_by_the_loader(tmp_path: Path) -> None:
    """Each example, put into the generator's full config, loads and validates: no example is invalid."""
    from interlock.app import validate
    from interlock.config import ConfigError, load_settings
    from interlock.vendors.registry import VENDOR_TABLE

    keys, _ = ref.config_keys()
    base = yaml.safe_load(ref.RICH_CONFIG)
    env = {"INTERLOCK_HOME": str(tmp_path / "state"), "OTLP_TOKEN": "t", "MY_VENDOR_KEY": "k",
           "OPENAI_API_KEY": "k", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "k", "AWS_SESSION_TOKEN": "k",
           "MCP_TOKEN": "t", "WEATHER_API_KEY": "k"}
    refused = []
    checked = 0
    for key in keys:
        example = ref.config_example(key, keys)
        if example is None or any(key.dotted == p or (p.endswith(".") and key.dotted.startswith(p))
                                  for p in _EXAMPLE_NEEDS):
            continue
        path = tmp_path / "interlock.yaml"
        path.write_text(yaml.safe_dump(_merge(copy.deepcopy(base), yaml.safe_load(example))))
        try:
            validate(load_settings(path, vendor_table=VENDOR_TABLE, environ=env))
            checked += 1
        except (ConfigError, ValueError) as exc:
            refused.append(f"{key.dotted}: {example}: {exc}")
    assert not refused, "\n".join(refused)
    assert checked > 150
