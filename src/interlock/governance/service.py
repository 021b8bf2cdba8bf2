"""The admit stage: allowed models, rate limits and budget reservations, then settle after the response.

``admit`` runs between routing and dispatch. It gathers the limits and budgets
that apply to the caller (key, project, model, tags, end user), and decides
them all at once in the counters (``counters.py``): every check passes and
everything is reserved, or nothing is. A hard budget reserves the request's
worst case (``estimate.py``); ``settle`` (from the handler's ``finally``, for
every outcome) releases the reservation and adds the exact cost, so
spent + reserved never passes a hard budget, whatever the concurrency.

Definitions live in the store; a background task per worker polls their
version and reloads within ``poll_interval_s``, flushes settled spend to the
store (so budgets survive restarts) and refreshes the durable spend that
counters start from. The hot path reads one immutable snapshot and never
waits on SQL.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from interlock.errors import BudgetExceeded, GatewayError, PermissionDenied, RateLimited
from interlock.governance.alerts import Alerts, crossed
from interlock.governance.counters import Check, MemoryCounters, RedisCounters, Settle
from interlock.governance.estimate import Estimator
from interlock.governance.model import Budget, Definitions, Limit, allowed, period_end, period_key
from interlock.governance.settings import GovernanceSettings
from interlock.governance.store import GovStore, SpendKey
from interlock.ledger.sink import parse_tags

if TYPE_CHECKING:
    from interlock.governance.auth import Authenticator
    from interlock.pipeline.context import RequestContext
    from interlock.vendors.transport import HttpTransport

log = logging.getLogger("interlock.governance")
WINDOW_S = 60
#: Soft budgets are checked with this limit: they never refuse, only report use.
UNLIMITED = 2**52
_PERIODS = ("daily", "weekly", "monthly", "lifetime")


@dataclass(slots=True)
class Reservation:
    items: list[Settle]
    #: (budget, counter subject, period key) for each budget item, in order, for alerts and durable spend.
    budgets: list[tuple[Budget, str, str]] = field(default_factory=list)
    member: str = ""


def _usd(nano: int) -> str:
    return f"{max(nano, 0) / 1e9:.6f}"


def _reset(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds >= 1 else f"{max(seconds, 0) * 1000:.0f}ms"


class Governance:
    def __init__(self, cfg: GovernanceSettings, store: GovStore, auth: Authenticator,
                 http: HttpTransport | None = None, *, redis_client: Any = None) -> None:
        self.cfg = cfg
        self.store = store
        self.auth = auth
        self.defs = Definitions()
        self.memory: MemoryCounters | None = None
        self.redis: RedisCounters | None = None
        if cfg.redis_url is not None:
            self.redis = RedisCounters(cfg.redis_url, cfg.redis_prefix, redis_client)
        else:
            self.memory = MemoryCounters()
        self.estimator = Estimator()
        self.alerts = Alerts(http, cfg.alert_webhook)
        self.pending: dict[SpendKey, int] = {}
        self.seeds: dict[SpendKey, int] = {}
        self._day = -1
        self._periods: dict[str, tuple[str, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._warned_version = -1
        #: Counter key names of the current minute, per limit id (built once a minute, not per request).
        self._window = -1
        self._keys: dict[str, tuple[str, str, str]] = {}

    # ----------------------------------------------------------------- lifecycle

    def load_now(self) -> None:
        """Load definitions and durable spend before serving.

        Runs in a short-lived event loop of its own (the worker's loop does not run yet), which is
        neither installed as the thread's loop nor left with open connections.
        """
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._load_all())
            loop.run_until_complete(self.store.release())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    async def _load_all(self) -> None:
        defs = await self.store.load()
        self.seeds = await self.store.spend(key for key, _ in self._period_keys(time.time()).values())
        self.apply(defs)
        if self.memory is not None:
            for (bid, counter, period), spent in self.seeds.items():
                self.memory.reseed(f"b:{bid}:{counter}:{period}", spent)

    def apply(self, defs: Definitions) -> None:
        self.defs = defs
        self.auth.load(defs)
        if defs.enforcing and self.cfg.workers > 1 and self.redis is None and self._warned_version != defs.version:
            self._warned_version = defs.version
            log.error("budgets or rate limits are defined but %d workers count them separately: configure "
                      "redis: so that every worker shares one set of counters", self.cfg.workers)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop_task is None:
            self._loop_task = loop.create_task(self._run())

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.alerts.drain()
        await self.flush()
        if self.redis is not None:
            await self.redis.close()
        await self.store.close()

    async def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(self.cfg.poll_interval_s)
            try:
                await self.poll()
                if time.monotonic() - last_flush >= self.cfg.flush_interval_s:
                    last_flush = time.monotonic()
                    await self.flush()
                    await self.refresh_seeds()
            except Exception:
                # The poller must outlive a store or Redis outage; counters keep working meanwhile.
                log.warning("governance: reloading definitions or flushing spend failed; will retry",
                            exc_info=True)

    async def poll(self) -> bool:
        """Reload the definitions if their version moved; True when it did."""
        if await self.store.version() == self.defs.version:
            return False
        self.apply(await self.store.load())
        return True

    async def flush(self) -> None:
        pending, self.pending = self.pending, {}
        try:
            await self.store.add_spend(pending)
        except BaseException:
            for key, value in pending.items():
                self.pending[key] = self.pending.get(key, 0) + value
            raise

    async def refresh_seeds(self) -> None:
        now = time.time()
        periods = self._period_keys(now)
        self.seeds = await self.store.spend(key for key, _ in periods.values())
        if self.memory is not None:
            self.memory.expire(int(now // WINDOW_S) - 1, {key for key, _ in periods.values()})

    def _period_keys(self, now: float) -> dict[str, tuple[str, float]]:
        """Period -> (key, end) for the current UTC day (every boundary is a midnight: cached per day)."""
        day = int(now // 86400)
        if day != self._day:
            self._periods = {p: (period_key(p, now), period_end(p, now) or 0.0) for p in _PERIODS}
            self._day = day
        return self._periods

    # ----------------------------------------------------------------- admit

    async def admit(self, ctx: RequestContext, request: dict[str, Any]) -> Reservation | None:
        principal = ctx.principal
        defs = self.defs
        if principal is None or not defs.projects:
            return None
        pid = principal.project
        key = principal.key
        if pid is not None:
            project = defs.projects.get(pid)
            if project is not None:
                if project.log_level is not None:
                    ctx.log_level = project.log_level
                if project.allowed_models or project.allowed_vendors:
                    self._restrict(ctx, project.allowed_models, project.allowed_vendors, f"project '{pid}'")
        if key is not None and key.allowed_models:
            self._restrict(ctx, key.allowed_models, (), f"API key {key.id}")
        if not defs.enforcing:
            return None
        if defs.tag_budgets:
            self._request_tags(ctx, request)
        limits: list[Limit] = []
        budgets: list[tuple[Budget, str]] = []
        on_l, on_b = defs.limits_on, defs.budgets_on
        if key is not None:
            root = defs.key_root.get(key.id, key.id)
            limits.extend(on_l.get(("key", root), ()))
            budgets.extend((b, "") for b in on_b.get(("key", root), ()))
        if pid is not None:
            limits.extend(on_l.get(("project", pid), ()))
            budgets.extend((b, "") for b in on_b.get(("project", pid), ()))
        if defs.model_limits:
            limits.extend(on_l.get(("model", ctx.requested_model or ""), ()))
            trace = ctx.routing
            if trace is not None and trace.order and trace.order[0].model_id != ctx.requested_model:
                limits.extend(on_l.get(("model", trace.order[0].model_id), ()))
        if defs.tag_budgets:
            for tag in ctx.tags:
                budgets.extend((b, "") for b in on_b.get(("tag", tag), ()))
        if defs.user_budgets and ctx.end_user:
            budgets.extend((b, "") for b in on_b.get(("end_user", ctx.end_user), ()))
            budgets.extend((b, ctx.end_user) for b in on_b.get(("end_user", "*"), ()))
        if not limits and not budgets:
            return None
        return await self._reserve(ctx, request, limits, budgets)

    async def _reserve(self, ctx: RequestContext, request: dict[str, Any], limits: list[Limit],
                       budgets: list[tuple[Budget, str]]) -> Reservation:
        now = time.time()
        tokens = worst = 0
        if budgets or any(lim.tpm for lim in limits):
            trace = ctx.routing
            targets = trace.order if trace is not None else (ctx.plan.targets if ctx.plan is not None else ())
            tokens, worst = self.estimator.worst(request, targets)
        window = int(now // WINDOW_S)
        if window != self._window:
            self._window, self._keys = window, {}
        keys = self._keys
        checks: list[Check] = []
        owners: list[Limit | Budget] = []
        res = Reservation([], member=ctx.id)
        for lim in limits:
            names = keys.get(lim.id)
            if names is None:
                names = keys[lim.id] = (f"r:{lim.id}:{window}", f"t:{lim.id}:{window}", f"c:{lim.id}")
            if lim.rpm:
                checks.append(Check("r", names[0], lim.rpm, 1, expire=2 * WINDOW_S))
                owners.append(lim)
            if lim.tpm:
                key = names[1]
                checks.append(Check("t", key, lim.tpm, tokens, expire=2 * WINDOW_S))
                owners.append(lim)
                res.items.append(Settle("t", key, tokens))
            if lim.concurrent:
                key = names[2]
                checks.append(Check("c", key, lim.concurrent, 1))
                owners.append(lim)
                res.items.append(Settle("c", key))
        periods = self._period_keys(now)
        for b, counter in budgets:
            period, end = periods[b.period]
            key = f"b:{b.id}:{counter}:{period}"
            seed = self.seeds.get((b.id, counter, period), 0)
            expire = end + 35 * 86400 if end else 0.0
            amount = worst if b.hard else 0
            checks.append(Check("b", key, b.amount_nano if b.hard else UNLIMITED, amount, seed, expire))
            owners.append(b)
            res.items.append(Settle("b", key, amount, 0, seed, expire))
            res.budgets.append((b, counter, period))
        try:
            if self.memory is not None:
                failed, used = self.memory.admit(checks, ctx.id, now)
            else:
                assert self.redis is not None
                failed, used = await self.redis.admit(checks, ctx.id, now)
        except (OSError, RedisError) as exc:
            # Fail closed: without the counters no hard budget or limit could be kept.
            raise GatewayError(f"The gateway cannot reach its rate-limit and budget counters ({exc}); the request "
                               "was not sent.", status=503, code="governance_unavailable") from None
        headers = self._limit_headers(checks, owners, used, now, failed)
        if failed:
            raise self._refusal(checks[failed - 1], owners[failed - 1], used[failed - 1], headers, now)
        warnings = [self._warning(c, o, u) for c, o, u in zip(checks, owners, used, strict=True)
                    if c.kind == "b"]
        warn = "; ".join(w for w in warnings if w)
        if warn:
            headers.append(("x-interlock-budget-warning", warn))
        if headers:
            ctx.gov_headers = headers
        return res

    def _restrict(self, ctx: RequestContext, models: tuple[str, ...], vendors: tuple[str, ...], who: str) -> None:
        trace = ctx.routing
        requested = ctx.requested_model or ""
        name_ok = not models or allowed(models, requested)
        if trace is None:
            if not name_ok:
                raise PermissionDenied(f"The {who} may not use model '{requested}'.", param="model",
                                       code="model_not_allowed")
            return
        keep = tuple(t for t in trace.order
                     if (not vendors or t.vendor.id in vendors)
                     and (name_ok or allowed(models, t.model_id, t.key)))
        if not keep:
            what = f"model '{requested}'" + (f" on vendors {', '.join(vendors)}" if vendors else "")
            raise PermissionDenied(f"The {who} may not use {what}.", param="model", code="model_not_allowed")
        if len(keep) != len(trace.order):
            trace.order = keep

    @staticmethod
    def _request_tags(ctx: RequestContext, request: dict[str, Any]) -> None:
        metadata = request.get("metadata")
        raw = metadata.get("tags") if isinstance(metadata, dict) else None
        if isinstance(raw, list):
            raw = ",".join(str(t) for t in raw)
        if isinstance(raw, str) and raw:
            ctx.tags = tuple(dict.fromkeys((*ctx.tags, *parse_tags(raw))))

    @staticmethod
    def _limit_headers(checks: list[Check], owners: list[Limit | Budget], used: list[int], now: float,
                       failed: int) -> list[tuple[str, str]]:
        best: dict[str, tuple[int, int]] = {}
        for c, u in zip(checks, used, strict=False):
            if c.kind not in "rt":
                continue
            # On a refusal nothing was counted; on success this request's amount was.
            remaining = max(c.limit - (u if failed else u + c.amount), 0)
            if c.kind not in best or remaining < best[c.kind][1]:
                best[c.kind] = (c.limit, remaining)
        reset = _reset(WINDOW_S - now % WINDOW_S)
        headers: list[tuple[str, str]] = []
        for kind, suffix in (("r", "requests"), ("t", "tokens")):
            if kind in best:
                limit, remaining = best[kind]
                headers += [(f"x-ratelimit-limit-{suffix}", str(limit)),
                            (f"x-ratelimit-remaining-{suffix}", str(remaining)),
                            (f"x-ratelimit-reset-{suffix}", reset)]
        return headers

    @staticmethod
    def _refusal(check: Check, owner: Limit | Budget, used: int, headers: list[tuple[str, str]],
                 now: float) -> GatewayError:
        if isinstance(owner, Budget):
            remaining = owner.amount_nano - used
            return BudgetExceeded(
                f"The {owner.describe()} does not cover this request: {_usd(used)} of {_usd(owner.amount_nano)} "
                f"USD is spent or reserved, and the request could cost up to {_usd(check.amount)} USD.",
                headers={"x-interlock-budget-limit-usd": _usd(owner.amount_nano),
                         "x-interlock-budget-remaining-usd": _usd(remaining)})
        scope = f"{owner.scope} '{owner.subject}'"
        out = dict(headers)
        if check.kind == "c":
            out["retry-after"] = "1"
            msg = f"Too many concurrent requests for {scope}: the limit is {owner.concurrent} at a time."
        else:
            out["retry-after"] = str(max(1, math.ceil(WINDOW_S - now % WINDOW_S)))
            unit = "requests" if check.kind == "r" else "tokens"
            msg = f"Rate limit reached for {scope}: {check.limit} {unit} per minute, {used} used in this minute."
            if check.kind == "t":
                msg += f" This request may use up to {check.amount} tokens (prompt bound + max output)."
                if check.amount > check.limit:
                    msg += " It can never fit: lower max_tokens or raise the limit."
        return RateLimited(msg, headers=out)

    @staticmethod
    def _warning(check: Check, owner: Limit | Budget, used: int) -> str | None:
        assert isinstance(owner, Budget)
        amount = owner.amount_nano
        hit = [t for t in owner.thresholds if used * 100 >= t * amount]
        if not hit:
            return None
        return (f"{owner.describe()} {min(100 * used // amount, 999)}% used ({_usd(used)} of {_usd(amount)} USD; "
                f"{hit[-1]}% threshold)")

    # ----------------------------------------------------------------- settle

    def settle(self, ctx: RequestContext, res: Reservation | None) -> None:
        """Release the reservation and add the exact cost (no await: Redis settles in the background)."""
        if res is None:
            return
        cost = ctx.cost
        nano = -(-cost.picousd // 1000) if cost is not None else 0
        usage = ctx.usage
        tokens = usage.total_tokens if usage is not None else 0
        for item in res.items:
            if item.kind == "t":
                item.actual = tokens
            elif item.kind == "b":
                item.actual = nano
        if self.memory is not None:
            self._settled(res, self.memory.settle(res.items, res.member), nano)
            return
        task = asyncio.get_running_loop().create_task(self._settle_redis(res, nano))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_redis(self, res: Reservation, nano: int) -> None:
        assert self.redis is not None
        try:
            spent = await self.redis.settle(res.items, res.member)
        except (OSError, RedisError) as exc:
            log.warning("governance: settling a request in Redis failed (%s); its reservation stays until the "
                        "period ends", exc)
            spent = []
        self._settled(res, spent, nano)

    def _settled(self, res: Reservation, spent: list[int], nano: int) -> None:
        for i, (budget, counter, period) in enumerate(res.budgets):
            if nano:
                key = (budget.id, counter, period)
                self.pending[key] = self.pending.get(key, 0) + nano
            if i < len(spent):
                for threshold in crossed(budget, spent[i] - nano, spent[i]):
                    self.alerts.emit(budget, counter, period, threshold, spent[i])

    # ----------------------------------------------------------------- reads (admin API)

    async def budget_status(self, budget: Budget, counter: str = "") -> dict[str, Any]:
        now = time.time()
        period, end = self._period_keys(now)[budget.period]
        key = f"b:{budget.id}:{counter}:{period}"
        live = self.memory.spent(key) if self.memory is not None else (
            await self.redis.spent(key) if self.redis is not None else None)
        spent, reserved = live if live is not None else (self.seeds.get((budget.id, counter, period), 0), 0)
        return {"period_key": period, "period_end": end or None, "spent_usd": _usd(spent),
                "reserved_usd": _usd(reserved), "remaining_usd": _usd(budget.amount_nano - spent - reserved)}
