"""The llhttp parsing (server and vendor client) against the code before it: CPU per request and req/s, A/B.

Two gateways run at once on core 0, each in its own session: "new" from this
checkout's ``src``, "base" from a baseline revision checked out into a
temporary ``git worktree`` and run with ``PYTHONPATH`` pointing at its
``src`` (same venv, same config: the mock vendor of ``bench/run.py``, logging
off so the parser is a larger share of the work). With the kernel's autogroup
scheduling each gets an equal share of the core whatever threads it runs, so
the ratio of their req/s in one round is the inverse ratio of their CPU per
request, and a change in the machine's speed hits both at once (see
``bench/logging_overhead.py``). Each gateway is loaded by its own wrk (c=32)
on core 1 for the same seconds; rounds alternate which starts first. CPU per
request is each gateway's process-tree CPU time over the round divided by its
requests. Non-streamed (``chat.lua``) and streamed (``stream.lua``) requests
are measured in interleaved rounds.

The default baseline is the parent of the commit that removed
``src/interlock/wire/chunked.py`` (the hand-written parser): the same answer
before and after this branch is merged.

    .venv/bin/python bench/parser_ab.py [--baseline REV] [--seconds 8] [--rounds 5] [--modes chat,stream]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    GATEWAY_CORE,
    GATEWAY_MODEL,
    MASTER_KEY,
    UPSTREAM_KEY,
    Managed,
    WrkResult,
    cpu_seconds,
    ensure_wrk,
    require_autogroup,
    run_wrk,
    start_mock,
    wait_healthy,
)

REPO = Path(__file__).resolve().parent.parent
PY = str(REPO / ".venv" / "bin" / "python")
MOCK_PORT, NEW_PORT, BASE_PORT = 9121, 8421, 8422
SCRIPTS = {"chat": "chat.lua", "stream": "stream.lua"}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def default_baseline() -> str:
    """The parent of the commit that deleted the hand-written chunked decoder (the old parser)."""
    removed = git("log", "-1", "--format=%H", "--diff-filter=D", "HEAD", "--", "src/interlock/wire/chunked.py")
    if not removed:
        raise SystemExit("no commit removing src/interlock/wire/chunked.py in this history: give --baseline REV")
    return git("rev-parse", f"{removed}^")


def start_gateway(name: str, src: Path, port: int, home: Path) -> Managed:
    home.mkdir()
    cfg = home / "interlock.yaml"
    cfg.write_text(f"vendors:\n  mock:\n    type: openai\n    base_url: http://127.0.0.1:{MOCK_PORT}/v1\n"
                   f"    api_key: {UPSTREAM_KEY}\nlogging:\n  level: 'off'\n")
    env = dict(os.environ, INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(home / "state"),
               PYTHONPATH=str(src))
    gw = Managed(f"gateway-{name}", ["taskset", "-c", str(GATEWAY_CORE), PY, "-m", "interlock", "serve",
                                     "--port", str(port), "--config", str(cfg)], env=env, logdir=home)
    try:
        wait_healthy(gw, port, "/healthz", 60)
    except BaseException:
        gw.stop()
        raise
    return gw


@dataclass
class Side:
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


def _load(results: dict[str, WrkResult], failures: list[BaseException], name: str, wrk: str, port: int,
          script: str, seconds: int) -> None:
    try:
        results[name] = run_wrk(wrk, f"http://127.0.0.1:{port}/v1/chat/completions", script, connections=32,
                                seconds=seconds, model=GATEWAY_MODEL, key=MASTER_KEY)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
        failures.append(exc)


def one_round(gateways: dict[str, tuple[int, Managed]], wrk: str, script: str, seconds: int,
              order: list[str]) -> dict[str, tuple[WrkResult, float]]:
    """Both gateways loaded at once; each one's wrk result and CPU seconds over the round."""
    before = {name: cpu_seconds(gw.tree()) for name, (_, gw) in gateways.items()}
    results: dict[str, WrkResult] = {}
    failures: list[BaseException] = []
    threads = [threading.Thread(target=_load, args=(results, failures, name, wrk, gateways[name][0], script,
                                                    seconds)) for name in order]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    out = {}
    for name, (_, gw) in gateways.items():
        result = results[name]
        if result.errors:
            raise SystemExit(f"{name}: {result.errors} errors in {script}\n{gw.output()}")
        out[name] = (result, cpu_seconds(gw.tree()) - before[name])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default=None, help="git revision to compare with (default: see above)")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--modes", default="chat,stream", help="comma-separated: chat (non-streamed), stream")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if unknown := [m for m in modes if m not in SCRIPTS]:
        raise SystemExit(f"unknown mode(s) {unknown}: expected chat, stream")
    require_autogroup("A/B method")
    baseline = git("rev-parse", args.baseline) if args.baseline else default_baseline()
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="parser-ab-"))
    tree = tmp / "baseline"
    git("worktree", "add", "--detach", str(tree), baseline)
    try:
        mock = start_mock(MOCK_PORT, tmp)
    except BaseException:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
        raise
    gateways: dict[str, tuple[int, Managed]] = {}
    sides = {(mode, name): Side() for mode in modes for name in ("new", "base")}
    try:
        gateways["new"] = (NEW_PORT, start_gateway("new", REPO / "src", NEW_PORT, tmp / "new"))
        gateways["base"] = (BASE_PORT, start_gateway("base", tree / "src", BASE_PORT, tmp / "base"))
        for mode in modes:  # warm both up
            one_round(gateways, wrk, SCRIPTS[mode], 2, ["new", "base"])
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else list(reversed(modes)):
                order = ["new", "base"] if r % 2 == 0 else ["base", "new"]
                found = one_round(gateways, wrk, SCRIPTS[mode], args.seconds, order)
                for name, (result, cpu) in found.items():
                    side = sides[(mode, name)]
                    side.rps.append(result.rps)
                    side.cpu_us.append(1e6 * cpu / max(result.requests, 1))
                new, base = sides[(mode, "new")], sides[(mode, "base")]
                print(f"round {r + 1} {mode:<6} new {new.rps[-1]:7,.0f} req/s {new.cpu_us[-1]:6.0f} µs CPU/req   "
                      f"base {base.rps[-1]:7,.0f} req/s {base.cpu_us[-1]:6.0f} µs CPU/req   "
                      f"({100 * (new.rps[-1] / base.rps[-1] - 1):+.1f}%)", file=sys.stderr, flush=True)
    finally:
        for _, gw in gateways.values():
            gw.stop()
        mock.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False,
                       capture_output=True)
    print(f"baseline {baseline[:12]} vs this checkout: two gateways sharing core 0, c=32 each, "
          f"{args.rounds} rounds of {args.seconds} s (medians; range of the per-round req/s ratio)")
    print(f"{'mode':<7} {'new req/s':>10} {'base req/s':>11} {'new/base':>9} {'range':>17} "
          f"{'new µs/req':>11} {'base µs/req':>12}")
    for mode in modes:
        new, base = sides[(mode, "new")], sides[(mode, "base")]
        ratios = [n / b - 1 for n, b in zip(new.rps, base.rps, strict=True)]
        print(f"{mode:<7} {statistics.median(new.rps):10,.0f} {statistics.median(base.rps):11,.0f} "
              f"{100 * statistics.median(ratios):+8.1f}% {100 * min(ratios):+7.1f}% .. {100 * max(ratios):+5.1f}% "
              f"{statistics.median(new.cpu_us):11.0f} {statistics.median(base.cpu_us):12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
