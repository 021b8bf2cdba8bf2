"""Settings of an OpenAI-compatible vendor: Azure's ``api_version`` and model → deployment names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from interlock.config import VendorSettings, VendorType
from interlock.configfile import Section
from interlock.core.vendor import VendorSpec
from interlock.vendors.openai_compat.specs import DEFAULT_API_VERSION


@dataclass(frozen=True, slots=True)
class OpenAICompatSettings(VendorSettings):
    #: Azure: the ``api-version`` query parameter; with ``auth: api-key`` it selects Azure's deployment URLs.
    api_version: str | None = None
    #: Azure: model → deployment name (a model not listed is its own deployment).
    deployments: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


KEYS = ("api_version", "deployments")


def read(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
         base_url: str | None) -> tuple[OpenAICompatSettings, str | None]:
    default = DEFAULT_API_VERSION.get(spec.id)
    if section is None:
        return OpenAICompatSettings(default), base_url
    return OpenAICompatSettings(section.string("api_version", default),
                                MappingProxyType(section.string_map("deployments"))), base_url


SETTINGS = VendorType(KEYS, read)
