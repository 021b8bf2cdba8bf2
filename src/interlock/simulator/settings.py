"""Simulator configuration: the ``simulator:`` section of ``interlock.yaml``.

Shape (every key optional)::

    simulator:
      time_scale: 1.0            # multiplies every delay; 0 = instant, never sleeps
      allow_fault_headers: false # honour x-interlock-simulator-fault / -latency
      seed: 7                    # seeds latency and fault draws (content is seeded by the request)
      cache_ttl_s: 300           # how long a prompt prefix stays cached (automatic caching: OpenAI,
                                 # Gemini wires; Anthropic's markers say 5m or 1h); 0: no caching
      cache_max_entries: 20000   # bound on remembered prefixes (oldest evicted)
      faults:                    # model id or glob pattern ("*", "openai/*") -> fault
        "openai/*": "rate=0.05;error=503"
        "anthropic/claude-sonnet-4":
          rate: 0.01
          error_event: 529
      latency:                   # model id or glob pattern -> percentiles
        "openai/gpt-4.1-mini": {ttft_p50: 0.5, ttft_p95: 1.2, tps_p50: 120, tps_p95: 170}

Bad values raise ``ValueError`` whose message starts with the config path of
the offending key (``simulator.faults.openai/*.rate: ...``), because a config
error is only useful if it says where to look.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from interlock.simulator.faults import FaultSpec, FaultSyntaxError, fault_from_config
from interlock.simulator.latency import LatencyProfile

_KNOWN_KEYS = frozenset(
    {"time_scale", "allow_fault_headers", "seed", "cache_ttl_s", "cache_max_entries", "faults", "latency"}
)
T = TypeVar("T")
_LATENCY_KEYS = ("ttft_p50", "ttft_p95", "tps_p50", "tps_p95")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    time_scale: float = 1.0
    allow_fault_headers: bool = False
    faults: Mapping[str, FaultSpec] = field(default_factory=_empty)
    latency: Mapping[str, LatencyProfile] = field(default_factory=_empty)
    cache_ttl_s: float = 300.0
    cache_max_entries: int = 20_000
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_scale) and self.time_scale >= 0):
            raise ValueError(f"simulator.time_scale: must be a number >= 0, got {self.time_scale!r}")
        if not (math.isfinite(self.cache_ttl_s) and self.cache_ttl_s >= 0):
            raise ValueError(f"simulator.cache_ttl_s: must be a number >= 0, got {self.cache_ttl_s!r}")
        if self.cache_max_entries < 0:
            raise ValueError(f"simulator.cache_max_entries: must be >= 0, got {self.cache_max_entries!r}")

    def fault_for(self, model_id: str) -> FaultSpec | None:
        return _lookup(self.faults, model_id)

    def latency_for(self, model_id: str) -> LatencyProfile | None:
        return _lookup(self.latency, model_id)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> SimulatorSettings:
        """Validate the ``simulator:`` mapping from ``interlock.yaml``."""
        if not isinstance(section, Mapping):
            raise ValueError(f"simulator: expected a mapping, got {type(section).__name__}")
        for key in section:
            if key not in _KNOWN_KEYS:
                raise ValueError(f"simulator.{key}: unknown key (known: {', '.join(sorted(_KNOWN_KEYS))})")
        kwargs: dict[str, Any] = {}
        if "time_scale" in section:
            kwargs["time_scale"] = _float(section["time_scale"], "simulator.time_scale", lo=0.0)
        if "allow_fault_headers" in section:
            value = section["allow_fault_headers"]
            if not isinstance(value, bool):
                raise ValueError(f"simulator.allow_fault_headers: expected true or false, got {value!r}")
            kwargs["allow_fault_headers"] = value
        if "seed" in section:
            value = section["seed"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"simulator.seed: expected an integer, got {value!r}")
            kwargs["seed"] = value
        if "cache_ttl_s" in section:
            kwargs["cache_ttl_s"] = _float(section["cache_ttl_s"], "simulator.cache_ttl_s", lo=0.0)
        if "cache_max_entries" in section:
            value = section["cache_max_entries"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"simulator.cache_max_entries: expected an integer >= 0, got {value!r}")
            kwargs["cache_max_entries"] = value
        if "faults" in section:
            kwargs["faults"] = MappingProxyType(_faults(section["faults"]))
        if "latency" in section:
            kwargs["latency"] = MappingProxyType(_latencies(section["latency"]))
        return cls(**kwargs)


def _lookup(table: Mapping[str, T], model_id: str) -> T | None:
    """Exact id first, then the longest (most specific) matching glob pattern."""
    if model_id in table:
        return table[model_id]
    best: tuple[int, T] | None = None
    for pattern, value in table.items():
        if fnmatch.fnmatchcase(model_id, pattern) and (best is None or len(pattern) > best[0]):
            best = (len(pattern), value)
    return None if best is None else best[1]


def _float(raw: object, where: str, *, lo: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < lo:
        raise ValueError(f"{where}: expected a number >= {lo:g}, got {raw!r}")
    return float(raw)


def _patterns(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping of model id or pattern to settings, got {type(raw).__name__}")
    for key in raw:
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where}: model ids and patterns must be non-empty strings, got {key!r}")
    return raw


def _faults(raw: object) -> dict[str, FaultSpec]:
    out: dict[str, FaultSpec] = {}
    for pattern, spec in _patterns(raw, "simulator.faults").items():
        try:
            out[pattern] = fault_from_config(spec, f"simulator.faults.{pattern}")
        except FaultSyntaxError as exc:
            raise ValueError(str(exc)) from None
    return out


def _latencies(raw: object) -> dict[str, LatencyProfile]:
    out: dict[str, LatencyProfile] = {}
    for pattern, spec in _patterns(raw, "simulator.latency").items():
        where = f"simulator.latency.{pattern}"
        if not isinstance(spec, Mapping):
            raise ValueError(f"{where}: expected a mapping with {', '.join(_LATENCY_KEYS)}")
        for key in spec:
            if key not in _LATENCY_KEYS:
                raise ValueError(f"{where}.{key}: unknown key (known: {', '.join(_LATENCY_KEYS)})")
        values: dict[str, float] = {}
        for key in _LATENCY_KEYS:
            if key not in spec:
                raise ValueError(f"{where}.{key}: required")
            values[key] = _float(spec[key], f"{where}.{key}", lo=1e-9)
        try:
            out[pattern] = LatencyProfile(**values)
        except ValueError as exc:
            raise ValueError(f"{where}.{exc}") from None
    return out
