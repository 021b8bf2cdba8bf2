"""How long governance takes per request in memory mode: auth + limits + budget reservation + settle.

    .venv/bin/python bench/governance.py [--iterations 50000] [--gateway [--seconds 5] [--rounds 3]]

A project key with an rpm, tpm and concurrency limit and a hard monthly
budget on its project (the worst case: every check and a cost estimate),
against a plain admin request with no definitions (the fast path). Target:
auth + admit + settle <= 10 µs per request.

``--gateway`` also measures what that costs in throughput, with
``bench/harness.py``: the mock vendor and wrk -c32 on core 1, one gateway
worker (request log off) on core 0, and the same request sent in interleaved
rounds with the admin key (governance off: no limit or budget applies) and
with a project key carrying the limits and budget above, and with a project
key of another project that no limit or budget applies to (what a project key
costs without counters). The figure is the median req/s of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_governance_util import SECRET, bill, context, governance, request

from interlock.governance import ops

BUDGET_US = 10.0
LIMITS = {"rpm": 10**9, "tpm": 10**12, "concurrent": 10**6}
BUDGET_USD = 1_000_000
MOCK_PORT, GW_PORT = 9121, 8421


async def micro(iterations: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        gov = governance(Path(tmp))
        await ops.create_project(gov.store, {"id": "bench"})
        await ops.create_budget(gov.store, {"scope": "project", "subject": "bench", "amount_usd": BUDGET_USD})
        _, key, _ = await ops.create_key(gov.store, SECRET, {"project": "bench", "limits": LIMITS})
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


def _admin(method: str, path: str, body: dict[str, Any], master: str) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{GW_PORT}/admin/v1/{path}", data=json.dumps(body).encode(),
                                 method=method, headers={"authorization": f"Bearer {master}",
                                                         "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def gateway(seconds: int, rounds: int) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    # Only --gateway needs the harness.
    from harness import (
        GATEWAY_CORE,
        GATEWAY_MODEL,
        MASTER_KEY,
        UPSTREAM_KEY,
        Managed,
        ensure_wrk,
        run_wrk,
        start_mock,
        wait_healthy,
    )

    repo = Path(__file__).resolve().parents[1]
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="interlock-govbench-") as tmpdir:
        tmp = Path(tmpdir)
        cfg = tmp / "interlock.yaml"
        cfg.write_text(f"vendors:\n  mock:\n    type: openai\n    base_url: http://127.0.0.1:{MOCK_PORT}/v1\n"
                       f"    api_key: {UPSTREAM_KEY}\nlogging:\n  enabled: false\n")
        mock = start_mock(MOCK_PORT, tmp)
        env = dict(os.environ, INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_HOME=str(tmp / "state"))
        gw = Managed("gateway", ["taskset", "-c", str(GATEWAY_CORE), str(repo / ".venv" / "bin" / "interlock"),
                                 "serve", "--port", str(GW_PORT), "--workers", "1", "--config", str(cfg)],
                     env=env, logdir=tmp)
        sides = ("off", "key", "on")
        rps: dict[str, list[float]] = {side: [] for side in sides}
        try:
            wait_healthy(gw, GW_PORT, "/healthz", 30)
            _admin("POST", "projects", {"id": "bench"}, MASTER_KEY)
            _admin("POST", "budgets", {"scope": "project", "subject": "bench", "amount_usd": BUDGET_USD}, MASTER_KEY)
            project_key = _admin("POST", "keys", {"project": "bench", "limits": LIMITS}, MASTER_KEY)["key"]
            _admin("POST", "projects", {"id": "free"}, MASTER_KEY)
            free_key = _admin("POST", "keys", {"project": "free"}, MASTER_KEY)["key"]
            time.sleep(1.5)  # the worker picks up definitions within a second
            keys = {"off": MASTER_KEY, "key": free_key, "on": project_key}
            url = f"http://127.0.0.1:{GW_PORT}/v1/chat/completions"
            for side, key in keys.items():  # warm-up, and a check that both sides answer 200
                warm = run_wrk(wrk, url, "chat.lua", connections=32, seconds=2, model=GATEWAY_MODEL, key=key)
                if warm.errors or not warm.requests:
                    raise SystemExit(f"governance {side}: {warm.errors} errors in the warm-up\n{gw.output()}")
            for r in range(rounds):
                for side in sides if r % 2 == 0 else reversed(sides):
                    w = run_wrk(wrk, url, "chat.lua", connections=32, seconds=seconds, model=GATEWAY_MODEL,
                                key=keys[side])
                    if w.errors:
                        raise SystemExit(f"governance {side}: {w.errors} errors\n{gw.output()}")
                    rps[side].append(w.rps)
                    print(f"round {r + 1} governance {side:<3} {w.rps:9,.0f} req/s", file=sys.stderr, flush=True)
        finally:
            gw.stop()
            mock.stop()
    off = statistics.median(rps["off"])
    print(f"gateway c=32, 1 worker, request log off, {rounds} rounds of {seconds}s (median req/s):")
    for side, label in (("off", "admin key, governance off"), ("key", "project key, nothing applies"),
                        ("on", "project key, 3 limits + hard budget")):
        med = statistics.median(rps[side])
        print(f"  {label:<40} {med:9,.0f} req/s  ({100 * (med / off - 1):+.1f}%)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--gateway", action="store_true", help="also measure gateway req/s, governance on vs off")
    parser.add_argument("--seconds", type=int, default=5, help="--gateway: seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="--gateway: interleaved rounds")
    args = parser.parse_args()
    code = asyncio.run(micro(args.iterations))
    if args.gateway:
        gateway(args.seconds, args.rounds)
    return code


if __name__ == "__main__":
    sys.exit(main())
