"""How the catalog compiler reads Bedrock model ids: region prefixes and SKU versions are not other models."""

from __future__ import annotations

import re

from interlock.vendors.declaration import CatalogIds, split_catalog_id

_REGIONS = frozenset({"us", "eu", "apac", "global", "jp", "au", "ca", "us-gov"})


def split_id(raw: str) -> tuple[str | None, list[str]]:
    """``[region.]org.model[-v1:0]`` -> (org, variants): the cross-region prefix dropped, then version suffixes."""
    org: str | None = None
    if raw.count("/") == 1:
        org, (raw,) = split_catalog_id(raw)
    elif "." in raw:
        parts = raw.split(".")
        if parts[0] in _REGIONS and len(parts) > 2:
            parts = parts[1:]
        org, raw = parts[0], ".".join(parts[1:])
    variants = [raw]
    # "-v1:0" / "-1:0" / "-v1" are model versions of the SKU; "claude-opus-4-7" keeps its "-7".
    patterns = [r":\d+$", r"-v\d+$"] + ([r"-\d+$"] if re.search(r"-\d+:\d+$", raw) else [])
    for pattern in patterns:
        stripped = re.sub(pattern, "", variants[-1])
        if stripped != variants[-1]:
            variants.append(stripped)
    return org, variants


CATALOG_IDS = CatalogIds(split_id)
