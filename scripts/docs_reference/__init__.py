"""The docs site's reference pages, generated from the code at build time (an MkDocs hook: mkdocs.yml).

``docs/reference/{config,cli,endpoints,headers,errors,metrics}.md`` are not in the repository: each build
writes them from the definitions they describe, so they cannot drift from the code. One module per page:

- ``config.py``: every key the config loader reads (``config_keys.py``), found by running the loader (and
  every subsystem's settings parser, ``interlock.app.validate``) over the embedded default and a config that
  uses every section, with ``configfile.Section`` instrumented to record each key's path, type and default,
  and the keys each section accepts (``Section.only``). Sections parsed as plain data (``simulator:``, MCP
  servers and tool packs, ``catalog:``) come from the code that parses them. ``config_data.py`` holds what
  the loader cannot tell (examples, types of raw data), ``config_meanings.py`` what each key means.
- ``cli.py``: the ``interlock`` argparse parser (``interlock.cli.build_parser``), every command and option.
- ``endpoints.py``: the OpenAPI documents (``api/openapi.py``, ``governance/openapi.py``) plus every route a
  gateway registers (``Gateway._routes()``), from a gateway built with every optional route on.
- ``headers.py``, ``errors.py``, ``metrics.py``: scanned from the source (AST): the response headers the code
  sets, the ``GatewayError`` subclasses and the error codes raised, the metrics registered.

``python scripts/docs_reference [page ...]`` prints pages without building the site (``__main__.py``).
tests/test_docs_reference.py checks that each page lists everything the code defines and that every entry
has a meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .cli import CLI_HELP, cli_commands, cli_options, cli_page
from .common import GENERATED_NOTE, ROOT, SRC
from .config import config_example, config_page
from .config_data import (
    DEFAULT_TEXT,
    EXAMPLE_WITH,
    EXAMPLES,
    NAMES,
    PARTIAL_CONFIGS,
    PLAIN_TYPES,
    RAW_TYPES,
    RICH_CONFIG,
)
from .config_keys import MCP_PARSERS, ConfigKey, config_keys
from .config_meanings import MEANINGS
from .endpoints import ROUTES, Route, endpoints_page, gateway_routes, openapi_operations, route_of
from .errors import ERROR_FALLBACK, ERROR_MEANINGS, ERROR_STATUS, ErrorCode, error_codes, errors_page
from .headers import HEADERS, REQUEST_HEADERS, headers_page, scanned_headers
from .metrics import Metric, metrics_list, metrics_page

__all__ = [
    "CLI_HELP", "DEFAULT_TEXT", "ERROR_FALLBACK", "ERROR_MEANINGS", "ERROR_STATUS", "EXAMPLES", "EXAMPLE_WITH",
    "GENERATED_NOTE", "HEADERS", "MCP_PARSERS", "MEANINGS", "NAMES", "PAGES", "PARTIAL_CONFIGS", "PLAIN_TYPES", "RAW_TYPES", "REQUEST_HEADERS", "RICH_CONFIG", "ROOT", "ROUTES",
    "SRC", "ConfigKey", "ErrorCode", "Metric", "Route", "cli_commands", "cli_options", "cli_page", "config_example",
    "config_keys", "config_page", "endpoints_page", "error_codes", "errors_page", "gateway_routes", "headers_page",
    "metrics_list", "metrics_page", "on_files", "openapi_operations", "route_of", "scanned_headers",
]

PAGES: dict[str, Callable[[], str]] = {
    "reference/config.md": config_page,
    "reference/cli.md": cli_page,
    "reference/endpoints.md": endpoints_page,
    "reference/headers.md": headers_page,
    "reference/errors.md": errors_page,
    "reference/metrics.md": metrics_page,
}


def on_files(files: Any, config: Any) -> Any:
    """MkDocs hook: add the generated reference pages to the site's files."""
    from mkdocs.structure.files import File

    for uri, render in PAGES.items():
        if files.get_file_from_path(uri) is not None:
            raise ValueError(f"docs/{uri} is generated at build time (scripts/docs_reference/): remove the file")
        files.append(File.generated(config, uri, content=render()))
    return files
