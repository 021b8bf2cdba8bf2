"""Live statistics per target: TTFT percentiles, output speed, error rate, uptime.

They drive the ``latency`` / ``throughput`` strategies and the endpoints view
(``GET /v1/models/{lab}/{model}/endpoints``). Recording is on the hot path, so
it is a handful of integer increments into time buckets - no sorting, no
allocation beyond a new bucket every 10 seconds. Everything is a counter
(TTFT goes into a log-scale histogram), which makes buckets mergeable: the
Redis sync (:mod:`interlock.routing.shared`) adds replicas' counters together
and percentiles are read from the merged histogram.

Two rings per target: 10-second buckets covering 30 minutes (the 5 min and
30 min windows) and 5-minute buckets covering a day. Summaries are computed
at most once per second per target and cached, so a routing decision reads
a few attributes.

*Uptime* follows OpenRouter's meaning: the share of attempts the vendor did
not fail on its side (5xx, timeouts, broken connections); rate limits and
context-length refusals count against the error rate but not against uptime.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

# Bucket layout: counters, then the TTFT histogram.
N, ERR, DOWN, TTFT_N, TOK, GEN_MS, PROMPT, CACHED = range(8)
HIST = 8
#: TTFT histogram: bucket i holds [G^i, G^(i+1)) ms; 64 buckets reach ~ 25 minutes.
_G = 1.25
_LOG_G = math.log(_G)
NB = 64
WIDTH = HIST + NB

FINE_S, FINE_LEN = 10, 180        # 30 minutes of 10 s buckets
COARSE_S, COARSE_LEN = 300, 288   # 1 day of 5 min buckets
WINDOWS: tuple[tuple[str, int, int], ...] = (("5m", FINE_S, 30), ("30m", FINE_S, 180), ("1d", COARSE_S, 288))
_SUMMARY_TTL = 1.0


def hist_index(ms: float) -> int:
    if ms < 1.0:
        return 0
    return min(NB - 1, int(math.log(ms) / _LOG_G))


def hist_value(index: int) -> float:
    """Geometric middle of a histogram bucket, in ms."""
    return float(_G ** (index + 0.5)) if index > 0 else 1.0


def percentile(hist: list[int], q: float) -> float | None:
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return hist_value(i)
    return hist_value(NB - 1)


@dataclass(frozen=True, slots=True)
class Window:
    requests: int
    error_rate: float | None
    uptime: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tokens_per_s: float | None
    cache_hit: float | None

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "error_rate": _round(self.error_rate, 4),
            "uptime": _round(self.uptime, 4),
            "ttft_p50_ms": _round(self.ttft_p50_ms, 1),
            "ttft_p95_ms": _round(self.ttft_p95_ms, 1),
            "tokens_per_s": _round(self.tokens_per_s, 1),
            "cache_hit": _round(self.cache_hit, 4),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


_BEST_ATTRS = ("ttft_p50_ms", "tokens_per_s", "cache_hit", "error_rate", "uptime")


class Summary:
    """The windows of one target, plus the freshest value of each figure (read by strategies per request)."""

    __slots__ = ("_best", "at", "windows")

    def __init__(self, windows: Mapping[str, Window], at: float) -> None:
        self.windows = windows
        self.at = at
        best: dict[str, float | None] = {}
        for attr in _BEST_ATTRS:
            best[attr] = None
            for name in ("5m", "30m", "1d"):
                value = getattr(windows[name], attr)
                if value is not None:
                    best[attr] = float(value)
                    break
        self._best = best

    def best(self, attr: str) -> float | None:
        """The freshest window that has a value for ``attr`` (5 min, else 30 min, else 1 day)."""
        return self._best.get(attr)


def _merge(into: list[int], add: Iterable[int]) -> None:
    for i, v in enumerate(add):
        into[i] += v


class TargetSeries:
    """The two bucket rings of one target (sparse: only buckets that saw traffic exist)."""

    __slots__ = ("coarse", "fine")

    def __init__(self) -> None:
        self.fine: dict[int, list[int]] = {}
        self.coarse: dict[int, list[int]] = {}

    def buckets(self, now: float) -> tuple[list[int], list[int]]:
        f = int(now // FINE_S)
        c = int(now // COARSE_S)
        fine = self.fine.get(f)
        if fine is None:
            fine = self.fine[f] = [0] * WIDTH
            self.fine.pop(f - FINE_LEN, None)
            if len(self.fine) > FINE_LEN:
                _prune(self.fine, f - FINE_LEN)
        coarse = self.coarse.get(c)
        if coarse is None:
            coarse = self.coarse[c] = [0] * WIDTH
            self.coarse.pop(c - COARSE_LEN, None)
            if len(self.coarse) > COARSE_LEN:
                _prune(self.coarse, c - COARSE_LEN)
        return fine, coarse


def _prune(ring: dict[int, list[int]], oldest: int) -> None:
    for idx in [i for i in ring if i <= oldest]:
        del ring[idx]


def summarize(series: TargetSeries, now: float) -> Summary:
    windows: dict[str, Window] = {}
    for name, size, count in WINDOWS:
        ring = series.fine if size == FINE_S else series.coarse
        newest = int(now // size)
        total = [0] * WIDTH
        for idx, bucket in ring.items():
            if newest - count < idx <= newest:
                _merge(total, bucket)
        n = total[N]
        hist = total[HIST:]
        windows[name] = Window(
            requests=n,
            error_rate=total[ERR] / n if n else None,
            uptime=1.0 - total[DOWN] / n if n else None,
            ttft_p50_ms=percentile(hist, 0.5),
            ttft_p95_ms=percentile(hist, 0.95),
            tokens_per_s=total[TOK] * 1000.0 / total[GEN_MS] if total[GEN_MS] > 0 else None,
            cache_hit=total[CACHED] / total[PROMPT] if total[PROMPT] > 0 else None,
        )
    return Summary(windows, now)


class LiveStats:
    """Process-wide statistics of every target, optionally merged with other replicas' (see ``shared``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.series: dict[str, TargetSeries] = {}
        #: Replicas' merged series, when a Redis sync is running; preferred for reads.
        self.shared: dict[str, TargetSeries] | None = None
        #: Counters recorded since the last push to Redis: (key, ring, bucket) -> counters.
        self.pending: dict[tuple[str, str, int], list[int]] | None = None
        self._summaries: dict[str, Summary] = {}

    def _record(self, key: str, updates: Iterable[tuple[int, int]]) -> None:
        now = self.clock()
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = TargetSeries()
        fine, coarse = series.buckets(now)
        pending = None
        if self.pending is not None:
            fkey = (key, "f", int(now // FINE_S))
            ckey = (key, "c", int(now // COARSE_S))
            pf = self.pending.get(fkey) or self.pending.setdefault(fkey, [0] * WIDTH)
            pc = self.pending.get(ckey) or self.pending.setdefault(ckey, [0] * WIDTH)
            pending = (pf, pc)
        for idx, value in updates:
            fine[idx] += value
            coarse[idx] += value
            if pending is not None:
                pending[0][idx] += value
                pending[1][idx] += value

    def attempt(self, key: str, ok: bool, down: bool = False) -> None:
        """One attempt's outcome: ``down`` marks a vendor-side failure (5xx, timeout, connection)."""
        self._record(key, ((N, 1), (ERR, 0 if ok else 1), (DOWN, 1 if down and not ok else 0)))

    def answered(self, key: str, ttft_s: float | None, output_tokens: int = 0, generation_s: float = 0.0,
                 prompt_tokens: int = 0, cached_tokens: int = 0, *, count: bool = False) -> None:
        """Timing and usage of an attempt that answered.

        Its outcome is counted here when ``count`` is set (one update instead of two), otherwise it
        was already counted by :meth:`attempt`.
        """
        updates = [(PROMPT, prompt_tokens), (CACHED, cached_tokens)]
        if count:
            updates.append((N, 1))
        if ttft_s is not None and ttft_s >= 0:
            updates.append((TTFT_N, 1))
            updates.append((HIST + hist_index(ttft_s * 1000.0), 1))
        if output_tokens > 0 and generation_s > 0.05:
            updates.append((TOK, output_tokens))
            updates.append((GEN_MS, int(generation_s * 1000.0)))
        self._record(key, updates)

    def summary(self, key: str, now: float | None = None) -> Summary | None:
        """Cached (≤ 1 s old) windows of ``key``; None when the target has no traffic on record."""
        if now is None:
            now = self.clock()
        cached = self._summaries.get(key)
        if cached is not None and now - cached.at < _SUMMARY_TTL:
            return cached
        source = self.shared if self.shared is not None else self.series
        series = source.get(key) or self.series.get(key)
        if series is None:
            return None
        summary = self._summaries[key] = summarize(series, now)
        return summary

    def invalidate(self) -> None:
        self._summaries.clear()

    def keys(self) -> set[str]:
        keys = set(self.series)
        if self.shared is not None:
            keys.update(self.shared)
        return keys

    def snapshot(self) -> dict[str, dict[str, dict[str, float | int | None]]]:
        out = {}
        for key in sorted(self.keys()):
            summary = self.summary(key)
            if summary is not None:
                out[key] = {name: w.to_json() for name, w in summary.windows.items()}
        return out

    def endpoint_stats(self) -> dict[tuple[str, str], dict[str, float]]:
        """The ``stats`` argument of ``catalog.render.model_endpoints``: (vendor, vendor model) -> figures."""
        out: dict[tuple[str, str], dict[str, float]] = {}
        for key in self.keys():
            summary = self.summary(key)
            if summary is None:
                continue
            vendor, _, model = key.partition("/")
            figures: dict[str, float] = {}
            ttft = summary.best("ttft_p50_ms")
            if ttft is not None:
                figures["latency_ms"] = round(ttft, 1)
            tps = summary.best("tokens_per_s")
            if tps is not None:
                figures["throughput_tps"] = round(tps, 1)
            uptime = summary.windows["30m"].uptime
            if uptime is None:
                uptime = summary.windows["1d"].uptime
            if uptime is not None:
                figures["uptime"] = round(uptime, 4)
            for name, window in summary.windows.items():
                for field, value in window.to_json().items():
                    if value is not None:
                        figures[f"{field}_{name}"] = float(value)
            out[(vendor, model)] = figures
        return out
