"""Routing: policies, per-request overrides, filters, strategies, circuit breakers, live stats, traces.

``engine.RoutingEngine`` turns a request into an ordered list of targets with
its explanation; ``pipeline/dispatch.py`` walks that list with retries and
failover. See the README's *Routing* section for the user's view.
"""

from interlock.core.policy import Policy
from interlock.core.trace import Attempt, RoutingTrace
from interlock.routing.circuit import BreakerSettings, Circuits
from interlock.routing.engine import RoutingEngine
from interlock.routing.policies import load_policies
from interlock.routing.stats import LiveStats

__all__ = ["Attempt", "BreakerSettings", "Circuits", "LiveStats", "Policy", "RoutingEngine", "RoutingTrace",
           "load_policies"]
