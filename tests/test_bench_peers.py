"""bench/peers.py's pure pieces: each peer's configuration and the results table (no network, no peer install)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from interlock.config import load_settings
from interlock.vendors.registry import VENDOR_TABLE

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import peers  # noqa: E402
import peers_gateways as pg  # noqa: E402


@pytest.mark.parametrize("request_log", ["sqlite", "off"])
def test_interlock_config_is_valid_and_points_at_the_mock(tmp_path: Path, request_log: str) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text(pg.interlock_config(9141, request_log))
    settings = load_settings(path, vendor_table=VENDOR_TABLE, environ={"INTERLOCK_HOME": str(tmp_path)})
    assert settings.vendors["mock"].base_url.startswith("http://127.0.0.1:9141/v1")
    assert settings.logging_enabled is (request_log == "sqlite")  # sqlite: interlock's default log


def test_interlock_launch_is_one_worker_on_the_gateway_core(tmp_path: Path) -> None:
    exe = tmp_path / "interlock"
    exe.touch()
    launch = pg.prepare_interlock(exe, 8441, 9141, "sqlite", tmp_path)
    assert launch.cmd[:3] == ["taskset", "-c", "0"]
    assert launch.cmd[launch.cmd.index("--workers") + 1] == "1"
    assert launch.env["INTERLOCK_MASTER_KEY"] == launch.key
    assert launch.health_path == "/healthz" and launch.model == "mock/bench-model"


def test_litellm_config_forwards_bench_model_with_logging_off() -> None:
    doc = yaml.safe_load(pg.litellm_config(9141))
    (entry,) = doc["model_list"]
    assert entry["model_name"] == "bench-model"
    assert entry["litellm_params"] == {"model": "openai/bench-model", "api_base": "http://127.0.0.1:9141/v1",
                                       "api_key": "bench-upstream-key"}
    assert doc["litellm_settings"] == {"set_verbose": False, "turn_off_message_logging": True}
    general = doc["general_settings"]
    assert general["disable_spend_logs"] is True and general["disable_error_logs"] is True
    assert general["master_key"].startswith("sk-")
    assert "database_url" not in general
    assert pg.LITELLM_ENV == {"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                              "LITELLM_TELEMETRY_DISABLED": "True"}


def test_portkey_is_pinned_exactly_and_routed_by_headers() -> None:
    manifest = pg.portkey_package_json()
    pins = {**manifest["dependencies"], **manifest["overrides"]}
    assert pins == {"@portkey-ai/gateway": pg.PORTKEY_VERSION, "@hono/node-server": pg.HONO_NODE_SERVER_VERSION}
    assert all(v[0].isdigit() for v in pins.values())  # exact versions, no ranges
    assert json.loads(json.dumps(manifest)) == manifest
    assert pg.portkey_headers(9141) == {"x-portkey-provider": "openai",
                                        "x-portkey-custom-host": "http://127.0.0.1:9141/v1"}


def test_pins_are_exact_versions() -> None:
    for pin in (pg.LITELLM_VERSION, pg.PORTKEY_VERSION, pg.HONO_NODE_SERVER_VERSION, pg.BIFROST_VERSION):
        assert all(part.isdigit() for part in pin.split(".")), pin


def _measured(label: str, version: str, rps: float, added: float | None, chunks: float, rss: float | None,
              other: float = 0.0) -> dict[str, Any]:
    row: dict[str, Any] = {
        "status": "measured", "label": label, "version": version,
        "c1": {"p50_ms": 0.1 + (added or 0), "p99_ms": 0.5, "samples": 1000, "errors": 0,
               "cpu_cores": {"other": other, "steal": 0.0}},
        "c32": {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "requests": 1000, "errors": 0,
                "cpu_cores": {"gateway": 0.95, "other": 0.0, "steal": 0.0}},
        "stream": {"rps": chunks / 101, "chunks_per_s": chunks, "chunks_per_stream": 101, "requests": 100,
                   "errors": 0, "cpu_cores": {}},
    }
    if added is not None:
        row["c1_added_p50_ms"] = added
    if rss is not None:
        row["peak_rss_mib"] = rss
    return row


def fake_result() -> dict[str, Any]:
    return {
        "started_at": "2026-12-06 18:00 UTC",
        "command": "make bench-peers",
        "machine": {"nproc": 2, "cpu": "AMD EPYC", "kernel": "6.1"},
        "config": {"warmup": 2, "duration": 10},
        "gateways": {
            "direct": _measured("direct to mock (baseline)", "bench/mock_upstream.py", 40000, None, 2e6, None),
            "interlock": _measured("interlock", "0.1.0 (abc1234)", 8000, 0.25, 250000, 210.0, other=0.5),
            "litellm": _measured("LiteLLM proxy", "1.108.7", 100, 12.5, 800, 400.0),
            "portkey": {"status": "failed", "label": "Portkey gateway", "version": "1.15.2",
                        "reason": "install failed: npm exited 1"},
            "bifrost": {"status": "not measured", "label": "Bifrost", "version": "1.6.3",
                        "reason": "only a launcher"},
        },
        "warnings": [],
    }


def test_table_rows_ratios_and_reasons() -> None:
    result = fake_result()
    result["warnings"] = peers.warnings_of(result)
    table = peers.render_table(result)
    lines = table.splitlines()
    assert "interlock vs peers, 2026-12-06 18:00 UTC" in lines[0]
    assert "`make bench-peers`" in table and "2 cores (nproc), AMD EPYC" in table
    assert ("| direct to mock (baseline) | bench/mock_upstream.py | 0 (baseline) | 40,000 | 0.20 | 2,000,000 "
            "| - |") in lines
    assert "| interlock | 0.1.0 (abc1234) | +0.250 | 8,000 | 1.00 | 250,000 | 210.0 |" in lines
    assert "| LiteLLM proxy | 1.108.7 | +12.500 | 100 | 80.0 | 800 | 400.0 |" in lines
    assert "| Portkey gateway | 1.15.2 | failed | - | - | - | - |" in lines
    assert "| Bifrost | 1.6.3 | not measured | - | - | - | - |" in lines
    assert "- Bifrost: not measured: only a launcher" in lines
    assert "- Portkey gateway: failed: install failed: npm exited 1" in lines
    assert any(line.startswith("WARNING: interlock c1: processes outside the benchmark used 0.50") for line in lines)


def test_ratio_without_interlock_is_a_dash() -> None:
    result = fake_result()
    del result["gateways"]["interlock"]
    assert "| LiteLLM proxy | 1.108.7 | +12.500 | 100 | - | 800 | 400.0 |" in peers.render_table(result)


def test_failed_requests_are_warned() -> None:
    result = fake_result()
    result["gateways"]["litellm"]["c32"]["errors"] = 50
    assert "LiteLLM proxy c32: 50 failed requests of 1000" in peers.warnings_of(result)


def test_arguments() -> None:
    args = peers.parse_args(["--quick", "--only", "interlock,litellm"])
    assert (args.duration, args.warmup, args.only) == (3, 1, ["interlock", "litellm"])
    assert peers.parse_args(["--seconds", "7"]).duration == 7
    assert peers.parse_args([]).only == list(pg.ALL)
    with pytest.raises(SystemExit):
        peers.parse_args(["--only", "interlock,nginx"])
    assert peers.command_of([]) == "make bench-peers"
    assert peers.command_of(["--quick", "--only", "interlock"]) == 'make bench-peers ARGS="--quick --only interlock"'
