"""How long a simulated model takes: time to first token and output speed.

Real vendors' latencies are right-skewed: most requests are close to the
median, a tail is several times slower. A log-normal fitted to a p50 and a p95
reproduces that with two numbers people actually know from dashboards, so
profiles are written as percentiles and sampled with :func:`sample_latency`.
Sampling takes an explicit :class:`random.Random` so tests check the
distribution statistically, without sleeping.

Defaults depend on a *class* derived from catalog facts (name, family,
reasoning capability, output price): a nano model answers faster than an
opus-class one, and reasoning models spend extra time thinking before the
first visible token: their profile's TTFT is the time to the first *reasoning*
token, and the reasoning tokens a request spends are added on top at the
sampled speed, so effort and budgets change TTFT like they do at the vendor.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from interlock.core.model import Model
from interlock.simulator.catalog_view import output_price

Z95 = 1.6448536269514722  # standard normal quantile at 0.95


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Percentiles of time to first token (seconds) and output tokens per second.

    ``tps_p95`` is the fast end of the speed distribution (95% of requests are
    slower), so ``tps_p95 >= tps_p50`` like ``ttft_p95 >= ttft_p50``.
    """

    ttft_p50: float
    ttft_p95: float
    tps_p50: float
    tps_p95: float

    def __post_init__(self) -> None:
        for name in ("ttft_p50", "ttft_p95", "tps_p50", "tps_p95"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        if self.ttft_p95 < self.ttft_p50:
            raise ValueError(f"ttft_p95: must be >= ttft_p50 ({self.ttft_p50:g}), got {self.ttft_p95:g}")
        if self.tps_p95 < self.tps_p50:
            raise ValueError(f"tps_p95: must be >= tps_p50 ({self.tps_p50:g}), got {self.tps_p95:g}")


# Classes ordered from fastest to slowest; figures are typical public dashboard numbers.
DEFAULT_PROFILES: dict[str, LatencyProfile] = {
    "tiny": LatencyProfile(ttft_p50=0.35, ttft_p95=0.9, tps_p50=180.0, tps_p95=300.0),
    "small": LatencyProfile(ttft_p50=0.6, ttft_p95=1.5, tps_p50=110.0, tps_p95=175.0),
    "standard": LatencyProfile(ttft_p50=0.8, ttft_p95=2.2, tps_p50=70.0, tps_p95=110.0),
    "large": LatencyProfile(ttft_p50=1.6, ttft_p95=4.5, tps_p50=35.0, tps_p95=60.0),
    "reasoning_small": LatencyProfile(ttft_p50=0.7, ttft_p95=1.8, tps_p50=140.0, tps_p95=240.0),
    "reasoning": LatencyProfile(ttft_p50=1.0, ttft_p95=2.8, tps_p50=80.0, tps_p95=130.0),
    "reasoning_large": LatencyProfile(ttft_p50=1.8, ttft_p95=5.0, tps_p50=50.0, tps_p95=90.0),
}

_TINY = ("nano", "flash-lite", "lite", "tiny", "1b", "3b", "8b", "gemma")
_SMALL = ("mini", "flash", "haiku", "small", "turbo", "instant", "7b", "9b", "12b", "14b")
_LARGE = ("opus", "gpt-4.5", "ultra", "405b", "large", "70b", "72b")


def _markers(words: tuple[str, ...]) -> re.Pattern[str]:
    """Whole-word markers: "mini" must not match inside "gemini"."""
    return re.compile("|".join(rf"(?<![a-z0-9.]){re.escape(w)}(?![a-z0-9])" for w in words))


_TINY_RE, _SMALL_RE, _LARGE_RE = _markers(_TINY), _markers(_SMALL), _markers(_LARGE)
_LARGE_OUTPUT_PRICE = 30_000_000  # micro-USD per 1M output tokens: $30/M and up is a big model


def lognormal_params(p50: float, p95: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the log-normal whose median is ``p50`` and 95th percentile ``p95``."""
    return math.log(p50), (math.log(p95) - math.log(p50)) / Z95


def sample_lognormal(p50: float, p95: float, rng: random.Random) -> float:
    mu, sigma = lognormal_params(p50, p95)
    return rng.lognormvariate(mu, sigma) if sigma > 0 else p50


def sample_latency(profile: LatencyProfile, rng: random.Random) -> tuple[float, float]:
    """One request's ``(ttft_seconds, tokens_per_second)``."""
    return (
        sample_lognormal(profile.ttft_p50, profile.ttft_p95, rng),
        sample_lognormal(profile.tps_p50, profile.tps_p95, rng),
    )


def model_class(model: Model) -> str:
    """The latency class of a catalog model, from its name, family, capabilities and price."""
    text = f"{model.id} {model.name} {model.family or ''}".lower()
    price = output_price(model)
    reasoning = "reasoning" in model.capabilities
    large = bool(_LARGE_RE.search(text)) or (price is not None and price >= _LARGE_OUTPUT_PRICE)
    tiny = bool(_TINY_RE.search(text))
    small = tiny or bool(_SMALL_RE.search(text))
    if reasoning:
        if small:
            return "reasoning_small"
        return "reasoning_large" if large else "reasoning"
    if tiny:
        return "tiny"
    if small:
        return "small"
    if large:
        return "large"
    return "standard"


def default_profile(model: Model) -> LatencyProfile:
    return DEFAULT_PROFILES[model_class(model)]
