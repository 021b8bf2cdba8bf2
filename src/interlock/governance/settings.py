"""The ``governance:`` config section and the counters' backend (memory, or the ``redis:`` section).

::

    governance:
      alert_webhook: https://hooks.example.com/interlock   # POSTed a JSON event per budget alert
      poll_interval_s: 0.5     # how often each worker checks whether definitions changed
      flush_interval_s: 1.0    # how often settled spend is written to the store
      unpriced: refuse         # a hard budget refuses routes with no known price; "allow" admits them at $0

Validated in the launching process (``app.validate``) so a typo fails the start.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlock.config import Settings
from interlock.state.redis import redis_settings

KEYS = ("alert_webhook", "poll_interval_s", "flush_interval_s", "unpriced")


@dataclass(frozen=True, slots=True)
class GovernanceSettings:
    alert_webhook: str | None = None
    poll_interval_s: float = 0.5
    flush_interval_s: float = 1.0
    redis_url: str | None = None
    redis_prefix: str = "interlock:gov:"
    workers: int = 1
    store_url: str | None = None
    #: Whether a caller under a hard budget may use a route whose price is unknown (its cost counts as 0).
    allow_unpriced: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GovernanceSettings:
        sec = settings.section("governance")
        sec.only(*KEYS)
        hook = sec.string("alert_webhook")
        if hook is not None and not hook.startswith(("http://", "https://")):
            raise sec.error(f"expected an http:// or https:// URL, got {hook!r}", "alert_webhook")
        poll = sec.number("poll_interval_s", 0.5, positive=True)
        if poll > 1.0:
            raise sec.error(f"expected at most 1 second (changes must reach every worker within a second), "
                            f"got {poll:g}", "poll_interval_s")
        redis = redis_settings(settings)
        return cls(
            alert_webhook=hook,
            poll_interval_s=poll,
            flush_interval_s=sec.number("flush_interval_s", 1.0, positive=True),
            redis_url=redis.url if redis is not None else None,
            redis_prefix=f"{redis.key_prefix}gov:" if redis is not None else "interlock:gov:",
            workers=settings.server.workers,
            store_url=settings.store_url,
            allow_unpriced=sec.choice("unpriced", "refuse", ("refuse", "allow")) == "allow",
        )
