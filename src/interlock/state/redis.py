"""The ``redis:`` config section, shared by routing's live statistics and governance's counters.

It is either a URL or a mapping::

    redis: redis://127.0.0.1:6379/0
    redis: {url: "redis://127.0.0.1:6379/0", key_prefix: "interlock:", sync_interval_s: 1}
"""

from __future__ import annotations

from dataclasses import dataclass

from interlock.config import Settings
from interlock.configfile import ConfigError, MissingEnv, expand_env

_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    key_prefix: str = "interlock:"
    sync_interval_s: float = 1.0


def redis_settings(settings: Settings) -> RedisSettings | None:
    """The section, checked (a mistake names file, line and key), or None when there is none."""
    doc = settings.document
    raw = doc.data.get("redis") if doc is not None and isinstance(doc.data, dict) else None
    if raw is None:
        return None
    if isinstance(raw, str):
        where = doc.where(("redis",)) if doc is not None else "(defaults)"
        try:
            url = expand_env(raw, settings.environ)
        except MissingEnv as exc:
            raise ConfigError(f"{where}: redis: environment variable {exc.name} is not set") from None
        if not url.startswith(_SCHEMES):
            raise ConfigError(f"{where}: redis: expected a redis://, rediss:// or unix:// URL, got {url!r}")
        return RedisSettings(url)
    section = settings.section("redis")
    section.only("url", "key_prefix", "sync_interval_s")
    configured = section.string("url")
    if not configured:
        raise section.error("a Redis URL is required (redis://host:6379/0)", "url")
    if not configured.startswith(_SCHEMES):
        raise section.error(f"expected a redis://, rediss:// or unix:// URL, got {configured!r}", "url")
    return RedisSettings(
        url=configured,
        key_prefix=section.string("key_prefix", "interlock:") or "interlock:",
        sync_interval_s=section.number("sync_interval_s", 1.0, positive=True),
    )
