"""Where a route runs: vendor region names, the jurisdictions they belong to, and region rules.

A route's regions are the vendors' own names (``eu-central-1``, ``westeurope``,
``europe-west4``); a project, a key or a request restricts routing to a set of
names, each a jurisdiction (``eu``, ``us``, ``uk``, ...) or a region. A route
is allowed when **every** region it may run in is covered (a multi-region route
that might serve from outside is not), and a route with no known region is never
allowed under a rule: residency is a guarantee, so unknown means no.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: Jurisdictions as interlock groups regions. ``eu`` is the EU and the EEA (GDPR's territory);
#: Switzerland and the UK are their own. Operators extend or override with ``regions.jurisdictions``.
JURISDICTIONS = ("eu", "us", "uk", "ch", "ca", "apac", "sa", "me", "af")

_AWS = {
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-gov-east-1", "us-gov-west-1"),
    "ca": ("ca-central-1", "ca-west-1"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1", "eu-south-1", "eu-south-2"),
    "uk": ("eu-west-2",),
    "ch": ("eu-central-2",),
    "apac": ("ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
             "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-south-1", "ap-south-2", "ap-east-1"),
    "sa": ("sa-east-1",),
    "me": ("me-south-1", "me-central-1", "il-central-1"),
    "af": ("af-south-1",),
}
_AZURE = {
    "us": ("eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northcentralus", "southcentralus",
           "westcentralus"),
    "ca": ("canadaeast", "canadacentral"),
    "eu": ("westeurope", "northeurope", "francecentral", "francesouth", "germanywestcentral", "germanynorth",
           "swedencentral", "polandcentral", "italynorth", "spaincentral", "norwayeast", "norwaywest"),
    "uk": ("uksouth", "ukwest"),
    "ch": ("switzerlandnorth", "switzerlandwest"),
    "apac": ("japaneast", "japanwest", "australiaeast", "australiasoutheast", "koreacentral", "koreasouth",
             "southeastasia", "eastasia", "centralindia", "southindia", "westindia"),
    "sa": ("brazilsouth",),
    "me": ("uaenorth", "qatarcentral", "israelcentral"),
    "af": ("southafricanorth",),
}
_GCP = {
    "us": ("us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3",
           "us-west4"),
    "ca": ("northamerica-northeast1", "northamerica-northeast2"),
    "eu": ("europe-west1", "europe-west3", "europe-west4", "europe-west8", "europe-west9", "europe-west10",
           "europe-west12", "europe-north1", "europe-central2", "europe-southwest1"),
    "uk": ("europe-west2",),
    "ch": ("europe-west6",),
    "apac": ("asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3", "asia-south1",
             "asia-south2", "asia-southeast1", "asia-southeast2", "australia-southeast1", "australia-southeast2"),
    "sa": ("southamerica-east1", "southamerica-west1"),
    "me": ("me-west1", "me-central1", "me-central2"),
    "af": ("africa-south1",),
}
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def _builtin() -> dict[str, str]:
    table: dict[str, str] = {}
    for cloud in (_AWS, _AZURE, _GCP):
        for jurisdiction, regions in cloud.items():
            for region in regions:
                table[region] = jurisdiction
    return table


def valid_name(name: str) -> bool:
    """A region or jurisdiction name as vendors spell them: lower case, digits and hyphens."""
    return bool(_NAME.match(name))


class BadRegionName(ValueError):
    """A list of region names that cannot be read; ``index`` is the offending item's, when one is."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


def parse_names(value: object, *, comma: bool = False, empty: bool = False) -> tuple[str, ...]:
    """Region or jurisdiction names from a list (or one name; with ``comma``, a comma-separated string as a
    header carries them): stripped, lower-cased, each once. ``empty``: an empty list is allowed (it clears)."""
    items = (value.split(",") if comma else [value]) if isinstance(value, str) else value
    if not isinstance(items, list) or not (items or empty):
        raise BadRegionName("expected a non-empty list of region or jurisdiction names, e.g. [eu-central-1] or [eu]")
    out: list[str] = []
    for i, item in enumerate(items):
        name = item.strip().lower() if isinstance(item, str) else ""
        if not valid_name(name):
            raise BadRegionName(f"{item!r} is not a region or jurisdiction name (lower case letters, digits and "
                                "hyphens)", i)
        out.append(name)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class RegionTable:
    """Region name -> jurisdiction: the built-in clouds' regions plus the operator's own."""

    regions: Mapping[str, str] = field(default_factory=_builtin)

    def extended(self, extra: Mapping[str, Iterable[str]]) -> RegionTable:
        """This table with ``{jurisdiction: [region, ...]}`` added (an operator's entry wins over a built-in)."""
        table = dict(self.regions)
        for jurisdiction, regions in extra.items():
            for region in regions:
                table[region] = jurisdiction
        return RegionTable(table)

    @property
    def jurisdictions(self) -> frozenset[str]:
        return frozenset(JURISDICTIONS) | frozenset(self.regions.values())

    def jurisdiction(self, region: str) -> str | None:
        """The jurisdiction of a region; a jurisdiction name declared as a region (``eu``) is its own."""
        found = self.regions.get(region)
        if found is None and region in self.jurisdictions:
            return region
        return found

    def known(self, name: str) -> bool:
        return name in self.regions or name in self.jurisdictions

    def check_known(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """``names``, once each is in the table (a typo would otherwise admit, or refuse, every route)."""
        for i, name in enumerate(names):
            if not self.known(name):
                raise BadRegionName(f"unknown region or jurisdiction {name!r}; jurisdictions: "
                                    f"{', '.join(sorted(self.jurisdictions))} (more in the config's "
                                    "regions.jurisdictions)", i)
        return names

    def covers(self, allowed: frozenset[str], region: str) -> bool:
        """Whether ``region`` is inside the set ``allowed`` (of regions and jurisdictions)."""
        return region in allowed or self.jurisdiction(region) in allowed

    def admits(self, allowed: frozenset[str], route_regions: tuple[str, ...]) -> bool:
        """A route is allowed when it has regions and every one of them is covered."""
        return bool(route_regions) and all(self.covers(allowed, r) for r in route_regions)

    def narrower(self, allowed: frozenset[str], wanted: Iterable[str]) -> list[str]:
        """The names of ``wanted`` that reach outside ``allowed`` (empty: ``wanted`` only narrows it)."""
        return [name for name in wanted if not self.covers(allowed, name)
                # A jurisdiction asked for is inside only when the whole jurisdiction is allowed.
                or (name in self.jurisdictions and name not in self.regions and name not in allowed)]


BUILTIN_REGIONS = RegionTable()


@dataclass(frozen=True, slots=True)
class RegionRule:
    """One restriction on where a request may run: whose it is (for the explanation) and the names allowed."""

    #: "the project's", "the key's", "the request's": reads as "... not in the project's regions eu".
    who: str
    allowed: frozenset[str]

    def text(self) -> str:
        return ", ".join(sorted(self.allowed))


def route_label(vendor: str, regions: tuple[str, ...]) -> str:
    """``bedrock us-east-1`` / ``openai (no declared region)``, as the explanation names a route."""
    return f"{vendor} {', '.join(regions)}" if regions else f"{vendor} (no declared region)"
