"""The console's settings, read from ``console:`` (``enabled``, ``public_catalog``).

Validated once in the launching process (``app.validate``) and again in each worker,
so a typo fails ``interlock serve`` with the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlock.config import Settings

CONSOLE_KEYS = ("enabled", "public_catalog")


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    #: ``false`` removes every console route (``/models``, ``/static/...``): they answer 404.
    enabled: bool = True
    #: Catalog pages readable without a key; ``false`` asks for one (the sign-in page is the next increment).
    public_catalog: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleSettings:
        sec = settings.section("console")
        sec.only(*CONSOLE_KEYS)
        return cls(enabled=sec.boolean("enabled", True), public_catalog=sec.boolean("public_catalog", True))
