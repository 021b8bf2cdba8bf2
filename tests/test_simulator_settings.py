"""Simulator config parsing and the fault/latency header grammar."""

from __future__ import annotations

import pytest

from interlock.simulator.faults import (
    FaultSpec,
    FaultSyntaxError,
    describe,
    parse_fault_header,
    parse_latency_header,
)
from interlock.simulator.latency import LatencyProfile
from interlock.simulator.settings import SimulatorSettings


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("error=503", FaultSpec(kind="error", status=503)),
        ("error=429;retry_after=2", FaultSpec(kind="error", status=429, retry_after=2.0)),
        ("error=429", FaultSpec(kind="error", status=429, retry_after=1.0)),
        ("refuse", FaultSpec(kind="refuse")),
        (" reset ", FaultSpec(kind="reset")),
        ("hang", FaultSpec(kind="hang")),
        ("slow_first_byte=2.5", FaultSpec(kind="slow_first_byte", seconds=2.5)),
        ("stop_after=3", FaultSpec(kind="stop_after", chunks=3)),
        ("malformed_json", FaultSpec(kind="malformed_json")),
        ("malformed_sse", FaultSpec(kind="malformed_sse")),
        ("error_event", FaultSpec(kind="error_event", status=529)),
        ("error_event=500", FaultSpec(kind="error_event", status=500)),
        ("rate=0.5;error=500", FaultSpec(kind="error", status=500, rate=0.5)),
        ("ERROR=502 ; Rate = 0.25", FaultSpec(kind="error", status=502, rate=0.25)),
    ],
)
def test_fault_header_grammar(header: str, expected: FaultSpec) -> None:
    spec = parse_fault_header(header)
    assert spec == expected
    assert parse_fault_header(describe(spec)) == spec


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("", "is empty"),
        ("explode", "unknown fault key"),
        ("error", "needs a status"),
        ("error=200", "between 400 and 599"),
        ("error=abc", "expected a number"),
        ("rate=2;error=500", "rate: must be between 0 and 1"),
        ("rate=0.5", "names no fault kind"),
        ("reset;hang", "only one fault kind"),
        ("stop_after=1.5", "whole number"),
        ("hang=3", "takes no value"),
        ("error=500;retry_after=3", "only applies to error=429"),
        ("error=500;error=502", "given twice"),
    ],
)
def test_fault_header_errors_name_the_header(header: str, fragment: str) -> None:
    with pytest.raises(FaultSyntaxError) as info:
        parse_fault_header(header)
    assert str(info.value).startswith("x-interlock-simulator-fault: ")
    assert fragment in str(info.value)


def test_latency_header() -> None:
    assert parse_latency_header("ttft=0.2;tps=100").ttft == 0.2
    assert parse_latency_header("tps=50").tps == 50 and parse_latency_header("tps=50").ttft is None
    for bad in ("ttft=-1", "tps=0", "speed=3", "ttft"):
        with pytest.raises(FaultSyntaxError, match="x-interlock-simulator-latency"):
            parse_latency_header(bad)


def test_from_config_full_shape() -> None:
    settings = SimulatorSettings.from_config(
        {
            "time_scale": 0,
            "allow_fault_headers": True,
            "seed": 7,
            "cache_ttl_s": 60,
            "cache_max_entries": 10,
            "faults": {
                "openai/*": "rate=0.05;error=503",
                "openai/gpt-4.1-mini": {"rate": 0.5, "error": 429, "retry_after": 3},
                "*": {"reset": True, "rate": 0.01},
            },
            "latency": {"anthropic/*": {"ttft_p50": 0.5, "ttft_p95": 1.0, "tps_p50": 50, "tps_p95": 80}},
        }
    )
    assert settings.time_scale == 0 and settings.allow_fault_headers and settings.seed == 7
    assert settings.fault_for("openai/gpt-4.1-mini") == FaultSpec(kind="error", status=429, rate=0.5, retry_after=3.0)
    assert settings.fault_for("openai/gpt-4.1") == FaultSpec(kind="error", status=503, rate=0.05)
    assert settings.fault_for("google/gemini-2.5-pro") == FaultSpec(kind="reset", rate=0.01)
    assert settings.latency_for("anthropic/claude-opus-4-1") == LatencyProfile(0.5, 1.0, 50, 80)
    assert settings.latency_for("openai/gpt-4.1") is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"faults": {"x": {"rate": 1.5, "error": 500}}}, "simulator.faults.x.rate: must be between 0 and 1"),
        ({"faults": {"x": "explode"}}, "simulator.faults.x.explode: unknown fault key"),
        ({"faults": {"x": {"error": 700}}}, "simulator.faults.x.error: must be between 400 and 599"),
        ({"faults": {"x": 3}}, "simulator.faults.x: expected a mapping or a fault string"),
        ({"faults": ["a"]}, "simulator.faults: expected a mapping"),
        ({"time_scale": -1}, "simulator.time_scale:"),
        ({"time_scale": "fast"}, "simulator.time_scale:"),
        ({"allow_fault_headers": "yes"}, "simulator.allow_fault_headers:"),
        ({"seed": 1.5}, "simulator.seed:"),
        ({"cache_max_entries": -3}, "simulator.cache_max_entries:"),
        ({"colour": "blue"}, "simulator.colour: unknown key"),
        ({"latency": {"m": {"ttft_p50": 1}}}, "simulator.latency.m.ttft_p95: required"),
        ({"latency": {"m": {"ttft_p50": 2, "ttft_p95": 1, "tps_p50": 5, "tps_p95": 9}}}, "simulator.latency.m.ttft_p95: must be >="),
        ({"latency": {"m": {"ttft_p50": 1, "ttft_p95": 2, "tps_p50": 5, "tps_p95": 9, "x": 1}}}, "simulator.latency.m.x: unknown key"),
    ],
)
def test_from_config_errors_name_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        SimulatorSettings.from_config(section)
    assert str(info.value).startswith(message), str(info.value)


def test_defaults() -> None:
    settings = SimulatorSettings.from_config({})
    assert settings == SimulatorSettings()
    assert settings.time_scale == 1.0 and not settings.allow_fault_headers and settings.fault_for("a/b") is None

