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
``r`` needs nothing.
"""

from __future__ import annotations

from typing import Any

#: A concurrency slot held by a replica that died is freed after this long.
CONCURRENCY_DEADLINE_S = 900.0

#: (kind, counter key, limit, amount, seed, expire) - see the module docstring.
Check = tuple[str, str, int, int, int, float]


class MemoryCounters:
    """One process's counters (the embedded default; several workers need Redis)."""

    kind = "memory"

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.budgets: dict[str, list[int]] = {}  # key -> [spent, reserved]

    def admit(self, checks: list[Check], member: str, now: float) -> tuple[int, list[int]]:
        """0 and the used amounts before this request, or the 1-based index of the first failing check.

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


ADMIT_LUA = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local used = {}
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 5
  local kind, limit, amount = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local key, u = KEYS[i], 0
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    u = redis.call('ZCARD', key)
  elseif kind == 'b' then
    if redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'spent', ARGV[b + 4], 'reserved', 0)
      local at = tonumber(ARGV[b + 5])
      if at > 0 then redis.call('EXPIREAT', key, math.floor(at)) end
    end
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
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 5
  local kind, amount, expire = ARGV[b + 1], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 5])
  local key = KEYS[i]
  if kind == 'c' then
    redis.call('ZADD', key, now + expire, member)
    redis.call('EXPIRE', key, math.ceil(expire))
  elseif kind == 'b' then
    redis.call('HINCRBY', key, 'reserved', amount)
  else
    redis.call('INCRBY', key, amount)
    redis.call('EXPIRE', key, math.ceil(expire))
  end
end
return {0, unpack(used)}
"""

SETTLE_LUA = """
local member = ARGV[1]
local out = {}
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 5
  local kind, reserved, actual = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local key = KEYS[i]
  if kind == 't' then
    if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, actual - reserved) end
  elseif kind == 'c' then
    redis.call('ZREM', key, member)
  else
    if redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'spent', ARGV[b + 4], 'reserved', reserved)
      local at = tonumber(ARGV[b + 5])
      if at > 0 then redis.call('EXPIREAT', key, math.floor(at)) end
    end
    if reserved ~= 0 then redis.call('HINCRBY', key, 'reserved', -reserved) end
    out[#out + 1] = redis.call('HINCRBY', key, 'spent', actual)
  end
end
return out
"""


class RedisCounters:
    """Counters in Redis: one script call to admit, one to settle (keys under ``{prefix}gov:``)."""

    kind = "redis"

    def __init__(self, url: str, prefix: str, client: Any = None) -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        # A blocking pool: a burst of requests waits briefly for a connection instead of failing.
        self.client: Any = client if client is not None else aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=5))
        self._admit = self.client.register_script(ADMIT_LUA)
        self._settle = self.client.register_script(SETTLE_LUA)

    async def ping(self) -> None:
        """Readiness: Redis answers (raises when it does not)."""
        await self.client.ping()

    async def admit(self, checks: list[Check], member: str, now: float) -> tuple[int, list[int]]:
        args: list[Any] = [now, member]
        for kind, _, limit, amount, seed, expire in checks:
            args += [kind, limit, amount, seed, CONCURRENCY_DEADLINE_S if kind == "c" else expire]
        result = await self._admit(keys=[self.prefix + c[1] for c in checks], args=args)
        return int(result[0]), [int(v) for v in result[1:]]

    async def settle(self, checks: list[Check], member: str, tokens: int, nano: int) -> list[int]:
        """As :meth:`MemoryCounters.settle`, in one script call."""
        keys: list[str] = []
        args: list[Any] = [member]
        for kind, key, _, amount, seed, expire in checks:
            if kind == "r":
                continue
            keys.append(self.prefix + key)
            args += [kind, amount, tokens if kind == "t" else nano if kind == "b" else 0, seed, expire]
        if not keys:
            return []
        result = await self._settle(keys=keys, args=args)
        return [int(v) for v in result]

    async def spent(self, key: str) -> tuple[int, int] | None:
        values = await self.client.hmget(self.prefix + key, "spent", "reserved")
        if values[0] is None:
            return None
        return int(values[0]), int(values[1] or 0)

    async def close(self) -> None:
        await self.client.aclose()
