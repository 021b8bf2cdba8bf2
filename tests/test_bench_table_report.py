"""bench/table_report.py's instruction summary: the compiled build's rows and their change against the sources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import table_report  # noqa: E402


def _run(counts: dict[str, int]) -> dict[str, Any]:
    return {"gateways": {}, "config": {"mock_chunks": 20},
            "instructions": {k: {"instructions": v, "command": f"cmd {k}"} for k, v in counts.items()}}


def test_compiled_rows_are_compared_with_the_interpreted_ones() -> None:
    result = _run({"whole_log_off": 600_000, "whole_log_on": 690_000, "whole_stream": 960_000,
                   "whole_compiled_log_off": 420_000, "whole_compiled_log_on": 510_000,
                   "whole_compiled_stream": 720_000})
    summary = table_report.summarise(result)
    ratios = summary["compiled_vs_interpreted"]
    assert ratios["log_off"] == 0.7 and ratios["stream"] == 0.75
    assert abs(ratios["log_on"] - 510 / 690) < 1e-12
    assert summary["whole_compiled_instructions"]["stream_vs_request"] == 720 / 420
    lines = table_report._instruction_lines(result, summary)
    row = next(line for line in lines if line.startswith("| whole process, compiled build: whole answer, log off"))
    assert "420,000 (-30.0% vs interpreted)" in row and "`cmd whole_compiled_log_off`" in row
    stream = next(line for line in lines if line.startswith("| whole process, compiled build: 20-chunk stream"))
    assert "1.71x a whole answer" in stream and "(-25.0% vs interpreted)" in stream


def test_no_compiled_rows_no_comparison() -> None:
    result = _run({"whole_log_off": 600_000, "whole_log_on": 690_000})
    summary = table_report.summarise(result)
    assert "compiled_vs_interpreted" not in summary
    assert not any("compiled" in line for line in table_report._instruction_lines(result, summary))
