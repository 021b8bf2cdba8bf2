"""How the catalog compiler reads Vertex AI model ids: ``-maas`` marks Model-as-a-Service, not another model."""

from __future__ import annotations

from interlock.vendors.declaration import CatalogIds, split_catalog_id


def split_id(raw: str) -> tuple[str | None, list[str]]:
    org, variants = split_catalog_id(raw)
    if variants[0].endswith("-maas"):
        variants.append(variants[0][: -len("-maas")])
    return org, variants


#: Vertex's ``publisher/model`` ids are read after the other vendors' ``org/model`` ids.
CATALOG_IDS = CatalogIds(split_id, org_ids_first=False)
