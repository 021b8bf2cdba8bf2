"""Write the part of OpenAI's OpenAPI document that interlock answers with to tests/conformance.

Usage: python scripts/openai_spec_subset.py [SOURCE] [--out PATH]

SOURCE is a path to openapi.yaml or a git directory of openai/openai-openapi (the file is read from
its HEAD and the commit recorded); the default is the mirror at /work/.mirror/openai+openai-openapi/repo.
The output holds only the component schemas reachable from the roots below, without descriptions
and examples, with sorted keys, so a regeneration diffs cleanly.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = "/work/.mirror/openai+openai-openapi/repo"
DEFAULT_OUT = ROOT / "tests" / "conformance" / "openai_subset.json"

#: The schemas of every answer interlock gives on an OpenAI path (see tests/conformance/check.py).
ROOTS = (
    "CreateChatCompletionResponse",        # POST /chat/completions
    "CreateChatCompletionStreamResponse",  # its text/event-stream chunks
    "Response",                            # POST /responses, GET /responses/{id}
    "ResponseStreamEvent",                 # POST /responses stream events (a union)
    "ResponseItemList",                    # GET /responses/{id}/input_items
    "CreateEmbeddingResponse",             # POST /embeddings
    "Model",                               # GET /models/{model}
    "ListModelsResponse",                  # GET /models
    "ErrorResponse",                       # every error body
    "Error",                               # DELETE /responses/{id} 404
    "DeleteModelResponse",                 # the only delete shape the document gives
)

#: Keys that document but do not constrain; left out to keep the file small.
_DROP = frozenset({"description", "example", "examples", "x-oaiMeta", "x-oaiExpandable", "x-oaiTypeLabel",
                   "title", "deprecated", "x-stainless-const", "x-stainless-naming", "x-stainless-any"})
_REF = "#/components/schemas/"


def _load(source: str) -> tuple[dict[str, Any], str, str]:
    """The document, the commit it came from (or "unknown") and that commit's date."""
    path = Path(source)
    if path.is_dir():
        text = subprocess.run(["git", "-C", source, "show", "HEAD:openapi.yaml"], check=True,
                              capture_output=True, text=True).stdout
        commit, date = subprocess.run(["git", "-C", source, "log", "-1", "--format=%H %cI", "HEAD"],
                                      check=True, capture_output=True, text=True).stdout.split()
    else:
        text, commit, date = path.read_text(), "unknown", "unknown"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader), commit, date


def _strip(node: Any) -> Any:
    """``node`` without documentation keys; property names named like them are kept."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: _strip(sub) for name, sub in value.items()}
            elif key not in _DROP:
                out[key] = _strip(value)
        return out
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith(_REF):
                raise SystemExit(f"unsupported $ref {ref}")
            found.add(ref[len(_REF):])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)


def subset(doc: dict[str, Any]) -> dict[str, Any]:
    """The component schemas reachable from ROOTS."""
    schemas: dict[str, Any] = doc["components"]["schemas"]
    keep: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = _strip(schemas[name])
        found: set[str] = set()
        _refs(keep[name], found)
        todo.extend(sorted(found - keep.keys()))
    return keep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    doc, commit, date = _load(args.source)
    out: dict[str, Any] = {"source": {"repository": "openai/openai-openapi", "file": "openapi.yaml", "commit": commit,
                      "date": date, "openapi": doc.get("openapi"), "roots": list(ROOTS)},
           "components": {"schemas": subset(doc)}}
    args.out.write_text(json.dumps(out, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(out['components']['schemas'])} schemas from {commit} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
