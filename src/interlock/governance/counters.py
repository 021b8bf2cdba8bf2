"""Live counters for limits and budgets: in process memory, or in Redis for several workers and replicas.

A request's checks are decided all together and atomically: every check is
read, and only if all pass is anything incremented. In memory that holds
because nothing awaits between the reads and the writes (one event loop per
process). In Redis it holds because one Lua script does both, in one round trip;
settling is a second script. Two gateways sharing a Redis therefore admit
exactly the limit between them, and a hard budget's spent-plus-reserved never
passes its amount.

A check is a tuple ``(kind, key, limit, amount, seed, expire)`` (built per request by
``service.py`` from a cached template, so the hot path allocates no objects beyond it):

``r`` / ``t``  requests / tokens in a fixed one-minute UTC window (the key carries the window);
``c``          concurrent requests (Redis: a sorted set of request ids scored by a crash deadline,
               so a replica that dies mid-request frees its slots when the deadline passes);
``b``          a budget: spent + reserved + this request's amount must fit the limit (a soft budget is
               checked against an unreachable limit with amount 0: it only reports its use).

``seed`` is a budget's durable spend, to start from when its counter does not exist yet; ``expire``
the seconds a window counter must live, or the epoch second a budget counter may expire at (0 = never).

Settle takes the same checks back with the actual tokens and cost: ``t`` corrects the window by
(actual - reserved) tokens, ``c`` frees the slot, ``b`` releases the reservation and adds the exact spend;
``r`` needs nothing. In Redis a budget reservation also carries the request's deadline: one that is never
settled (a replica died, Redis was unreachable at settle) is released once the deadline has passed, and a
settle is idempotent, so one that failed can be retried (``service.py``) without charging twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger("interlock.governance")

#: A concurrency slot held by a replica that died is freed after this long.
CONCURRENCY_DEADLINE_S = 900.0
#: How long Redis remembers that a request settled, so that a retried settle charges it once; settles that
#: failed are retried for at most half of this (``service.SETTLE_RETRY_S``).
SETTLED_MARKER_S = 7200.0

#: (kind, counter key, limit, amount, seed, expire) - see the module docstring.
Check = tuple[str, str, int, int, int, float]


class MemoryCounters:
    """One process's counters (the embedded default; several workers need Redis)."""

    kind = "memory"

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.budgets: dict[str, list[int]] = {}  # key -> [spent, reserved]

    def admit(self, checks: list[Check], member: str, now: float, deadline: float = 0.0) -> tuple[int, list[int]]:
        """0 and the used amounts before this request, or the 1-based index of the first failing check.

        (``deadline`` matters only in Redis: in memory, settle always runs before the process ends.)

        One pass: each check is counted as soon as it passes, and a failure takes back what this
        request counted. Nothing awaits in between, so no other request sees the intermediate state.
        """
        used: list[int] = []
        values = self.values
        budgets = self.budgets
        for kind, key, limit, amount, seed, _ in checks:
            if kind == "b":
                b = budgets.get(key)
                if b is None:
                    b = budgets[key] = [seed, 0]
                u = b[0] + b[1]
                used.append(u)
                if u + amount > limit:
                    break
                b[1] += amount
            else:
                u = values.get(key, 0)
                used.append(u)
                if u + amount > limit:
                    break
                values[key] = u + amount
        else:
            return 0, used
        failed = len(used)
        for kind, key, _, amount, _, _ in checks[:failed - 1]:
            if kind == "b":
                budgets[key][1] -= amount
            else:
                values[key] -= amount
        return failed, used

    def settle(self, checks: list[Check], member: str, tokens: int, nano: int) -> list[int]:
        """Settle an admitted request (``tokens`` used, ``nano`` USD charged); the new spent of each budget."""
        spent: list[int] = []
        values = self.values
        for kind, key, _, amount, seed, _ in checks:
            if kind == "t":
                if key in values:
                    values[key] += tokens - amount
            elif kind == "c":
                values[key] = values.get(key, 1) - 1
            elif kind == "b":
                b = self.budgets.get(key)
                if b is None:
                    b = self.budgets[key] = [seed, 0]
                b[1] -= amount
                b[0] += nano
                spent.append(b[0])
        return spent

    def spent(self, key: str) -> tuple[int, int] | None:
        b = self.budgets.get(key)
        return None if b is None else (b[0], b[1])

    def reseed(self, key: str, seed: int) -> None:
        """A counter first seen before its durable spend was known starts from it (never goes down)."""
        b = self.budgets.get(key)
        if b is None:
            self.budgets[key] = [seed, 0]
        elif seed > b[0]:
            b[0] = seed

    def expire(self, window: int, periods: set[str]) -> None:
        """Drop window counters of past minutes and budget counters of past periods with nothing reserved.

        Window keys end with ``:{minute}``, budget keys with ``:{period}`` (see ``service.py``).
        """
        for key in [k for k in self.values if k[0] in "rt" and int(k.rsplit(":", 1)[1]) < window]:
            del self.values[key]
        for key in [k for k, v in self.budgets.items() if v[1] == 0 and k.rsplit(":", 1)[1] not in periods]:
            del self.budgets[key]


