"""What the web console costs the inference path: req/s with and without a browser loading a model page.

Two gateways with the same config (the mock vendor, the request log on in SQLite,
so the model page reads its rollups) run at once on core 0, each loaded by its own
wrk (c=32, chat completions through the mock) - ``bench/logging_overhead.py``'s
concurrent method, where both share the core equally and a change in the machine's
speed hits both in the same instant. One of them ("pages") also serves a
browser-like client: every second it loads ``/models/openai/gpt-4.1-mini`` (the
first load also fetches the stylesheet and scripts; later loads, like a browser,
take those from its cache: they are linked as immutable). A ``/console/...`` page is
loaded signed in: the client signs in once with the admin key (the sign-in form and its
CSRF cookie, like a browser) and sends the session cookie with every load, so
``--page /console/requests`` measures the request log page. The figure is the median
over rounds of (req/s with pages / req/s without) - 1. Target: within 2%.
``--calibrate`` adds a third gateway without pages: the method's own noise.

    .venv/bin/python bench/console_load.py [--seconds 8] [--rounds 5] [--page PATH] [--every 1.0] [--calibrate]
                                           [--tails N]   # N pages following the live tail too
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    LOAD_CORE,
    MASTER_KEY,
    Managed,
    WrkResult,
    ensure_wrk,
    require_autogroup,
    start_mock,
)
from logging_overhead import load_into, start_gateway

REPO = Path(__file__).resolve().parent.parent
MOCK_PORT, GW_PORT = 9121, 8421
TARGET = 0.02


class PageLoader(threading.Thread):
    """A browser on the model page: one load every ``every`` seconds until stopped; page times in ms."""

    def __init__(self, port: int, path: str, every: float, tails: int = 0) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.every, self.tails = port, path, every, tails
        self.events = 0
        self.stop = threading.Event()
        self.times_ms: list[float] = []
        self.failures: list[str] = []
        self._assets: list[str] | None = None
        self.cookie = ""

    def sign_in(self, conn: http.client.HTTPConnection) -> None:
        """The sign-in form with the admin key, as a browser does it; keeps the session cookie."""
        conn.request("GET", "/console/signin", headers={"user-agent": "bench-browser"})
        resp = conn.getresponse()
        form = resp.read().decode(errors="replace")
        nonce = re.search(r"interlock_signin=([^;]+)", resp.getheader("set-cookie") or "")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        if nonce is None or token is None:
            raise SystemExit("the sign-in page gave no CSRF cookie or token")
        body = urllib.parse.urlencode({"key": MASTER_KEY, "csrf_token": token.group(1), "next": self.path})
        conn.request("POST", "/console/signin", body=body, headers={
            "content-type": "application/x-www-form-urlencoded", "cookie": f"interlock_signin={nonce.group(1)}",
            "user-agent": "bench-browser"})
        resp = conn.getresponse()
        resp.read()
        session = re.search(r"interlock_session=([^;]+)", resp.getheader("set-cookie") or "")
        if resp.status != 303 or session is None:
            raise SystemExit(f"sign-in failed: {resp.status}")
        self.cookie = f"interlock_session={session.group(1)}"

    def follow(self, stop: threading.Event) -> None:
        """A page following the live tail: one open SSE stream read until ``stop`` (another thread)."""
        # The server sends a keep-alive comment every 15 s: a read never waits longer than that.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        conn.request("GET", "/console/requests/tail", headers={"cookie": self.cookie, "accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            self.failures.append(f"tail: {resp.status}")
            return
        while not stop.is_set():
            line = resp.readline()
            if not line:
                break
            self.events += line.startswith(b"event: request")
        conn.close()

    def _get(self, conn: http.client.HTTPConnection, path: str) -> bytes:
        headers = {"accept": "text/html,*/*", "user-agent": "bench-browser"}
        if self.cookie:
            headers["cookie"] = self.cookie
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            self.failures.append(f"{path}: {resp.status}")
        return body

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        if self.path.startswith("/console/"):
            self.sign_in(conn)
        tails = [threading.Thread(target=self.follow, args=(self.stop,), daemon=True) for _ in range(self.tails)]
        for t in tails:
            t.start()
        next_at = time.monotonic()
        while not self.stop.is_set():
            started = time.perf_counter()
            page = self._get(conn, self.path)
            self.times_ms.append((time.perf_counter() - started) * 1000)
            if self._assets is None:  # a browser's first visit; later ones hit its cache (immutable assets)
                self._assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.decode(errors="replace"))
                for asset in self._assets:
                    self._get(conn, asset)
            next_at += self.every
            self.stop.wait(max(0.0, next_at - time.monotonic()))
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--page", default="/models/openai/gpt-4.1-mini")
    ap.add_argument("--every", type=float, default=1.0, help="seconds between page loads (default 1)")
    ap.add_argument("--tails", type=int, default=0,
                    help="pages also following the request log's live tail (one SSE stream each; /console pages)")
    ap.add_argument("--calibrate", action="store_true", help="a second gateway without pages: the method's noise")
    args = ap.parse_args()
    require_autogroup("the with/without comparison")
    os.sched_setaffinity(0, {LOAD_CORE})
    wrk = ensure_wrk()
    kinds = ["plain", "pages"] + (["plain-2"] if args.calibrate else [])
    tmp = Path(tempfile.mkdtemp(prefix="interlock-console-bench-"))
    mock = start_mock(MOCK_PORT, tmp)
    gateways: dict[str, tuple[int, Managed]] = {}
    ratios: dict[str, list[float]] = {k: [] for k in kinds[1:]}
    page_ms: list[float] = []
    try:
        for i, kind in enumerate(kinds):
            port = GW_PORT + i
            gateways[kind] = (port, start_gateway("sqlite", port, None, tmp, None, MOCK_PORT))
        for r in range(args.rounds + 1):  # round 0 warms every gateway up
            results: dict[str, WrkResult] = {}
            failures: list[BaseException] = []
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            seconds = args.seconds if r else 2
            loader = PageLoader(gateways["pages"][0], args.page, args.every, args.tails)
            threads = [threading.Thread(target=load_into, args=(results, failures, k, wrk, gateways[k][0], seconds))
                       for k in order]
            loader.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            loader.stop.set()
            loader.join()
            if failures:
                raise failures[0]
            if loader.failures:
                raise SystemExit(f"page loads failed: {loader.failures[:3]}")
            for kind, result in results.items():
                if result.errors:
                    raise SystemExit(f"{kind}: {result.errors} errors\n{gateways[kind][1].output()}")
            if r == 0:
                continue
            page_ms.extend(loader.times_ms)
            plain = results["plain"].rps
            for kind in kinds[1:]:
                ratios[kind].append(results[kind].rps / plain - 1)
            print(f"round {r}: " + "  ".join(f"{k} {results[k].rps:7,.0f} req/s" for k in kinds)
                  + f"  pages loaded {len(loader.times_ms)}"
                  + (f", {args.tails} tails got {loader.events} events" if args.tails else ""), file=sys.stderr,
                  flush=True)
    finally:
        for _, gw in gateways.values():
            gw.stop()
        mock.stop()
    print(f"\nconsole page load every {args.every:g} s ({args.page}) vs none, {args.rounds} rounds of "
          f"{args.seconds} s, both gateways sharing one core, c=32 each:\n")
    print("| gateway | req/s vs plain (median) | per round |")
    print("| --- | --- | --- |")
    for kind, values in ratios.items():
        print(f"| {kind} | {100 * statistics.median(values):+.2f}% | "
              + ", ".join(f"{100 * v:+.1f}%" for v in values) + " |")
    page_ms.sort()
    print(f"\npage time under load (client side, {len(page_ms)} loads): median {statistics.median(page_ms):.1f} ms, "
          f"max {page_ms[-1]:.1f} ms")
    median = statistics.median(ratios["pages"])
    ok = median >= -TARGET
    print(f"target: the pages cost at most {100 * TARGET:.0f}% of req/s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 4


if __name__ == "__main__":
    raise SystemExit(main())
