"""Budget alerts: a log line and, when ``governance.alert_webhook`` is set, a JSON POST.

An alert fires when a settle moves a budget's spend across a threshold
(default 50, 80 and 90 % of the amount, and always 100 %). Spend counters are
incremented atomically and each settle knows its own amount, so exactly one
settle - in one process, among all replicas - sees ``before < threshold <= after``:
no coordination is needed to alert once. Webhook delivery runs in the
background through the gateway's own HTTP transport and never delays a response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from interlock.core.errors import GatewayError
from interlock.core.vendor import Timeouts
from interlock.governance.model import Budget, usd_str
from interlock.vendors.transport import HttpTransport

log = logging.getLogger("interlock.governance")
WEBHOOK_TIMEOUTS = Timeouts(connect=3.0, first_byte=5.0, idle=5.0, total=10.0)


def crossed(budget: Budget, before: int, after: int) -> list[int]:
    """Thresholds (percent) that ``before -> after`` nano-USD of spend crossed upwards."""
    amount = budget.amount_nano
    return [t for t in (*budget.thresholds, 100) if before * 100 < t * amount <= after * 100]


class Alerts:
    def __init__(self, http: HttpTransport | None, webhook: str | None) -> None:
        self.http = http
        self.webhook = webhook
        self._tasks: set[asyncio.Task[None]] = set()
        #: Every alert emitted by this process (the admin API shows the recent ones).
        self.recent: list[dict[str, Any]] = []

    def emit(self, budget: Budget, counter: str, period: str, threshold: int, spent_nano: int) -> None:
        event = {
            "type": "budget.threshold",
            "budget_id": budget.id,
            "scope": budget.scope,
            "subject": counter or budget.subject,
            "period": budget.period,
            "period_key": period,
            "mode": budget.mode,
            "threshold_percent": threshold,
            "amount_usd": usd_str(budget.amount_micro),
            "spent_usd": usd_str(spent_nano // 1000),
            "at": time.time(),
        }
        log.warning("budget alert: %s reached %d%% (%s of %s USD, %s)", budget.describe(), threshold,
                    event["spent_usd"], event["amount_usd"], budget.mode)
        self.recent.append(event)
        del self.recent[:-100]
        if self.webhook and self.http is not None:
            try:
                task = asyncio.get_running_loop().create_task(self._post(event))
            except RuntimeError:
                return  # no loop (a CLI or a unit test): the log line is the alert
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, event: dict[str, Any]) -> None:
        assert self.http is not None and self.webhook is not None
        try:
            resp = await self.http.request("POST", self.webhook, {"content-type": "application/json"},
                                           orjson.dumps(event), WEBHOOK_TIMEOUTS)
            await resp.read()
            if resp.status >= 300:
                log.warning("budget alert webhook answered %d", resp.status)
        except GatewayError as exc:
            log.warning("budget alert webhook failed: %s", exc.message)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