# A hard budget's reservations in Redis: ``reserved`` in the budget's hash is their sum, and a sorted set beside
# it (``<key>:r``) holds one member per reservation, ``r:<request id>:<amount>``, scored by the epoch second the
# request must have ended by. A reservation whose request never settled (the gateway died, or Redis was away
# when it settled) is released by the next admit or settle of that budget once its deadline has passed. A
# settle leaves ``d:<request id>`` in the set for ``SETTLED_MARKER_S``, so a retried settle (the reply was lost,
# or Redis was down) charges the request once.
_RELEASE_LUA = """
local function release(key, rkey, now)
  local gone = redis.call('ZRANGEBYSCORE', rkey, '-inf', now)
  if #gone == 0 then return end
  local total = 0
  for _, m in ipairs(gone) do
    local amount = string.match(m, '^r:.*:(%d+)$')
    if amount then total = total + tonumber(amount) end
  end
  redis.call('ZREMRANGEBYSCORE', rkey, '-inf', now)
  if total ~= 0 then redis.call('HINCRBY', key, 'reserved', -total) end
end
"""

ADMIT_LUA = _RELEASE_LUA + """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local deadline = ARGV[3]
local n = (#ARGV - 3) / 5
local used = {}
local nb = 0
for i = 1, n do
  local b = 3 + (i - 1) * 5
  local kind, limit, amount = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local key, u = KEYS[i], 0
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    u = redis.call('ZCARD', key)
  elseif kind == 'b' then
    nb = nb + 1
    if redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'spent', ARGV[b + 4], 'reserved', 0)
      local at = tonumber(ARGV[b + 5])
      if at > 0 then redis.call('EXPIREAT', key, math.floor(at)) end
    end
    release(key, KEYS[n + nb], now)
    local v = redis.call('HMGET', key, 'spent', 'reserved')
    u = tonumber(v[1] or '0') + tonumber(v[2] or '0')
  else
    u = tonumber(redis.call('GET', key) or '0')
  end
  used[i] = u
  if u + amount > limit then
    return {i, unpack(used)}
  end
end
nb = 0
for i = 1, n do
  local b = 3 + (i - 1) * 5
  local kind, amount, expire = ARGV[b + 1], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 5])
  local key = KEYS[i]
  if kind == 'c' then
    redis.call('ZADD', key, now + expire, member)
    redis.call('EXPIRE', key, math.ceil(expire))
  elseif kind == 'b' then
    nb = nb + 1
    if amount ~= 0 then
      local rkey = KEYS[n + nb]
      redis.call('HINCRBY', key, 'reserved', amount)
      redis.call('ZADD', rkey, deadline, 'r:' .. member .. ':' .. ARGV[b + 3])
      if expire > 0 then redis.call('EXPIREAT', rkey, math.floor(expire)) end
    end
  else
    redis.call('INCRBY', key, amount)
    redis.call('EXPIRE', key, math.ceil(expire))
  end
end
return {0, unpack(used)}
"""

SETTLE_LUA = _RELEASE_LUA + """
local member = ARGV[1]
local now = tonumber(ARGV[2])
local marker_until = ARGV[3]
local n = (#ARGV - 3) / 5
local out = {}
local nb = 0
for i = 1, n do
  local b = 3 + (i - 1) * 5
  local kind, reserved, actual = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local key = KEYS[i]
  if kind == 't' then
    if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, actual - reserved) end
  elseif kind == 'c' then
    redis.call('ZREM', key, member)
  else
    nb = nb + 1
    local rkey = KEYS[n + nb]
    local at = tonumber(ARGV[b + 5])
    if redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'spent', ARGV[b + 4], 'reserved', 0)
      if at > 0 then redis.call('EXPIREAT', key, math.floor(at)) end
    end
    release(key, rkey, now)
    if redis.call('ZSCORE', rkey, 'd:' .. member) then
      out[#out + 1] = tonumber(redis.call('HGET', key, 'spent'))  -- settled before: a retry charges nothing
    else
      if reserved ~= 0 and redis.call('ZREM', rkey, 'r:' .. member .. ':' .. ARGV[b + 2]) == 1 then
        redis.call('HINCRBY', key, 'reserved', -reserved)
      end
      redis.call('ZADD', rkey, marker_until, 'd:' .. member)
      if at > 0 then redis.call('EXPIREAT', rkey, math.floor(at)) end
      out[#out + 1] = redis.call('HINCRBY', key, 'spent', actual)
    end
  end
end
return out
"""


