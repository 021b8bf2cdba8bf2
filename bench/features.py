"""What each feature adds to a request, in instructions (issue 26: "Features stay on").

Issue 26's target: guardrails (rules), the response cache (miss path) and the request log each add at most 5%
CPU per request when enabled. This counts, with ``bench/pipeline.py --instructions`` (callgrind, the
measured requests only, after a warm-up: the figure is the same on a loaded machine as on a quiet one), the
instructions per non-streaming request of the gateway in process with a canned vendor answer:

- ``base``: request log off, no guardrails, no response cache;
- ``log``: the request log on (SQLite, level metadata; the writer thread's work counted too);
- ``guardrails``: every detector on, rules only (pii monitor, secrets block, prompt_injection block with the
  classifier off), on the request and on the answer;
- ``cache-miss``: the response cache on (memory), every request a miss: key, lookup, the answer stored, the
  cache full so each store evicts the oldest answer (``pipeline.py --cache miss``);
- ``all``: the three together (no target of its own; beside it, the sum of the three alone);
- ``guardrails-new`` (only with ``--only``): guardrails with their verdict cache off, every text scanned.

Every configuration, the base included, numbers its requests (``pipeline.py --unique``): each user message
and each answer is new, as in production, while the system prompt repeats; the comparison is like for like.
Each feature's row is base + feature against base: ``+ vs base`` is the instructions it adds per request,
``% of base`` that as a share of the base, which the target compares with 5%.

    .venv/bin/python bench/features.py [-n 3200] [--only log,cache-miss] [--out bench/results/features.json]
                                       [--compiled]

It measures the gateway of its own checkout (``src/`` beside ``bench/`` goes first on ``PYTHONPATH``), or with
``--compiled`` its compiled build (``make fast``, ``build/fast``).

Prints a markdown table and writes every figure to ``bench/results/features.json`` (gitignored). Each
configuration takes one callgrind run, 2-4 minutes at ``-n 3200`` (more on a busy machine).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SRC = BENCH_DIR.parent / "src"
sys.path.insert(0, str(BENCH_DIR))

from harness import bench_main, compiled_env, environment, log  # noqa: E402
from pipeline import WARM_UP, configure, instructions  # noqa: E402

#: The issue's target: what a feature may add, as a percentage of the base's instructions per request.
TARGET_PERCENT = 5.0


@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    log: str = "off"
    guardrails: str = ""
    cache: str = ""
    verdict_cache: bool = True
    #: Whether the issue's target applies (not to the base, nor to all features at once).
    targeted: bool = True


BASE = Feature("base", "base: log off, no guardrails, no cache", targeted=False)
FEATURES = (
    BASE,
    Feature("log", "request log on (SQLite, metadata)", log="sqlite"),
    Feature("guardrails", "guardrails: every detector, rules, input + output", guardrails="all"),
    Feature("cache-miss", "response cache on, every request a miss", cache="miss"),
    Feature("all", "all three together", log="sqlite", guardrails="all", cache="miss", targeted=False),
)
#: Measured only when named in --only.
EXTRA = (Feature("guardrails-new", "guardrails, no verdict cache (every text scanned)", guardrails="all",
                 verdict_cache=False),)
BY_NAME = {f.name: f for f in (*FEATURES, *EXTRA)}
#: The features "all" combines, for the sum of their additions beside its own.
COMBINED = ("log", "guardrails", "cache-miss")


def measure(feature: Feature, n: int) -> int:
    """Instructions per request of ``feature`` (a callgrind run)."""
    configure(guardrails=feature.guardrails, cache=feature.cache, unique=True, verdict_cache=feature.verdict_cache)
    try:
        return instructions(n, None, feature.log)
    finally:
        configure()


def rows(counts: dict[str, int]) -> list[dict[str, Any]]:
    """One row per measured feature: its count, what it adds to the base's and whether the target is met."""
    base = counts["base"]
    out = []
    for name, count in counts.items():
        feature = BY_NAME[name]
        added = count - base
        percent = added / base * 100
        out.append({**asdict(feature), "instructions_per_request": count,
                    "added": None if feature is BASE else added,
                    "percent": None if feature is BASE else round(percent, 2),
                    "target_met": percent <= TARGET_PERCENT if feature.targeted else None})
    return out


def render(result: dict[str, Any]) -> str:
    lines = [f"Instructions per non-streaming request (callgrind, -n {result['n']}, every request new; "
             f"{result['started_at']}, `{result['commit'][:7]}`):", "",
             f"| configuration | instructions / request | + vs base | % of base | target ≤ {TARGET_PERCENT:g}% |",
             "| --- | ---: | ---: | ---: | --- |"]
    for row in result["rows"]:
        met = row["target_met"]
        target = "—" if met is None else "met" if met else "**missed**"
        added = "—" if row["added"] is None else f"{row['added']:+,}"
        percent = "—" if row["percent"] is None else f"{row['percent']:+.1f}%"
        lines.append(f"| {row['label']} | {row['instructions_per_request']:,} | {added} | {percent} | {target} |")
    by_name = {row["name"]: row for row in result["rows"]}
    if "all" in by_name and all(name in by_name for name in COMBINED):
        alone = sum(by_name[name]["added"] for name in COMBINED)
        lines += ["", f"All three together add {by_name['all']['added']:+,}; alone they add {alone:+,} in sum."]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3200,
                        help="requests per measured run (default 3200; a multiple of 32)")
    parser.add_argument("--only", help="comma-separated configurations to measure besides the base: "
                                       + ", ".join(name for name in BY_NAME if name != "base"))
    parser.add_argument("--out", default=str(BENCH_DIR / "results" / "features.json"))
    parser.add_argument("--compiled", action="store_true",
                        help="measure the compiled build (make fast; built first if missing or stale)")
    args = parser.parse_args(argv)
    if args.n < 32 or args.n % 32:
        parser.error("-n must be a positive multiple of 32 (the concurrency)")
    names = [f.name for f in FEATURES]
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in BY_NAME]
        if unknown:
            parser.error(f"--only: unknown {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
        names = ["base", *(name for name in BY_NAME if name in wanted and name != "base")]
    args.names = names
    return args


def run(args: argparse.Namespace, argv: list[str]) -> int:
    # The gateway measured is this checkout's (the virtualenv's interlock may be installed from another one).
    os.environ["PYTHONPATH"] = (compiled_env({})["PYTHONPATH"] if args.compiled else
                                os.pathsep.join(filter(None, (str(SRC), os.environ.get("PYTHONPATH")))))
    started = _dt.datetime.now(_dt.UTC)
    counts: dict[str, int] = {}
    for name in args.names:
        clock = time.monotonic()
        counts[name] = measure(BY_NAME[name], args.n)
        log(f"{name}: {counts[name]:,} instructions per request ({time.monotonic() - clock:.0f} s)")
    env = environment()
    result: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python bench/features.py" + (f" {shlex.join(argv)}" if argv else ""),
        "commit": env.get("git_commit") or "?",
        "machine": env,
        "n": args.n,
        "target_percent": TARGET_PERCENT,
        "method": "bench/pipeline.py --instructions --unique: callgrind instructions of n requests after a "
                  f"warm-up of {WARM_UP} (every thread's, between two marks), per request; the gateway in process, a canned vendor "
                  "answer, non-streaming, concurrency 32, every user message and answer numbered anew",
        "rows": rows(counts),
    }
    result["table"] = render(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(result["table"])
    print(f"\nresults written to {os.path.relpath(out, Path.cwd())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    return bench_main("features", lambda: run(args, argv))


if __name__ == "__main__":
    sys.exit(main())
