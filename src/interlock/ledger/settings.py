"""The request log's settings, read from ``logging:`` and ``store:``.

``config.py`` only checks which keys exist; the values are validated here, once
in the launching process (``app.validate``) and again in each worker, so a bad
value fails ``interlock serve`` with the file and line instead of a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from interlock.config import Settings
from interlock.core.context import RequestContext

Level = Literal["off", "metadata", "full"]
_LEVELS: dict[str, Level] = {"off": "off", "metadata": "metadata", "full": "full"}
LEVELS: tuple[Level, ...] = ("off", "metadata", "full")


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: Level = "metadata"
    #: Zero data retention: content is never stored, whatever the level says.
    zero_data_retention: bool = False
    retention_days: float | None = None
    flush_interval: float = 1.0
    batch_size: int = 512
    store_url: str | None = field(default=None, repr=False)
    state_dir: Path = Path(".interlock")
    #: Strings that must never reach the log (vendor credentials), scrubbed from messages and content.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def enabled(self) -> bool:
        return self.level != "off"

    @property
    def spill_dir(self) -> Path:
        return self.state_dir / "ledger-spill"

    def level_for(self, ctx: RequestContext) -> Level:
        """The content level for one request.

        The project's level (``ctx.log_level``, set by governance) wins over the
        global one. Zero data retention always wins: it caps the level at
        ``metadata`` so no content is captured on any path, errors included.
        """
        level: Level = self.level
        project_level = _LEVELS.get(ctx.log_level or "")
        if project_level is not None:
            level = project_level  # the caller's project decides (set by governance at admit)
        if ctx.zero_data_retention or self.zero_data_retention:
            return "metadata" if level != "off" else "off"
        return level

    @classmethod
    def from_settings(cls, settings: Settings) -> LogSettings:
        sec = settings.section("logging")
        # YAML reads a bare ``off`` as false: accept it as the level users meant.
        level = "off" if sec.raw("level") is False else sec.choice("level", "metadata", LEVELS)
        if not sec.boolean("enabled", True):
            level = "off"
        interval = sec.number("flush_interval", 1.0, positive=True)
        if interval > 1.0:
            raise sec.error(f"expected at most 1 second (a hard kill loses at most this much), got {interval:g}",
                            "flush_interval")
        retention = sec.raw("retention_days")
        days = sec.number("retention_days", 0.0, positive=True) if retention is not None else None
        secrets = tuple(sorted({v.api_key for v in settings.vendors.values() if v.api_key and len(v.api_key) >= 6}))
        return cls(
            level=level,  # type: ignore[arg-type]
            zero_data_retention=sec.boolean("zero_data_retention", False),
            retention_days=days,
            flush_interval=interval,
            batch_size=sec.integer("batch_size", 512, minimum=1),
            store_url=settings.store_url,
            state_dir=settings.server.state_dir,
            secrets=secrets,
        )