class RedisCounters:
    """Counters in Redis: one script call to admit, one to settle (keys under ``{prefix}gov:``)."""

    kind = "redis"

    def __init__(self, url: str, prefix: str, client: Any = None) -> None:
        # Imported here: only when counters live in Redis.
        import redis.asyncio as aioredis

        self.prefix = prefix
        # A blocking pool: a burst of requests waits briefly for a connection instead of failing.
        self.client: Any = client if client is not None else aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=5))
        self._admit = self.client.register_script(ADMIT_LUA)
        self._settle = self.client.register_script(SETTLE_LUA)
        #: Whether the last call reached Redis, and the transitions since start (up, down): for the metrics
        #: and one log line per transition, not one per refused request.
        self.up = True
        self.transitions = [0, 0]
        self._down_since = 0.0

    async def ping(self) -> None:
        """Readiness: Redis answers (raises when it does not). Also notices a recovery with no traffic."""
        try:
            await self.client.ping()
        except (OSError, RedisError) as exc:
            self._lost(exc)
            raise
        if not self.up:
            self._back()

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            result = await script(keys=keys, args=args)
        except (OSError, RedisError) as exc:
            self._lost(exc)
            raise
        if not self.up:
            self._back()
        return result

    def _lost(self, exc: BaseException) -> None:
        if self.up:
            self.up = False
            self.transitions[1] += 1
            self._down_since = time.monotonic()
            log.error("governance: the counters in Redis are unreachable (%s: %s); requests under a budget or "
                      "limit are refused with 503 governance_unavailable until it answers again", type(exc).__name__,
                      exc)

    def _back(self) -> None:
        self.up = True
        self.transitions[0] += 1
        log.warning("governance: the counters in Redis answer again after %.1f s; budgets and limits apply again",
                    time.monotonic() - self._down_since)

    def collect(self) -> list[tuple[str, str, str, list[tuple[dict[str, str], float]]]]:
        """``/metrics`` at scrape time: whether this worker's last counter call reached Redis."""
        return [
            ("interlock_governance_counters_up", "gauge", "1 while this worker reaches the budget and limit "
             "counters in Redis; 0 while governed requests are refused with governance_unavailable.",
             [({}, float(self.up))]),
            ("interlock_governance_counters_transitions", "counter", "Times the counters in Redis became "
             "reachable again or were lost.",
             [({"to": "up"}, float(self.transitions[0])), ({"to": "down"}, float(self.transitions[1]))]),
        ]

    async def admit(self, checks: list[Check], member: str, now: float,
                    deadline: float = 0.0) -> tuple[int, list[int]]:
        """As :meth:`MemoryCounters.admit`; budget reservations are released at ``deadline`` (epoch seconds)
        if the request has not settled by then."""
        args: list[Any] = [now, member, deadline or now + CONCURRENCY_DEADLINE_S]
        keys = [self.prefix + c[1] for c in checks]
        for kind, key, limit, amount, seed, expire in checks:
            args += [kind, limit, amount, seed, CONCURRENCY_DEADLINE_S if kind == "c" else expire]
            if kind == "b":
                keys.append(self.prefix + key + ":r")
        result = await self._call(self._admit, keys, args)
        return int(result[0]), [int(v) for v in result[1:]]

    async def settle(self, checks: list[Check], member: str, tokens: int, nano: int, now: float) -> list[int]:
        """As :meth:`MemoryCounters.settle`, in one script call; safe to retry (a request is charged once)."""
        keys: list[str] = []
        budgets: list[str] = []
        args: list[Any] = [member, now, now + SETTLED_MARKER_S]
        for kind, key, _, amount, seed, expire in checks:
            if kind == "r":
                continue
            keys.append(self.prefix + key)
            if kind == "b":
                budgets.append(self.prefix + key + ":r")
            args += [kind, amount, tokens if kind == "t" else nano if kind == "b" else 0, seed, expire]
        if not keys:
            return []
        result = await self._call(self._settle, keys + budgets, args)
        return [int(v) for v in result]

    async def spent(self, key: str) -> tuple[int, int] | None:
        values = await self.client.hmget(self.prefix + key, "spent", "reserved")
        if values[0] is None:
            return None
        return int(values[0]), int(values[1] or 0)

    async def close(self) -> None:
        await self.client.aclose()
