"""A routing policy as data: a named, reusable routing decision (parsed from ``policies:``).

Parsing and validation live in :mod:`interlock.routing.policies`; plans carry the
policy a name resolved to, and the routing engine and dispatcher read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Retry:
    """How hard to try one target before moving on, and the backoff between tries."""

    #: Tries of the same target for a retryable failure (1 = no retry on the same target).
    attempts: int = 2
    backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    #: A 429 whose Retry-After is longer than this moves to the next target instead of waiting.
    max_retry_after_s: float = 5.0


@dataclass(frozen=True, slots=True)
class MaxPrice:
    """USD per 1M tokens; None = no limit."""

    input: float | None = None
    output: float | None = None

    @property
    def active(self) -> bool:
        return self.input is not None or self.output is not None


@dataclass(frozen=True, slots=True)
class Filters:
    zdr: bool = False
    vendors: frozenset[str] = frozenset()
    exclude_vendors: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    max_price: MaxPrice = MaxPrice()


@dataclass(frozen=True, slots=True)
class PolicyTarget:
    name: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class DifficultyRule:
    """The ``difficulty`` strategy's settings: two tiers, a threshold on the scorer's score, and failover.

    A request whose difficulty score (``routing/difficulty.py``) is at least ``threshold`` goes to the strong
    tier, any other to the weak tier; within a tier the targets are ranked by ``tier_strategy``.
    """

    #: Target names per tier (each name also in the policy's ``targets``, weak first).
    weak: tuple[str, ...]
    strong: tuple[str, ...]
    threshold: float
    #: The share of strong calls the threshold was calibrated for (None: the threshold was set directly).
    strong_share: float | None = None
    #: How the tier's targets are ranked: any strategy but ``difficulty``.
    tier_strategy: str = "priority"
    #: When every target of the chosen tier fails or is filtered out, try the other tier.
    fallback_across_tiers: bool = True


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    targets: tuple[PolicyTarget, ...]
    strategy: str = "priority"
    #: Weights of the ``balanced`` strategy (normalised to sum to 1).
    balance: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"cost": 1 / 3, "latency": 1 / 3, "quality": 1 / 3}))
    #: Benchmark / eval name -> weight, for ``quality`` and ``balanced``.
    quality_weights: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    #: Target name -> {eval name -> score}: the user's own evals, merged over catalog benchmarks.
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: _EMPTY)
    expected_output_tokens: int | None = None
    retry: Retry = Retry()
    timeout_s: float = 120.0
    filters: Filters = Filters()
    #: Set for ``strategy: difficulty`` only.
    difficulty: DifficultyRule | None = None


#: Routing defaults for names that are not policies: the planner's order, default retries.
DEFAULT_POLICY = Policy("(default)", ())
