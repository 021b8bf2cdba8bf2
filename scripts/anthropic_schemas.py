"""Write JSON Schemas of Anthropic's answers, derived from the installed ``anthropic`` package's types.

Usage: python scripts/anthropic_schemas.py [--out PATH]

Pydantic schemas allow extra fields (kept: Anthropic adds fields over time). The Python SDK marks
fields that the API always sends but may set to null as Optional with a default of None, which hides
their absence; ALWAYS_PRESENT lists them, read from the TypeScript SDK, and they are made required.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anthropic
from anthropic import types
from pydantic import TypeAdapter

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "conformance" / "anthropic_schemas.json"

#: Root name -> the SDK type whose schema it is.
ROOTS: dict[str, Any] = {
    "Message": types.Message,
    "RawMessageStreamEvent": types.RawMessageStreamEvent,
    "MessageTokensCount": types.MessageTokensCount,
    "ErrorResponse": types.ErrorResponse,
    "ModelInfo": types.ModelInfo,
}

#: Fields declared ``name: T | null`` (no ``?``, so always present) or ``name: T`` where the Python SDK
#: has Optional, per schema title. Read from anthropics/anthropic-sdk-typescript
#: src/resources/messages/messages.ts, src/resources/shared.ts and src/resources/models.ts at
#: commit bfa9197f0182084941052be9752c948638421601 (2026-08-19).
ALWAYS_PRESENT: dict[str, tuple[str, ...]] = {
    "Message": ("container", "stop_details", "stop_reason", "stop_sequence"),
    "Usage": ("cache_creation", "cache_creation_input_tokens", "cache_read_input_tokens", "inference_geo",
              "output_tokens_details", "server_tool_use", "service_tier"),
    "MessageDeltaUsage": ("cache_creation_input_tokens", "cache_read_input_tokens", "input_tokens",
                          "output_tokens_details", "server_tool_use"),
    "TextBlock": ("citations",),
    "ToolUseBlock": ("caller",),  # `caller: DirectCaller | ServerToolCaller | ...` (not nullable)
    "RefusalStopDetails": ("category", "explanation"),
    "CitationCharLocation": ("document_title", "file_id"),
    "CitationPageLocation": ("document_title", "file_id"),
    "CitationContentBlockLocation": ("document_title", "file_id"),
    "CitationsSearchResultLocation": ("title",),
    "CitationsWebSearchResultLocation": ("title",),
    "DocumentBlock": ("citations", "title"),
    "Container": ("skills",),
    "WebSearchResultBlock": ("page_age",),
    "WebFetchBlock": ("retrieved_at",),
    "ErrorResponse": ("request_id",),
    "ModelInfo": ("capabilities", "max_input_tokens", "max_tokens"),
}


def _require(defs: dict[str, Any]) -> list[str]:
    """Mark ALWAYS_PRESENT fields required in every definition of that title; returns what was missed."""
    missed = []
    for title, fields in ALWAYS_PRESENT.items():
        schema = defs.get(title)
        if schema is None:
            missed.append(title)
            continue
        for field in fields:
            if field not in schema.get("properties", {}):
                missed.append(f"{title}.{field}")
                continue
            required = schema.setdefault("required", [])
            if field not in required:
                required.append(field)
        schema["required"] = sorted(schema["required"])
    return missed


def build() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    roots: dict[str, Any] = {}
    for name, tp in ROOTS.items():
        schema = TypeAdapter(tp).json_schema(ref_template="#/$defs/{model}")
        for key, sub in schema.pop("$defs", {}).items():
            if key in defs and defs[key] != sub:
                raise SystemExit(f"two different definitions named {key}")
            defs[key] = sub
        if schema.get("title") == name and "$ref" not in schema:
            defs[name] = schema
            roots[name] = {"$ref": f"#/$defs/{name}"}
        else:
            roots[name] = schema
    missed = _require(defs)
    if missed:
        raise SystemExit(f"ALWAYS_PRESENT names fields the SDK does not have: {missed}")
    return {"source": {"package": "anthropic", "version": anthropic.__version__,
                       "always_present_from": "anthropics/anthropic-sdk-typescript@bfa9197f"},
            "roots": roots, "$defs": defs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    out = build()
    args.out.write_text(json.dumps(out, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(out['$defs'])} definitions from anthropic {anthropic.__version__} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
