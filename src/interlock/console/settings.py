"""The console's settings, read from ``console:`` (``enabled``, ``public_catalog``, ``session_hours``).

Validated once in the launching process (``app.validate``) and again in each worker,
so a typo fails ``interlock serve`` with the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlock.config import Settings

CONSOLE_KEYS = ("enabled", "public_catalog", "session_hours")
#: The longest a sign-in may last: a week.
MAX_SESSION_HOURS = 168.0


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    #: ``false`` removes every console route (``/models``, ``/console/...``, ``/static/...``): they answer 404.
    enabled: bool = True
    #: Catalog pages readable without a key; ``false`` sends a browser without a session to the sign-in page.
    public_catalog: bool = True
    #: How long a sign-in lasts before the session expires (hours, at most a week).
    session_hours: float = 12.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleSettings:
        sec = settings.section("console")
        sec.only(*CONSOLE_KEYS)
        hours = sec.number("session_hours", 12.0, positive=True)
        if hours > MAX_SESSION_HOURS:
            raise sec.error(f"must be at most {MAX_SESSION_HOURS:g} (a week), got {hours:g}", "session_hours")
        return cls(enabled=sec.boolean("enabled", True), public_catalog=sec.boolean("public_catalog", True),
                   session_hours=hours)
