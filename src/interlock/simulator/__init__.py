"""A realistic simulated vendor for every catalog model (vendor id ``simulator``).

Use :class:`SimulatorTransport` in-process (base URL ``http://simulator.internal``)
or ``interlock simulator`` for a standalone HTTP server speaking the OpenAI,
Anthropic and Gemini wire formats. See the README's *The simulator* section.
"""

from interlock.simulator.faults import FaultSpec, LatencyOverride, parse_fault_header, parse_latency_header
from interlock.simulator.latency import LatencyProfile, default_profile, model_class, sample_latency
from interlock.simulator.settings import SimulatorSettings
from interlock.simulator.transport import BASE_URL, SimulatorTransport

VENDOR_ID = "simulator"

__all__ = [
    "BASE_URL",
    "VENDOR_ID",
    "FaultSpec",
    "LatencyOverride",
    "LatencyProfile",
    "SimulatorSettings",
    "SimulatorTransport",
    "default_profile",
    "model_class",
    "parse_fault_header",
    "parse_latency_header",
    "sample_latency",
]
