"""Build the compiled interlock: a copy of the package with the request path compiled to C by mypyc.

    .venv/bin/python scripts/build_fast.py [--out build/fast] [--jobs N]

mypyc ships with mypy (a dev dependency) and compiles type-annotated Python as it is: the compiled
modules behave as the Python ones and run in fewer instructions (docs/performance.md). The build
works on a copy of ``src/interlock`` under ``--out``, so no extension module ever lands next to the
sources (an editable install would go on importing a stale one after an edit). Run it with
``PYTHONPATH=build/fast``: ``make serve-fast``, ``make test-fast`` (the suite against this build).

It needs a C compiler and the Python headers (gcc; a pyenv or python3-dev Python has the headers).
A module belongs in ``COMPILED`` when it runs on every request (``bench/stage_profile.py``) and
mypyc accepts it: exact annotations (checked at run time), no class that interpreted code (tests
included) subclasses or monkeypatches, no async generator, no side effect in a slice's bounds
(docs/architecture.md, *The compiled build*). ``make test-fast`` after changing one.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The request path's modules, relative to src/interlock.
COMPILED = (
    "server/h1.py",
    "server/http.py",
    "pipeline/core.py",
    "pipeline/dispatch.py",
    "pipeline/settle.py",
    "routing/engine.py",
    "routing/planner.py",
    "routing/strategies.py",
    "routing/stats.py",
    "routing/circuit.py",
    "routing/affinity.py",
    "routing/residency.py",
    "core/trace.py",
    "core/plan.py",
    "governance/service.py",
    "governance/counters.py",
    "governance/estimate.py",
    "ledger/record.py",
    "ledger/rowcodec.py",
    "ledger/sink.py",
    "ledger/writer.py",
    "wire/openai_chat.py",
    "wire/chat_validation.py",
    "wire/sse.py",
    "vendors/http1.py",
    "core/pricing.py",
    "core/usage.py",
    "pipeline/stages.py",
    "vendors/openai_compat/chat.py",
    "vendors/openai_compat/embeddings.py",
    "observability/requests.py",
    "observability/metrics.py",
    "governance/auth.py",
    "catalog/tokens.py",
    "routing/trace.py",
    "routing/explain.py",
    "routing/overrides.py",
    "server/rsgi.py",
    "wire/shapes.py",
    "core/timers.py",
    "vendors/transport.py",
    "guardrails/guard.py",
    "guardrails/answer.py",
    "guardrails/dlp.py",
    "guardrails/gates.py",
    "guardrails/pii.py",
    "guardrails/secrets.py",
    "guardrails/validators.py",
    "guardrails/findings.py",
    "guardrails/injection.py",
    "guardrails/injection_rules.py",
    "guardrails/normalize.py",
    "cache/key.py",
    "cache/store.py",
    "cache/response_cache.py",
)

#: What marks a finished build: the list it was built from and the sources' state, so a rebuild is
#: skipped only when nothing changed.
STAMP = ".interlock-fast-build"

_SETUP = """\
from mypyc.build import mypycify
from setuptools import setup

setup(name="interlock-fast", ext_modules=mypycify({paths!r}, opt_level="3", multi_file=True))
"""


def _sources_state(src: Path) -> str:
    """Every source file's path, size and mtime: changes whenever a file is edited, added or removed."""
    parts = [" ".join(COMPILED)]
    for path in sorted(src.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            st = path.stat()
            parts.append(f"{path.relative_to(src)} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(parts)


def build(out: Path, jobs: int) -> Path:
    """Build ``out`` unless it is up to date. Callers at once (bench runs side by side) take turns on a lock
    beside it: the first builds, the others then find it up to date."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(out, jobs)


def _build(out: Path, jobs: int) -> Path:
    src = ROOT / "src" / "interlock"
    state = _sources_state(src)
    stamp = out / STAMP
    if stamp.is_file() and stamp.read_text() == state:
        print(f"build_fast: {out} is up to date")
        return out
    # Built beside ``out`` and swapped in when complete: a gateway started from ``out`` meanwhile never
    # sees half a build.
    work = out.with_name(out.name + ".new")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(src, work / "interlock", ignore=shutil.ignore_patterns("__pycache__"))
    # mypyc writes each extension module next to its copy (the paths are relative to ``work``); one C file
    # per module (multi_file) lets build_ext compile them on ``jobs`` cores.
    setup = work / "build" / "setup.py"
    setup.parent.mkdir()
    setup.write_text(_SETUP.format(paths=[f"interlock/{m}" for m in COMPILED]))
    print(f"build_fast: mypyc on {len(COMPILED)} modules into {out} (a minute or two)", flush=True)
    done = subprocess.run([sys.executable, str(setup), "build_ext", "--inplace", f"--parallel={jobs}"], cwd=work,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"build_fast: mypyc failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    shutil.rmtree(work / "build")
    missing = [m for m in COMPILED if not list((work / "interlock" / m).parent.glob(Path(m).stem + ".*.so"))]
    if missing:
        raise SystemExit(f"build_fast: mypyc built no extension module for {', '.join(missing)}")
    (work / STAMP).write_text(state)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    print(f"build_fast: {len(COMPILED)} modules compiled; run with PYTHONPATH={out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "fast")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    build(args.out.resolve(), args.jobs)


if __name__ == "__main__":
    main()
