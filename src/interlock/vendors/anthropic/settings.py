"""Settings of an Anthropic Messages vendor: the ``anthropic-version`` it sends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from interlock.config import VendorSettings, VendorType
from interlock.configfile import Section
from interlock.core.vendor import VendorSpec


@dataclass(frozen=True, slots=True)
class AnthropicSettings(VendorSettings):
    #: Overrides the API version interlock sends (header on Anthropic, body field on Vertex AI).
    anthropic_version: str | None = None


def read(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
         base_url: str | None) -> tuple[AnthropicSettings, str | None]:
    return AnthropicSettings(section.string("anthropic_version") if section is not None else None), base_url


SETTINGS = VendorType(("anthropic_version",), read)
