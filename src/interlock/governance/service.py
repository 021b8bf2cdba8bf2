"""The admit stage: allowed models, rate limits and budget reservations, then settle after the response.

``admit`` runs between routing and dispatch. It gathers the limits and budgets
that apply to the caller (key, project, model, tags, end user), and decides
them all at once in the counters (``counters.py``): every check passes and
everything is reserved, or nothing is. A hard budget reserves the request's
worst case (``estimate.py``); ``settle`` (from the handler's ``finally``, for
every outcome) releases the reservation and adds the exact cost, so
spent + reserved never passes a hard budget, whatever the concurrency.

What applies to a caller - its limits and budgets, their counter keys for the
current minute and period - is compiled once into an :class:`Applicable` and
cached per (key, project, models, tags, end user); the cache is dropped when
the definitions snapshot or the minute changes (every period boundary is a
minute boundary). A request then only fills in its amounts and seeds.

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
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from interlock.core.clock import SYSTEM_CLOCK, Clock
from interlock.core.context import RequestContext
from interlock.core.errors import BudgetExceeded, GatewayError, PermissionDenied, RateLimited
from interlock.core.principal import Principal
from interlock.core.tags import parse_tags
from interlock.core.vendor import Timeouts
from interlock.governance.alerts import Alerts, crossed
from interlock.governance.auth import Authenticator
from interlock.governance.counters import SETTLED_MARKER_S, Check, MemoryCounters, RedisCounters
from interlock.governance.estimate import Estimator
from interlock.governance.model import EACH, Budget, Definitions, Limit, allowed, period_end, period_key
from interlock.governance.propagate import CATCH_UP_S, Propagation
from interlock.governance.settings import GovernanceSettings
from interlock.governance.store import GovStore, SpendKey
from interlock.governance.unpriced import screen as screen_unpriced
from interlock.vendors.transport import HttpTransport

log = logging.getLogger("interlock.governance")
WINDOW_S = 60
#: Soft budgets are checked with this limit: they never refuse, only report use.
UNLIMITED = 2**52
_PERIODS = ("daily", "weekly", "monthly", "lifetime")
#: A settle that failed in Redis is retried for this long (the settled marker outlives it: counters.py).
SETTLE_RETRY_S = SETTLED_MARKER_S / 2
#: A policy's default routing deadline (routing/policies.py), for a request admitted without a trace.
_DEFAULT_ROUTING_S = 120.0
#: Added to a request's longest possible life before Redis releases a reservation it never settled.
RESERVATION_MARGIN_S = 60.0


def request_lifetime(ctx: RequestContext) -> float:
    """Seconds a request can run at most, plus a margin: the routing deadline (attempts until the answer starts),
    then the longest total timeout of a vendor it may be answered by."""
    trace = ctx.routing
    targets = trace.order if trace is not None else (ctx.plan.targets if ctx.plan is not None else ())
    vendor_total = max((t.vendor.timeouts.total for t in targets), default=Timeouts().total)
    routing = trace.timeout_s if trace is not None else _DEFAULT_ROUTING_S
    return routing + vendor_total + RESERVATION_MARGIN_S


#: Where a check's amount comes from (an index into the per-request amounts): one request, the
#: request's token bound, its worst-case cost, nothing (soft budgets).
_ONE, _TOKENS, _WORST, _NOTHING = 0, 1, 2, 3
_NO_SEED: SpendKey = ("", "", "")
#: A check before the request's amounts are known: (kind, counter key, limit, amount source, seed key, expire).
_Row = tuple[str, str, int, int, SpendKey, float]


@dataclass(frozen=True, slots=True)
class Applicable:
    """The limits and budgets one caller is under, compiled with their counter keys for one minute.

    Cached per (key, project, models, tags, end user) until the definitions or the minute change, so a
    request only fills in its amounts and seeds.
    """

    rows: tuple[_Row, ...] = ()
    #: The limit or budget behind each row, for refusals.
    owners: tuple[Limit | Budget, ...] = ()
    #: Whether any row needs the request's token bound or worst-case cost (a tpm limit or a hard budget).
    estimate: bool = False
    #: Rows of rpm / tpm limits, which answer with ``x-ratelimit-*`` headers.
    rated: tuple[int, ...] = ()
    #: Per budget row: (row, budget, (budget id, counter subject, period key), used * 100 from which it warns).
    budgets: tuple[tuple[int, Budget, SpendKey, float], ...] = ()
    #: The first hard budget among them, if any (it refuses routes without a known price).
    hard: Budget | None = None


_NONE_APPLY = Applicable()


@dataclass(slots=True)
class Reservation:
    applicable: Applicable
    #: The checks as admitted (their amounts are what settle releases).
    checks: list[Check]
    member: str = ""


def _usd(nano: int) -> str:
    return f"{max(nano, 0) / 1e9:.6f}"


def _reset(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds >= 1 else f"{max(seconds, 0) * 1000:.0f}ms"


class Governance:
    def __init__(self, cfg: GovernanceSettings, store: GovStore, auth: Authenticator,
                 http: HttpTransport | None = None, *, redis_client: Any = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.cfg = cfg
        self.clock = clock
        self.store = store
        self.auth = auth
        self.defs = Definitions()
        self.memory: MemoryCounters | None = None
        self.redis: RedisCounters | None = None
        #: Changes of definitions announced on Redis (``propagate.py``); None without Redis (polling only).
        self.propagation: Propagation | None = None
        if cfg.redis_url is not None:
            self.redis = RedisCounters(cfg.redis_url, cfg.redis_prefix, redis_client)
            self.propagation = Propagation(self.redis.client, cfg.redis_prefix + "definitions", self.poll,
                                           cfg.poll_interval_s, clock)
            store.on_change = self.propagation.announce
        else:
            self.memory = MemoryCounters()
        self.estimator = Estimator()
        self.alerts = Alerts(http, cfg.alert_webhook)
        self.pending: dict[SpendKey, int] = {}
        self.seeds: dict[SpendKey, int] = {}
        self._day = -1
        self._periods: dict[str, tuple[str, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Redis settles that failed, retried from the background loop: (reservation, tokens, nano, give up at).
        self.unsettled: list[tuple[Reservation, int, int, float]] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._propagation_task: asyncio.Task[None] | None = None
        self._warned_version = -1
        #: Applicable limits and budgets per caller, for ``_applicable_defs`` in the minute ``_window``.
        self._window = -1
        self._applicable_defs: Definitions | None = None
        self._applicable: dict[tuple[Any, ...], Applicable] = {}

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
        self.seeds = await self.store.spend(key for key, _ in self._period_keys(self.clock.time()).values())
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
        if self.propagation is not None and self._propagation_task is None:
            self._propagation_task = loop.create_task(self.propagation.run())

    async def stop(self) -> None:
        for task in (self._loop_task, self._propagation_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._loop_task = self._propagation_task = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.alerts.drain()
        await self.flush()
        if self.redis is not None:
            try:
                await self.retry_settles()
            finally:
                for res, _, nano, _ in self.unsettled:
                    log.error("governance: stopping with request %s unsettled in Redis (%d nano-USD); its "
                              "reservation is released at its deadline", res.member, nano)
                await self.redis.close()
        await self.store.close()

    async def _run(self) -> None:
        clock = self.clock
        last_flush = last_poll = clock.monotonic()
        while True:
            await clock.sleep(self.cfg.poll_interval_s)
            try:
                await self.retry_settles()
                # Subscribed to change announcements: the version is read only to catch up on writers that
                # do not announce; otherwise every interval (the fallback).
                propagation = self.propagation
                if propagation is None or not propagation.up or clock.monotonic() - last_poll >= CATCH_UP_S:
                    last_poll = clock.monotonic()
                    await self.poll()
                if clock.monotonic() - last_flush >= self.cfg.flush_interval_s:
                    last_flush = clock.monotonic()
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
        now = self.clock.time()
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
        applicable = self._caller(ctx, request, restrict=True)
        if applicable is None:
            return None
        if applicable.hard is not None and not self.cfg.allow_unpriced:
            screen_unpriced(ctx, applicable.hard)
        return await self._reserve(ctx, request, applicable, self.clock.time())

    async def admit_tool_call(self, principal: Principal) -> None:
        """Count one MCP tool call against the ``tool_calls_per_minute`` limits on the caller's key and project
        (apart from rpm: neither counts toward the other); a 429 past one. Returns at once without such limits."""
        defs = self.defs
        if not defs.tool_limits:
            return
        limits: list[Limit] = []
        if principal.key_id is not None:
            limits.extend(defs.limits_on.get(("key", defs.key_root.get(principal.key_id, principal.key_id)), ()))
        if principal.project is not None:
            limits.extend(defs.limits_on.get(("project", principal.project), ()))
        limits = [lim for lim in limits if lim.tool_calls_per_minute]
        if not limits:
            return
        now = self.clock.time()
        window = int(now // WINDOW_S)
        checks: list[Check] = [("r", f"m:{lim.id}:{window}", lim.tool_calls_per_minute or 0, 1, 0, 2 * WINDOW_S)
                               for lim in limits]
        member = f"tool:{id(checks)}:{now}"
        try:
            if self.memory is not None:
                failed, used = self.memory.admit(checks, member, now)
            else:
                assert self.redis is not None
                failed, used = await self.redis.admit(checks, member, now, now + WINDOW_S)
        except (OSError, RedisError) as exc:
            log.debug("governance: a tool call was refused, the counters are unreachable: %s", exc)
            raise GatewayError("The gateway cannot reach its rate-limit counters; the tool call was not made. "
                               "Retry later.", status=503, code="governance_unavailable") from None
        if failed:
            lim = limits[failed - 1]
            retry = max(1, math.ceil(WINDOW_S - now % WINDOW_S))
            raise RateLimited(f"Rate limit reached for {lim.scope} '{lim.subject}': {lim.tool_calls_per_minute} "
                              f"tool_calls_per_minute, {used[failed - 1]} used in this minute.",
                              code="tool_calls_per_minute", headers={"retry-after": str(retry)})

    def explain(self, ctx: RequestContext, request: dict[str, Any]) -> None:
        """What admit does to the route (``/v1/route/explain``): skips unpriced targets under a hard budget."""
        applicable = self._caller(ctx, request, restrict=False)
        if applicable is not None and applicable.hard is not None and not self.cfg.allow_unpriced:
            screen_unpriced(ctx, applicable.hard)

    def _caller(self, ctx: RequestContext, request: dict[str, Any], *, restrict: bool) -> Applicable | None:
        """The limits and budgets on this request's caller (None when there are none)."""
        principal = ctx.principal
        defs = self.defs
        if principal is None or not defs.projects:
            return None
        pid = principal.project
        if pid is not None and restrict:
            project = defs.projects.get(pid)
            if project is not None:
                if project.log_level is not None:
                    ctx.log_level = project.log_level
                if project.allowed_models or project.allowed_vendors:
                    self._restrict(ctx, project.allowed_models, project.allowed_vendors, f"project '{pid}'")
        if restrict and principal.allowed_models:
            self._restrict(ctx, principal.allowed_models, (), f"API key {principal.key_id}")
        if not defs.enforcing:
            return None
        if defs.tag_budgets:
            self._request_tags(ctx, request)
        now = self.clock.time()
        window = int(now // WINDOW_S)
        if window != self._window or defs is not self._applicable_defs:
            self._window, self._applicable_defs, self._applicable = window, defs, {}
        model = second = None
        if defs.model_limits:
            model = ctx.requested_model or ""
            trace = ctx.routing
            if trace is not None and trace.order and trace.order[0].model_id != ctx.requested_model:
                second = trace.order[0].model_id
        tags = ctx.tags if defs.tag_budgets else ()
        user = ctx.end_user if defs.user_budgets else None
        selector = (principal.key_id, pid, model, second, tags, user)
        applicable = self._applicable.get(selector)
        if applicable is None:
            if len(self._applicable) >= 4096:
                self._applicable.clear()
            applicable = self._applicable[selector] = self._compile(
                defs, principal.key_id, pid, model, second, tags, user, window, now)
        return None if applicable is _NONE_APPLY else applicable

    def _compile(self, defs: Definitions, key_id: str | None, pid: str | None, model: str | None,
                 second: str | None, tags: tuple[str, ...], user: str | None, window: int,
                 now: float) -> Applicable:
        """The limits and budgets on this caller, with the counter keys of this minute and period."""
        limits: list[Limit] = []
        budgets: list[tuple[Budget, str]] = []
        on_l, on_b = defs.limits_on, defs.budgets_on
        if key_id is not None:
            root = defs.key_root.get(key_id, key_id)
            limits.extend(on_l.get(("key", root), ()))
            budgets.extend((b, "") for b in on_b.get(("key", root), ()))
        if pid is not None:
            limits.extend(on_l.get(("project", pid), ()))
            budgets.extend((b, "") for b in on_b.get(("project", pid), ()))
        if model is not None:
            limits.extend(on_l.get(("model", model), ()))
        if second is not None:
            limits.extend(on_l.get(("model", second), ()))
        for tag in tags:
            budgets.extend((b, "") for b in on_b.get(("tag", tag), ()))
        if user:
            budgets.extend((b, "") for b in on_b.get(("end_user", user), ()))
            budgets.extend((b, user) for b in on_b.get(("end_user", EACH), ()))
        if not limits and not budgets:
            return _NONE_APPLY
        rows: list[_Row] = []
        owners: list[Limit | Budget] = []
        rated: list[int] = []
        for lim in limits:
            if lim.rpm:
                rated.append(len(rows))
                rows.append(("r", f"r:{lim.id}:{window}", lim.rpm, _ONE, _NO_SEED, 2 * WINDOW_S))
                owners.append(lim)
            if lim.tpm:
                rated.append(len(rows))
                rows.append(("t", f"t:{lim.id}:{window}", lim.tpm, _TOKENS, _NO_SEED, 2 * WINDOW_S))
                owners.append(lim)
            if lim.concurrent:
                rows.append(("c", f"c:{lim.id}", lim.concurrent, _ONE, _NO_SEED, 0.0))
                owners.append(lim)
        periods = self._period_keys(now)
        on_budgets: list[tuple[int, Budget, SpendKey, float]] = []
        for b, counter in budgets:
            period, end = periods[b.period]
            spend_key = (b.id, counter, period)
            warn_at = min(b.thresholds) * b.amount_nano if b.thresholds else math.inf
            on_budgets.append((len(rows), b, spend_key, warn_at))
            rows.append(("b", f"b:{b.id}:{counter}:{period}", b.amount_nano if b.hard else UNLIMITED,
                         _WORST if b.hard else _NOTHING, spend_key, end + 35 * 86400 if end else 0.0))
            owners.append(b)
        return Applicable(tuple(rows), tuple(owners), any(r[3] in (_TOKENS, _WORST) for r in rows), tuple(rated),
                          tuple(on_budgets), next((b for b, _ in budgets if b.hard), None))

    async def _reserve(self, ctx: RequestContext, request: dict[str, Any], applicable: Applicable,
                       now: float) -> Reservation:
        tokens = worst = 0
        if applicable.estimate:
            trace = ctx.routing
            targets = trace.order if trace is not None else (ctx.plan.targets if ctx.plan is not None else ())
            tokens, worst = self.estimator.worst(request, targets)
        amounts = (1, tokens, worst, 0)
        seeds = self.seeds
        checks: list[Check] = [(kind, key, limit, amounts[source], seeds.get(seed, 0), expire)
                               for kind, key, limit, source, seed, expire in applicable.rows]
        try:
            if self.memory is not None:
                failed, used = self.memory.admit(checks, ctx.id, now)
            else:
                assert self.redis is not None
                failed, used = await self.redis.admit(checks, ctx.id, now, now + request_lifetime(ctx))
        except (OSError, RedisError) as exc:
            # Fail closed: without the counters no hard budget or limit could be kept. The caller learns
            # that much; where the counters live and why they failed is for the operator's log only: one line
            # when they are lost and one when they are back (RedisCounters), the request id at debug level.
            log.debug("governance: request %s refused, the counters are unreachable: %s", ctx.id, exc)
            raise GatewayError("The gateway cannot reach its rate-limit and budget counters; the request was not "
                               "sent. Retry later.", status=503, code="governance_unavailable") from None
        headers = self._limit_headers(applicable.rated, checks, used, now, failed) if applicable.rated else []
        if failed:
            raise self._refusal(checks[failed - 1], applicable.owners[failed - 1], used[failed - 1], headers, now)
        warnings = [self._warning(budget, used[i]) for i, budget, _, warn_at in applicable.budgets
                    if used[i] * 100 >= warn_at]
        if warnings:
            headers.append(("x-interlock-budget-warning", "; ".join(warnings)))
        if headers:
            ctx.gov_headers = headers
        return Reservation(applicable, checks, ctx.id)


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
    def _limit_headers(rated: tuple[int, ...], checks: list[Check], used: list[int], now: float,
                       failed: int) -> list[tuple[str, str]]:
        requests: tuple[int, int] | None = None
        tokens: tuple[int, int] | None = None
        for i in rated:
            if i >= len(used):
                break  # past the refused check: not evaluated
            kind, _, limit, amount, _, _ = checks[i]
            # On a refusal nothing was counted; on success this request's amount was.
            remaining = max(limit - (used[i] if failed else used[i] + amount), 0)
            if kind == "r":
                if requests is None or remaining < requests[1]:
                    requests = (limit, remaining)
            elif tokens is None or remaining < tokens[1]:
                tokens = (limit, remaining)
        headers: list[tuple[str, str]] = []
        if requests is None and tokens is None:
            return headers
        reset = _reset(WINDOW_S - now % WINDOW_S)
        if requests is not None:
            headers += [("x-ratelimit-limit-requests", str(requests[0])),
                        ("x-ratelimit-remaining-requests", str(requests[1])), ("x-ratelimit-reset-requests", reset)]
        if tokens is not None:
            headers += [("x-ratelimit-limit-tokens", str(tokens[0])),
                        ("x-ratelimit-remaining-tokens", str(tokens[1])), ("x-ratelimit-reset-tokens", reset)]
        return headers

    @staticmethod
    def _refusal(check: Check, owner: Limit | Budget, used: int, headers: list[tuple[str, str]],
                 now: float) -> GatewayError:
        kind, _, limit, amount, _, _ = check
        if isinstance(owner, Budget):
            remaining = owner.amount_nano - used
            return BudgetExceeded(
                f"The {owner.describe()} does not cover this request: {_usd(used)} of {_usd(owner.amount_nano)} "
                f"USD is spent or reserved, and the request could cost up to {_usd(amount)} USD.",
                headers={"x-interlock-budget-limit-usd": _usd(owner.amount_nano),
                         "x-interlock-budget-remaining-usd": _usd(remaining)})
        scope = f"{owner.scope} '{owner.subject}'"
        out = dict(headers)
        if kind == "c":
            out["retry-after"] = "1"
            msg = f"Too many concurrent requests for {scope}: the limit is {owner.concurrent} at a time."
        else:
            out["retry-after"] = str(max(1, math.ceil(WINDOW_S - now % WINDOW_S)))
            unit = "requests" if kind == "r" else "tokens"
            msg = f"Rate limit reached for {scope}: {limit} {unit} per minute, {used} used in this minute."
            if kind == "t":
                msg += f" This request may use up to {amount} tokens (prompt bound + max output)."
                if amount > limit:
                    msg += " It can never fit: lower max_tokens or raise the limit."
        return RateLimited(msg, headers=out)

    @staticmethod
    def _warning(budget: Budget, used: int) -> str:
        """The warning for a budget at least at its lowest threshold (``used`` before this request)."""
        amount = budget.amount_nano
        hit = max(t for t in budget.thresholds if used * 100 >= t * amount)
        return (f"{budget.describe()} {min(100 * used // amount, 999)}% used ({_usd(used)} of {_usd(amount)} USD; "
                f"{hit}% threshold)")

    # ----------------------------------------------------------------- settle

    def settle(self, ctx: RequestContext, res: object) -> None:
        """Release the reservation and add the exact cost (no await: Redis settles in the background).

        ``res`` is what :meth:`admit` returned (the context carries it opaquely); None when nothing was reserved.
        """
        if not isinstance(res, Reservation):
            return
        cost = ctx.cost
        nano = -(-cost.picousd // 1000) if cost is not None else 0
        usage = ctx.usage
        tokens = usage.total_tokens if usage is not None else 0
        if self.memory is not None:
            spent = self.memory.settle(res.checks, res.member, tokens, nano)
            if nano and spent:
                self._settled(res, spent, nano)
            return
        task = asyncio.get_running_loop().create_task(self._settle_redis(res, tokens, nano))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_redis(self, res: Reservation, tokens: int, nano: int) -> None:
        assert self.redis is not None
        try:
            spent = await self.redis.settle(res.checks, res.member, tokens, nano, self.clock.time())
        except (OSError, RedisError) as exc:
            # Redis is away (or the reply was lost): settle again later. The settle is idempotent, so Redis's
            # spent ends up equal to what the request log and the store's rollups record.
            log.debug("governance: settling request %s in Redis failed (%s); retrying every %gs", res.member,
                        exc, self.cfg.poll_interval_s)
            retry = [c for c in res.checks if c[0] in "bc"]  # a token window correction is moot by then
            if retry:
                self.unsettled.append((Reservation(res.applicable, retry, res.member), tokens, nano,
                                       self.clock.time() + SETTLE_RETRY_S))
            spent = []
        if nano:
            self._settled(res, spent, nano)

    async def retry_settles(self) -> None:
        """Settle again in Redis what failed to settle (each request is charged once, however often retried)."""
        if not self.unsettled or self.redis is None:
            return
        pending, self.unsettled = self.unsettled, []
        now = self.clock.time()
        for i, (res, tokens, nano, give_up) in enumerate(pending):
            try:
                await self.redis.settle(res.checks, res.member, tokens, nano, self.clock.time())
            except (OSError, RedisError) as exc:
                if now < give_up:
                    self.unsettled.extend(pending[i:])
                    log.warning("governance: Redis still unreachable (%s); %d settles wait", exc,
                                len(self.unsettled))
                    return
                log.error("governance: gave up settling request %s in Redis after %gs (%s); Redis's spent is %d "
                          "nano-USD below the store's until the period ends", res.member, SETTLE_RETRY_S, exc, nano)

    def _settled(self, res: Reservation, spent: list[int], nano: int) -> None:
        """Count ``nano`` of spend for the durable store and alert on thresholds it crossed."""
        pending = self.pending
        for i, (_, budget, spend_key, _) in enumerate(res.applicable.budgets):
            pending[spend_key] = pending.get(spend_key, 0) + nano
            if i < len(spent):
                for threshold in crossed(budget, spent[i] - nano, spent[i]):
                    self.alerts.emit(budget, spend_key[1], spend_key[2], threshold, spent[i])

    # ----------------------------------------------------------------- reads (admin API)

    async def budget_status(self, budget: Budget, counter: str = "") -> dict[str, Any]:
        now = self.clock.time()
        period, end = self._period_keys(now)[budget.period]
        key = f"b:{budget.id}:{counter}:{period}"
        live = self.memory.spent(key) if self.memory is not None else (
            await self.redis.spent(key) if self.redis is not None else None)
        spent, reserved = live if live is not None else (self.seeds.get((budget.id, counter, period), 0), 0)
        return {"period_key": period, "period_end": end or None, "spent_usd": _usd(spent),
                "reserved_usd": _usd(reserved), "remaining_usd": _usd(budget.amount_nano - spent - reserved)}
