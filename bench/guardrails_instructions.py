"""Instructions per KiB of the rule-based detectors, counted by callgrind: the speed figure that does not drift.

``bench/guardrails.py --only speed`` times the same mixes, and moves with whatever else the machine runs;
instruction counts do not, so two versions can be compared on a busy machine. For each mix (64 prompts of
1-8 KiB, ``guardrails_data.SPEED_MIXES``) and each detector, a child process scans the mix once or three
times under callgrind; the difference over two passes is the scan's own count (start-up and the first,
cache-warming pass cancel out). ``--src`` measures another checkout's ``src`` (a detector of the same API:
``DlpDetector().scan``, ``InjectionDetector().score``) beside this one.

    .venv/bin/python bench/guardrails_instructions.py [--src /path/to/other/src] [--data ../shared/guardrails]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SRC = BENCH_DIR.parent / "src"
sys.path.insert(0, str(BENCH_DIR))

from guardrails_data import DEFAULT_DATA, SPEED_MIXES, speed_mix  # noqa: E402

DETECTORS = ("dlp", "injection")


def child(data: Path, mix: int, detector: str, passes: int) -> None:
    from interlock.guardrails import DlpDetector
    from interlock.guardrails.injection import InjectionDetector

    _, injections, ascii_only = SPEED_MIXES[mix]
    prompts = speed_mix(data, injections, ascii_only)
    scan = DlpDetector().scan if detector == "dlp" else InjectionDetector().score
    for _ in range(passes):
        for p in prompts:
            scan(p)


def count(src: Path, data: Path, mix: int, detector: str) -> float:
    """Instructions per KiB of one pass of ``detector`` over mix ``mix``, with ``src`` on the path."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    totals = []
    env = {**os.environ, "PYTHONPATH": str(src)}
    with tempfile.TemporaryDirectory(prefix="interlock-gr-cg-") as tmp:
        for passes in (1, 3):
            cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.{passes}", sys.executable, __file__,
                   "--child", str(mix), detector, str(passes), "--data", str(data)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            found = re.search(r"Collected : (\d+)", done.stderr)
            if done.returncode != 0 or found is None:
                raise SystemExit(f"callgrind run failed:\n{done.stdout}\n{done.stderr[-2000:]}")
            totals.append(int(found.group(1)))
    _, injections, ascii_only = SPEED_MIXES[mix]
    kib = sum(len(p.encode()) for p in speed_mix(data, injections, ascii_only)) / 1024
    return (totals[1] - totals[0]) / 2 / kib


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--src", type=Path, help="another checkout's src/ to count beside this one")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mix, detector, passes = args.child
        child(args.data, int(mix), detector, int(passes))
        return 0
    sources = [("this checkout", SRC)] + ([(f"{args.src}", args.src)] if args.src else [])
    head = "| mix | " + " | ".join(f"{d} ({name})" for name, _ in sources for d in DETECTORS) + " |"
    print("instructions per KiB (callgrind, one pass)\n")
    print(head)
    print("|---|" + "---:|" * (len(head.split("|")) - 3))
    for i, (label, _, _) in enumerate(SPEED_MIXES):
        cells = [f"{count(src, args.data, i, d):,.0f}" for _, src in sources for d in DETECTORS]
        print(f"| {label} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
