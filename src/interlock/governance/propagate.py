"""Definitions changes reach every replica by Redis pub/sub; polling the store is the fallback.

A change of definitions (a key created or revoked, a budget changed: ``GovStore.change``) is announced on one
channel once its transaction has committed; every worker of every replica on the same Redis subscribes and
reloads at once (``Governance.poll``: one indexed read of the version, then the definitions). While the
subscription is up, the governance loop reads the version only every :data:`CATCH_UP_S` - for writers
that do not announce (``interlock keys`` and the other CLI commands without Redis in their config); while it is
down it polls at ``governance.poll_interval_s`` as before. Each transition is logged once and counted in
``/metrics`` (``interlock_governance_pubsub_up``); a worker that subscribes again reloads first, so it
catches up on what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from interlock.core.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("interlock.governance")

#: While subscribed, the version is still read this often (writers that do not announce).
CATCH_UP_S = 30.0
#: Waits between attempts to subscribe again, growing to the last.
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class Propagation:
    """One subscription per worker, and the announcement of this worker's changes."""

    def __init__(self, client: Any, channel: str, reload: Callable[[], Awaitable[Any]], poll_interval_s: float,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.client = client
        self.channel = channel
        self._reload = reload
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        #: Subscribed now: changes arrive as messages.
        self.up = False
        #: Transitions since start, for the metrics: (up, down).
        self.transitions = [0, 0]

    async def announce(self, version: int | None = None) -> None:
        """Tell every subscriber that the definitions changed (after the change committed). A failure is
        logged, never raised: the change is stored, and the others catch up by polling."""
        try:
            await self.client.publish(self.channel, str(version or ""))
        except (RedisError, OSError) as exc:
            log.warning("governance: announcing a definitions change on Redis failed (%s); other replicas "
                        "see it when they next poll", exc)

    async def run(self) -> None:
        """Subscribe, reload on every message; on a failure, poll meanwhile and subscribe again."""
        failures = 0
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._set(True)
                failures = 0
                await self.reload()  # what changed while not subscribed
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self.reload()
            except (RedisError, OSError) as exc:
                if self.up:
                    log.warning("governance: the Redis subscription for definitions changes was lost (%s); "
                                "polling the store every %g s until it is back", exc, self.poll_interval_s)
                self._set(False)
                await self.clock.sleep(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
                failures += 1
            finally:
                await asyncio.shield(_close(pubsub))

    def collect(self) -> list[tuple[str, str, str, list[tuple[dict[str, str], float]]]]:
        """``/metrics`` at scrape time: whether this worker is subscribed, and its transitions since start."""
        return [
            ("interlock_governance_pubsub_up", "gauge", "1 while this worker is subscribed to definitions changes "
             "on Redis; 0 while it polls the store instead.", [({}, float(self.up))]),
            ("interlock_governance_pubsub_transitions", "counter", "Times the subscription came up or was lost.",
             [({"to": "up"}, float(self.transitions[0])), ({"to": "down"}, float(self.transitions[1]))]),
        ]

    async def reload(self) -> None:
        """Reload the definitions; a store failure is logged and left to the polling loop to retry."""
        try:
            await self._reload()
        except Exception:  # the store may be down: the loop's next poll retries
            log.warning("governance: reloading definitions after a change announcement failed", exc_info=True)

    def _set(self, up: bool) -> None:
        if up != self.up:
            self.up = up
            self.transitions[0 if up else 1] += 1
            if up:
                log.info("governance: subscribed to definitions changes on Redis (%s)", self.channel)


async def _close(pubsub: Any) -> None:
    with contextlib.suppress(RedisError, OSError):  # the connection is gone already
        await pubsub.aclose()
