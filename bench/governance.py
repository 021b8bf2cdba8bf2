"""How long governance takes per request in memory mode: auth + limits + budget reservation + settle.

    .venv/bin/python bench/governance.py [--iterations 50000]

A project key with an rpm, tpm and concurrency limit and a hard monthly
budget on its project (the worst case: every check and a cost estimate),
against a plain admin request with no definitions (the fast path). Target:
auth + admit + settle <= 10 µs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_governance_util import SECRET, bill, context, governance, request

from interlock.governance import ops

BUDGET_US = 10.0


async def main(iterations: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        gov = governance(Path(tmp))
        await ops.create_project(gov.store, {"id": "bench"})
        await ops.create_budget(gov.store, {"scope": "project", "subject": "bench", "amount_usd": 1_000_000})
        _, key, _ = await ops.create_key(gov.store, SECRET, {
            "project": "bench", "limits": {"rpm": 10**9, "tpm": 10**12, "concurrent": 10**6}})
        await gov.poll()
        body = request("Summarise the following paragraph in one sentence. " * 4, max_tokens=256)
        header = f"Bearer {key}"
        results = {}
        for label, governed in (("project key, 3 limits + hard budget", True), ("admin key, no definitions", False)):
            ctx = context(gov, key)
            bill(ctx, 60, 120)
            elapsed = 0.0
            for _ in range(iterations):
                t0 = time.perf_counter()
                ctx.principal = gov.auth.authenticate(header if governed else "Bearer ik-admin-test-master", None)
                res = await gov.admit(ctx, body)
                gov.settle(ctx, res)
                elapsed += time.perf_counter() - t0
            results[label] = elapsed / iterations * 1e6
        for label, us in results.items():
            print(f"{label:<40} {us:6.2f} µs / request (auth + admit + settle)")
        worst = max(results.values())
        print(f"budget {BUDGET_US:g} µs: {'ok' if worst <= BUDGET_US else 'OVER'}")
        await gov.store.close()
        return 0 if worst <= BUDGET_US else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=50_000)
    sys.exit(asyncio.run(main(parser.parse_args().iterations)))
