"""The exact response cache: decides per request, looks up, replays and stores.

:meth:`ResponseCache.lookup` runs after routing and admission (``pipeline/cache.py``): a hit is a request
like any other for rate limits and budgets, and its key needs the resolved policy and models. It returns a
:class:`Ticket` (``core.cache.CacheTicket``) or None when the cache is off for the request. What is never
cached: requests of a zero-data-retention project (nothing of theirs may be stored), ``n > 1`` without a
seed, sampling at temperature > 0 (or at the vendor's default) unless the rules allow it (neither rule applies
to embeddings, which are deterministic: ``/v1/embeddings`` stores its final answer body), answers that
failed, were cut short or were refused by guardrails (the pipeline stores only what it relayed in full).
Guardrails run on the request before the lookup and on a replayed answer as on a vendor's, so a policy
tightened since an answer was stored still applies to it.

With ``semantic`` on (``cache/semantic.py``), an exact miss of a single-turn prompt is looked up by meaning in
its bucket; a hit there is marked on the ticket (``semantic``, ``similarity``) and in its headers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from interlock.cache.key import request_digest, short
from interlock.cache.semantic_prompt import single_turn
from interlock.cache.settings import CacheRules, CacheSettings
from interlock.cache.store import Backend, Entry, MemoryBackend, Selector
from interlock.core.cache import BYPASS, HIT, MISS
from interlock.core.context import RequestContext
from interlock.core.errors import InvalidRequest
from interlock.core.pricing import Cost
from interlock.core.vendor import ChunkSource, Completion

if TYPE_CHECKING:  # numpy is optional (the classifier extra): semantic.py is imported only when it is on
    from interlock.cache.semantic import SemanticCache, Vector

_NAMESPACE = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
#: The project part of keys when answers are shared across projects.
SHARED = "*"


class Counts:
    """Per worker, for ``/metrics`` and the admin API."""

    __slots__ = ("bypasses", "hits", "misses", "saved_picousd", "semantic_hits", "skipped", "stores")

    def __init__(self) -> None:
        self.hits = self.misses = self.bypasses = self.stores = self.skipped = self.semantic_hits = 0
        self.saved_picousd = 0


class ResponseCache:
    def __init__(self, settings: CacheSettings, backend: Backend, wall: Callable[[], float],
                 on_result: Callable[[str], None] | None = None, semantic: SemanticCache | None = None) -> None:
        self.settings = settings
        #: The semantic index and encoder, when some request can use them.
        self.semantic = semantic
        self.backend = backend
        self.wall = wall
        self.counts = Counts()
        self.on_result = on_result
        self._tasks: set[asyncio.Task[None]] = set()

    async def lookup(self, ctx: RequestContext, request: Mapping[str, Any],
                     deterministic: bool = False) -> Ticket | None:
        """The request's ticket, or None when the cache is off for it. ``deterministic``: the answer does not
        depend on sampling (embeddings), so the temperature and ``n`` rules do not apply, nor the semantic
        cache (its prompts are chat messages)."""
        header = ctx.exchange.header if ctx.exchange is not None else _no_header
        asked = header("x-interlock-cache")
        if asked is not None:
            asked = asked.strip().lower()
            if asked not in ("on", "off"):
                raise InvalidRequest("x-interlock-cache must be 'on' or 'off'.", param="x-interlock-cache",
                                     code="invalid_header")
        principal = ctx.principal
        project = principal.project if principal is not None and principal.project else ""
        policy = ctx.plan.policy.name if ctx.plan is not None and ctx.plan.policy is not None else None
        rules = self.settings.rules_for(policy, project)
        if asked == "off":
            return self._bypass(rules, "request") if rules.enabled else None
        if not rules.enabled and not (asked == "on" and rules.allow_request_opt_in):
            return self._bypass(rules, "opt_in_not_allowed") if asked == "on" else None
        ttl = self._ttl(header("x-interlock-cache-ttl"), rules)
        namespace = header("x-interlock-cache-namespace") or ""
        if namespace and not _NAMESPACE.fullmatch(namespace):
            raise InvalidRequest("x-interlock-cache-namespace: 1-128 characters of letters, digits and . _ : @ -.",
                                 param="x-interlock-cache-namespace", code="invalid_header")
        directives = {d.strip().lower() for d in (header("cache-control") or "").split(",")}
        reason = self._refusal(ctx, request, rules, directives, deterministic)
        if reason is not None:
            return self._bypass(rules, reason)
        plan = ctx.plan
        models = tuple(sorted({t.model_id for t in plan.targets})) if plan is not None else ()
        owner = SHARED if self.settings.share_across_projects else project
        digest = request_digest(request, inbound=ctx.inbound, stream=ctx.stream, policy=policy, models=models,
                                project=owner, namespace=namespace)
        model = plan.targets[0].model_id if plan is not None and plan.targets else ""
        key = short(owner) + short(namespace) + short(model) + digest
        entry = None if "no-cache" in directives else await self.backend.get(key)
        if entry is not None and entry.kind != ("stream" if ctx.stream else "completion"):
            entry = None  # cannot happen with the stream flag in the key; kept as a guard for old entries
        ticket = Ticket(self, rules, key, ttl, entry, ctx.stream)
        if entry is None and rules.semantic and self.semantic is not None and not deterministic:
            prompt = single_turn(request)
            if prompt is not None:
                # The bucket: the exact key's inputs, the user's text replaced by its numbers and negations
                # (another api tag: never an exact key).
                bucket = request_digest(prompt[0], inbound=f"semantic:{ctx.inbound}", stream=ctx.stream,
                                        policy=policy, models=models, project=owner, namespace=namespace)
                await self._similar(ticket, self.semantic, bucket, prompt[1], "no-cache" not in directives)
        entry = ticket.entry
        if entry is not None:
            ticket.status = HIT
            ticket.age = max(0, int(self.wall() - entry.created))
            ctx.target = _target_of(ctx, entry.target)
            self.counts.hits += 1
        else:
            self.counts.misses += 1
        self._count(ticket.status)
        return ticket

    async def _similar(self, ticket: Ticket, semantic: SemanticCache, bucket: str, text: str,
                       lookup: bool) -> None:
        """Embeds ``text`` (kept on the ticket, to index the answer when it is stored) and, when ``lookup``,
        makes ``ticket`` a hit on the most similar stored prompt of ``bucket`` at or above the threshold."""
        vector = await semantic.vector(text)
        if vector is None:
            return  # longer than the model's window: its embedding would miss the rest of the text
        ticket.bucket, ticket.vector = bucket, vector
        found = semantic.index.best(bucket, vector) if lookup else None
        if found is None or found[1] < ticket.rules.semantic_threshold:
            return
        key, similarity = found
        entry = await self.backend.get(key)
        if entry is None or entry.kind != ("stream" if ticket.stream else "completion"):
            semantic.index.discard(bucket, key)  # deleted or expired: a miss, and one vector less to compare
            return
        ticket.entry, ticket.storing, ticket.semantic, ticket.similarity = entry, False, True, similarity
        self.counts.semantic_hits += 1

    @staticmethod
    def _refusal(ctx: RequestContext, request: Mapping[str, Any], rules: CacheRules,
                 directives: set[str], deterministic: bool) -> str | None:
        """Why this request may not use the cache, or None."""
        if "no-store" in directives:
            return "no-store"
        if ctx.zero_data_retention:
            return "zero_data_retention"
        if deterministic:
            return None
        n = request.get("n")
        if isinstance(n, int) and n > 1 and request.get("seed") is None:
            return "n_without_seed"
        if not rules.allow_temperature:
            temperature = request.get("temperature")
            if not isinstance(temperature, int | float) or temperature > 0:
                return "temperature"
        return None

    def _ttl(self, value: str | None, rules: CacheRules) -> int:
        if value is None:
            return rules.ttl_s
        try:
            ttl = int(value.strip())
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= self.settings.max_ttl_s:
            raise InvalidRequest(f"x-interlock-cache-ttl must be a whole number of seconds from 1 to "
                                 f"{self.settings.max_ttl_s}.", param="x-interlock-cache-ttl", code="invalid_header")
        return ttl

    def _bypass(self, rules: CacheRules, reason: str) -> Ticket:
        ticket = Ticket(self, rules, "", 0, None)
        ticket.status = BYPASS
        ticket.storing = False
        ticket.reason = reason
        self.counts.bypasses += 1
        self._count(BYPASS)
        return ticket

    def _count(self, status: str) -> None:
        if self.on_result is not None:
            self.on_result(status)

    def store(self, key: str, entry: Entry, ttl_s: int, bucket: str = "", vector: Vector | None = None) -> None:
        """Stores ``entry`` (in the background for a shared backend) and, for a single-turn prompt, indexes its
        ``vector``."""
        if entry.size > self.settings.max_entry_bytes:
            self.counts.skipped += 1
            return
        self.counts.stores += 1
        pending = self.backend.put_soon(key, entry, ttl_s)
        if pending is not None:
            task = asyncio.get_running_loop().create_task(pending)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if vector is not None and self.semantic is not None:
            self.semantic.index.add(bucket, key, vector, entry.created, ttl_s)

    async def close(self) -> None:
        """At shutdown: the stores still in flight finish (a Redis batch queued in the last moments is sent)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def census(self, projects: Iterable[str], models: Iterable[str], only: str | None = None
                     ) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Entries and bytes per project and per model, named from ``projects`` and ``models`` (the names
        the caller knows: keys hold 8-character tags of them); ``only``: one project's entries. A tag of
        none of them is ``"#<tag>"``; entries shared across projects are under ``*``, the admin key's own
        under ``""``."""
        names = {short(p): p for p in (*projects, SHARED, "")}
        model_names = {short(m): m for m in (*models, "")}
        wanted = short(only) if only is not None else None
        by_project: dict[str, list[int]] = {}
        by_model: dict[str, list[int]] = {}
        for (ptag, mtag), (entries, size) in (await self.backend.census()).items():
            if wanted is not None and ptag != wanted:
                continue
            for out, name in ((by_project, names.get(ptag, "#" + ptag)),
                              (by_model, model_names.get(mtag, "#" + mtag))):
                item = out.setdefault(name, [0, 0])
                item[0] += entries
                item[1] += size
        return by_project, by_model

    async def delete(self, selector: Selector) -> int:
        if self.semantic is not None:  # this worker's index at once; other workers' when a lookup finds no entry
            self.semantic.index.delete(selector, self.wall())
        return await self.backend.delete(selector)

    def collect(self) -> list[tuple[str, str, str, list[tuple[dict[str, str], float]]]]:
        """``/metrics`` at scrape time: this worker's savings and stores, and its memory cache's size."""
        kind = {"backend": self.backend.kind}
        c = self.counts
        out = [
            ("interlock_cache_saved_usd", "counter", "What the answers served from the response cache cost when "
             "they were made (USD).", [(kind, c.saved_picousd / 1e12)]),
            ("interlock_cache_stores", "counter", "Answers stored in the response cache.", [(kind, float(c.stores))]),
        ]
        if self.semantic is not None:
            out.append(("interlock_cache_semantic_entries", "gauge", "Prompt vectors in this worker's semantic "
                        "cache index.", [(kind, float(len(self.semantic.index)))]))
        if isinstance(self.backend, MemoryBackend):
            out.append(("interlock_cache_entries", "gauge", "Answers held in this worker's memory cache.",
                        [(kind, float(len(self.backend)))]))
            out.append(("interlock_cache_bytes", "gauge", "Bytes held in this worker's memory cache.",
                        [(kind, float(self.backend.bytes))]))
        return out

    async def stats(self) -> dict[str, object]:
        entries, size = await self.backend.size()
        c = self.counts
        looked = c.hits + c.misses
        return {"backend": self.backend.kind, "entries": entries, "bytes": size, "hits": c.hits, "misses": c.misses,
                "bypasses": c.bypasses, "stores": c.stores, "too_large": c.skipped,
                "hit_rate": round(c.hits / looked, 4) if looked else None,
                "semantic_hits": c.semantic_hits,
                "semantic_entries": len(self.semantic.index) if self.semantic is not None else None,
                "saved_usd": c.saved_picousd / 1e12}


class Ticket:
    """One request's use of the cache (``core.cache.CacheTicket``)."""

    __slots__ = ("age", "bucket", "cache", "entry", "key", "reason", "rules", "saved", "semantic", "similarity",
                 "status", "storing", "stream", "ttl", "vector")

    def __init__(self, cache: ResponseCache, rules: CacheRules, key: str, ttl: int, entry: Entry | None,
                 stream: bool = False) -> None:
        self.cache = cache
        self.rules = rules
        self.key = key
        self.ttl = ttl
        self.entry = entry
        self.status = MISS
        self.storing = entry is None
        self.saved: Cost | None = None
        self.age = 0
        self.reason = ""
        self.stream = stream
        #: A hit by meaning (the semantic cache) rather than by the exact key, and its cosine similarity.
        self.semantic = False
        self.similarity: float | None = None
        #: A single-turn prompt's bucket and embedding: its answer's vector joins the index when stored.
        self.bucket = ""
        self.vector: Vector | None = None

    def headers(self) -> list[tuple[str, str]]:
        if self.status == HIT:
            out = [("x-interlock-cache", HIT), ("x-interlock-cache-age", str(self.age))]
            if self.similarity is not None:
                out.append(("x-interlock-cache-similarity", f"{self.similarity:.3f}"))
            return out
        if self.status == BYPASS:
            return [("x-interlock-cache", BYPASS), ("x-interlock-cache-reason", self.reason)]
        return [("x-interlock-cache", MISS)]

    def completion(self) -> Completion:
        assert self.entry is not None
        return Completion(orjson.loads(self.entry.body))

    def source(self) -> ChunkSource:
        assert self.entry is not None
        return Replay(list(self.entry.payloads))

    def charge(self, cost: Cost | None) -> Cost:
        assert self.entry is not None
        saved = cost if cost is not None else (
            Cost(self.entry.cost_picousd) if self.entry.cost_picousd is not None else None)
        self.saved = saved
        fraction = self.rules.hit_cost_fraction
        if saved is not None:
            self.cache.counts.saved_picousd += saved.picousd
        if saved is None or fraction == 0:
            return Cost(0)
        return Cost(round(saved.picousd * fraction))

    def store_completion(self, ctx: RequestContext, body: bytes) -> None:
        target, cost = _origin(ctx)  # not *_origin(ctx): a star call is a generic call in the compiled build
        self._store(ctx, Entry("completion", body, (), self.cache.wall(), target, cost))

    def store_stream(self, ctx: RequestContext, payloads: list[bytes]) -> None:
        target, cost = _origin(ctx)
        self._store(ctx, Entry("stream", b"", tuple(payloads), self.cache.wall(), target, cost))

    def _store(self, ctx: RequestContext, entry: Entry) -> None:
        if self.storing and ctx.error is None:
            self.storing = False
            self.cache.store(self.key, entry, self.ttl, self.bucket, self.vector)


class Replay:
    """A stored stream as a chunk source: every payload in one batch, then the end."""

    __slots__ = ("_payloads", "dropped", "truncated")

    def __init__(self, payloads: list[bytes]) -> None:
        self._payloads: list[bytes] | None = payloads
        self.truncated = False
        self.dropped: tuple[str, ...] = ()

    async def next_batch(self) -> list[bytes] | None:
        batch, self._payloads = self._payloads, None
        return batch

    def close(self) -> None:
        self._payloads = None


def _origin(ctx: RequestContext) -> tuple[str, int | None]:
    target = ctx.target
    cost = ctx.cost
    return (target.key if target is not None else "",
            cost.picousd if cost is not None and not cost.estimated else None)


def _target_of(ctx: RequestContext, key: str) -> Any:
    """The plan's target that made the stored answer (for its price and the response headers), if still there."""
    plan = ctx.plan
    for target in plan.targets if plan is not None else ():
        if target.key == key:
            return target
    return None


def _no_header(name: str) -> str | None:
    return None
