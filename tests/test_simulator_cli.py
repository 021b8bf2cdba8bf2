"""``interlock simulate`` output and ``interlock simulator`` as a real process."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import signal
import subprocess
import sys

import aiohttp
import orjson
import pytest

from interlock.simulator.cli import add_simulate_parser, add_simulator_parser

SERVE = "import sys; from interlock.simulator.cli import run_simulator, add_simulator_parser; import argparse;" \
    "p = argparse.ArgumentParser(); s = p.add_subparsers(); add_simulator_parser(s);" \
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_simulate_parser(sub)
    add_simulator_parser(sub)
    return parser.parse_args(argv)


@pytest.mark.parametrize("stream", [False, True])
def test_simulate_prints_answer_timing_and_simulated_cost(stream: bool) -> None:
    argv = ["simulate", "--model", "openai/gpt-4.1-mini", "--prompt", "Explain retries", "--max-tokens", "30", "--time-scale", "0"]
    args = parse([*argv, "--stream"] if stream else argv)
    out = io.StringIO()
    assert args.func(args, out) == 0
    text = out.getvalue()
    assert "openai/gpt-4.1-mini (simulated)" in text
    usage = re.search(r"usage\s+(\d+) prompt \((\d+) cached\) \+ (\d+) completion", text)
    assert usage is not None and 0 < int(usage.group(3)) <= 30
    cost = re.search(r"cost\s+\$([0-9.]+) simulated, at openai list price", text)
    assert cost is not None
    prompt, completion = int(usage.group(1)), int(usage.group(3))
    # gpt-4.1-mini lists $0.40/M input and $1.60/M output
    assert float(cost.group(1)) == pytest.approx(prompt * 0.4e-6 + completion * 1.6e-6, rel=1e-9)
    assert ("time to first" in text) is stream


def test_simulate_rejects_unknown_models(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["simulate", "--model", "nope/nothing", "--prompt", "x"])
    assert args.func(args) == 2
    assert "unknown model" in capsys.readouterr().err


async def test_simulator_command_serves_until_terminated() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVE, "simulator", "--port", "0", "--time-scale", "0", "--format", "openai",
        "--allow-fault-headers", stderr=subprocess.PIPE, env={**os.environ},
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}/v1/chat/completions"
        body = {"model": "openai/gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=orjson.dumps(body)) as response:
                assert response.status == 200 and orjson.loads(await response.read())["object"] == "chat.completion"
            async with session.post(url, data=orjson.dumps(body), headers={"x-interlock-simulator-fault": "error=502"}) as response:
                assert response.status == 502
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


def test_simulator_command_reports_bad_config(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "interlock.yaml"
    path.write_text("simulator:\n  faults:\n    'openai/*': {rate: 3, error: 500}\n", encoding="utf-8")
    args = parse(["simulator", "--port", "0", "--config", str(path)])
    assert args.func(args) == 2
    assert "simulator.faults.openai/*.rate" in capsys.readouterr().err
