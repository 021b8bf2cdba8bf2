"""What interlock's own Python costs per request, without Granian, sockets or a load generator.

Drives N non-streaming chat requests through ``Gateway.__rsgi__`` with stand-in
RSGI objects, the gateway configured as in ``make bench`` (one OpenAI-compatible
vendor, log off), and the vendor's HTTP exchange replaced by a canned answer
(or, with ``--upstream HOST:PORT``, a real mock vendor such as
``bench/mock_upstream.py``), which comes after one turn of the event loop, as
a vendor's would after a network wait: the 32 requests in flight interleave,
and what they leave to run in the background (the response cache's stores,
the request log's writer) runs between them, as in a gateway. (Without that
turn each worker ran its requests to the end in one go, and a whole batch's
cache stores piled up behind them: a cache miss cost +122,290 instructions at
-n 3200, +132,062 at -n 6400.) ``--stream`` sends streaming requests instead: the
canned answer is an SSE stream of 32 text chunks, a finish chunk and a usage
chunk (``--stream-chunks N``: N chunk events from role to finish, as the mock's
``--chunks``; default 34), one network read per event, relayed to a stand-in stream transport. Reports CPU µs per request (``time.process_time``,
median of ``--rounds``), which moves with whatever else the machine runs, and
with ``--instructions`` the instructions per request counted by callgrind
(valgrind), which does not: the same code gives the same count on a loaded or
a quiet machine, so it is the figure to compare changes with. Callgrind counts
only the measured requests: the child marks where they start and end (a call
of ``os.getloadavg``, which the gateway never makes, with ``--dump-before``),
so the start-up and the warm-up, whose work varies from one process to the
next by millions of instructions, are left out.

    .venv/bin/python bench/pipeline.py [-n 20000] [--rounds 3] [--instructions] [--upstream 127.0.0.1:9101]
                                       [--log off|sqlite] [--stream [--stream-chunks N]]
                                       [--guardrails | --guardrails-input-only]
                                       [--no-verdict-cache] [--cache [hit|miss]] [--unique]
                                       [--policy priority|difficulty]

``--cache`` (or ``--cache hit``) turns the response cache on (memory backend): every request after the first
is a hit, so the figure is what a hit costs, to compare with the same run without it (a relay of the canned
answer). ``--cache miss`` is what the cache costs a request it cannot answer, as in production: the full
miss path, the key computed, looked up and not found, the vendor's answer relayed and stored. Every request
is new (``--cache miss`` implies ``--unique``) and the cache is kept full (``max_bytes`` 1 MiB, filled during
the warm-up), so each store also evicts the oldest answer: the steady state of a busy cache, the most a miss
costs with the memory backend. The child checks that no request hit. Compare it with ``--unique`` alone.
``--unique`` numbers every request: the user message ends with ``(request 000001)`` and the canned answer
with ``(answer 000001)`` (fixed width, so every body is as long as the next; streamed answers stay the same),
as a production gateway sees new prompts and new answers, while the system prompt repeats (which is what
guardrails' verdict cache sees, too). Six digits, counting modulo a million: a run of seven or more would
send every text through the pii detector's phone, card and IBAN checks (``phonenumbers`` parsing, doubling
what guardrails cost), which a prompt without such a number does not pay.
``--policy`` names a policy of two targets as the model: ``priority`` ranks them, ``difficulty`` scores each
request and picks a tier (issue 25's "difficulty vs priority" pair; compare the two counts).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness import POLICY_MODEL, TWO_TARGET_POLICIES  # noqa: E402

MASTER_KEY = "bench-master-key"
BODY = (b'{"model":"mock/bench-model","messages":[{"role":"system","content":"You are a helpful assistant."},'
        b'{"role":"user","content":"In two sentences, what does an LLM gateway do?"}],"max_tokens":128,'
        b'"temperature":0.2}')
CANNED = (b'{"id":"chatcmpl-bench","object":"chat.completion","created":1732320000,"model":"bench-model",'
          b'"choices":[{"index":0,"message":{"role":"assistant","content":"A gateway sits between your '
          b'application and the model vendors: it authenticates callers, routes each request, enforces budgets '
          b'and records what every call cost.","refusal":null,"annotations":[]},"logprobs":null,'
          b'"finish_reason":"stop"}],"usage":{"prompt_tokens":31,"completion_tokens":28,"total_tokens":59,'
          b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":'
          b'{"reasoning_tokens":0,"audio_tokens":0}},"system_fingerprint":"fp_bench"}')
STREAM_BODY = BODY[:-1] + b',"stream":true,"stream_options":{"include_usage":true}}'
_CHUNK = (b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1732320000,"model":"bench-model",'
          b'"system_fingerprint":"fp_bench","choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}\n\n')
#: Chunk events of the canned stream by default: role, 32 words, finish (the usage chunk comes on top).
STREAM_CHUNKS = 34


def canned_stream(chunks: int = STREAM_CHUNKS) -> list[bytes]:
    """One network read per event, as vendors flush them: role, ``chunks - 2`` words, finish, usage, [DONE].

    ``chunks`` counts as the mock's ``--chunks`` does (``bench/mock_upstream.py``): role to finish, usage aside.
    """
    words = max(chunks - 2, 0)
    return (
        [_CHUNK % (b'{"role":"assistant","content":""}', b"null")]
        + [_CHUNK % (b'{"content":" word%d"}' % i, b"null") for i in range(words)]
        + [_CHUNK % (b"{}", b'"stop"'),
           b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1732320000,'
           b'"model":"bench-model","system_fingerprint":"fp_bench","choices":[],"usage":{"prompt_tokens":31,'
           b'"completion_tokens":%d,"total_tokens":%d}}\n\n' % (words + 1, words + 32),
           b"data: [DONE]\n\n"])


#: --unique: the canned answer ends with a number, a new one per request (as the user message does: _body).
NUMBERED_CANNED = CANNED.replace(b'cost."', b'cost. (answer %06d)"')
UNIQUE = 1_000_000
CONCURRENCY = 32
#: Requests before the measured ones: first-use paths, pools and every bounded store filled, so that each measured
#: request evicts as it stores, as in a gateway that has been up a while. The largest is the routing engine's
#: trace log of recent generations (10,000; then the guardrails' verdicts, 4,096, and the token counts, 2,048).
#: With 2,048, that log grew during the measured requests, and its dict's resizes and the garbage collector's
#: passes over the new records were counted: 357,591 instructions per request at -n 3200 (--unique), against
#: 353,824 with 10,240 (353,586 at -n 6400).
WARM_UP = 10_240


class _Scope:
    method = "POST"
    path = "/v1/chat/completions"
    query_string = ""
    scheme = "http"
    http_version = "1.1"
    client = "127.0.0.1:50000"

    def __init__(self, body: bytes = BODY) -> None:
        self.headers = {"content-type": "application/json", "authorization": f"Bearer {MASTER_KEY}",
                        "content-length": str(len(body))}


class _Proto:
    """The parts of Granian's RSGI protocol object the gateway uses for a non-streaming request."""

    def __init__(self, body: bytes = BODY) -> None:
        self.status = 0
        self.out = b""
        self.body = body

    async def _body(self) -> bytes:
        return self.body

    def __call__(self) -> Any:
        return self._body()

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.out = status, body

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> _Proto:
        self.status = status
        return self

    async def send_bytes(self, data: bytes) -> None:
        self.out = data  # the last piece: an error event if the stream failed

    def client_disconnect(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()


class _CannedResponse:
    status = 200
    headers: ClassVar[dict[str, str]] = {"content-type": "application/json"}

    def __init__(self, body: bytes = CANNED) -> None:
        self.body = body

    async def read(self) -> bytes:
        return self.body

    def close(self) -> None:
        pass


class _CannedStream(_CannedResponse):
    headers: ClassVar[dict[str, str]] = {"content-type": "text/event-stream"}
    pieces: ClassVar[list[bytes]] = canned_stream()

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def configure(*, guardrails: str = "", cache: str = "", unique: bool = False, verdict_cache: bool = True,
              policy: str = "") -> None:
    """Sets the options :func:`run` reads from the environment (which the valgrind child inherits), every one
    of them, so that one configuration does not leak into the next. ``guardrails``: "all" (every detector,
    rules only), "input" (answers not scanned) or ""; ``cache``: "hit", "miss" (implies ``unique``) or ""."""
    values = {"BENCH_GUARDRAILS": guardrails, "BENCH_CACHE": cache,
              "BENCH_UNIQUE": "1" if unique or cache == "miss" else "",
              "BENCH_NO_VERDICTS": "" if verdict_cache else "1", "BENCH_POLICY": policy}
    for name, value in values.items():
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)


def _body(stream: bool) -> bytes:
    """The request body; with --unique a template with a ``%06d`` for the request's number."""
    body = STREAM_BODY if stream else BODY
    if os.environ.get("BENCH_UNIQUE") == "1":
        body = body.replace(b'do?"', b'do? (request %06d)"')
    if os.environ.get("BENCH_POLICY") in TWO_TARGET_POLICIES:
        body = body.replace(b'"mock/bench-model"', b'"%s"' % POLICY_MODEL.encode())
    return body


def _numbers() -> Callable[[], int] | None:
    """With --unique, the next number of a count shared by every request of the process (warm-up included)."""
    if os.environ.get("BENCH_UNIQUE") != "1":
        return None
    return (i % UNIQUE for i in itertools.count()).__next__


def _config(tmp: Path, upstream: str | None, log: str) -> Path:
    base = f"http://{upstream}/v1" if upstream else "http://127.0.0.1:9/v1"
    path = tmp / "interlock.yaml"
    logging = "logging:\n  enabled: false\n" if log == "off" else "logging:\n  level: metadata\n"
    # --guardrails (passed to the valgrind child through the environment): every detector on, rules only.
    # --guardrails-input-only: the same with ``output: false`` (answers not scanned).
    mode = os.environ.get("BENCH_GUARDRAILS")
    output = "" if mode == "all" else ", output: false"
    guardrails = (f"guardrails:\n  pii: {{action: monitor{output}}}\n  secrets: {{action: block{output}}}\n"
                  "  prompt_injection: {action: block, classifier: 'off'}\n") if mode in ("all", "input") else ""
    # --cache miss: 1 MiB holds about 950 answers, so the warm-up fills it and every measured store evicts one.
    cache = {"hit": "cache: {enabled: true, allow_temperature: true}\n",
             "miss": "cache: {enabled: true, allow_temperature: true, max_bytes: 1048576}\n"
             }.get(os.environ.get("BENCH_CACHE", ""), "")
    policy = TWO_TARGET_POLICIES.get(os.environ.get("BENCH_POLICY", ""), "")
    path.write_text(f"vendors:\n  mock:\n    type: openai\n    base_url: {base}\n    api_key: bench-upstream-key\n"
                    + logging + guardrails + cache + policy)
    return path


def run(n: int, rounds: int, upstream: str | None, log: str = "off", stream: bool = False,
        stream_chunks: int = STREAM_CHUNKS) -> list[float]:
    """CPU µs per request for each round (after a warm-up)."""
    import uvloop

    _CannedStream.pieces = canned_stream(stream_chunks)

    with tempfile.TemporaryDirectory(prefix="interlock-pipeline-") as tmpdir:
        tmp = Path(tmpdir)
        os.environ.update(INTERLOCK_CONFIG=str(_config(tmp, upstream, log)), INTERLOCK_HOME=str(tmp / "home"),
                          INTERLOCK_MASTER_KEY=MASTER_KEY)
        if not upstream:
            from interlock.vendors import transport

            answers = _numbers()

            async def canned(self: object, method: str, url: str, headers: object, body: bytes,
                             timeouts: object) -> _CannedResponse:
                await asyncio.sleep(0)  # the answer comes after a turn of the loop, as over a network (YIELD)
                if stream:
                    return _CannedStream()
                return _CannedResponse(CANNED if answers is None else NUMBERED_CANNED % answers())

            transport.HttpTransport.request = canned  # type: ignore[assignment,method-assign]
        from interlock.app import gateway_from_env

        app = gateway_from_env()
        if os.environ.get("BENCH_NO_VERDICTS") == "1":
            # --no-verdict-cache: every text scanned as if new (a miss: the digest and the store still run). A
            # store of one verdict, which each lookup's text is never the last of (the request's texts come one
            # after the other), rather than a patched Verdicts.get: a compiled class cannot be patched (make fast).
            from interlock.guardrails.guard import Verdicts

            app.guards.floor.verdicts = Verdicts(1)
        if app.obs.writer is not None:
            # The writer writes when its batch (512 records) is pending and at the end of a round, as under load:
            # under valgrind a second is ~100 requests, so its 1 s clock would write smaller batches the slower
            # the machine. A write can take longer than its 5 s there, and would be spilled, not written.
            app.obs.writer._interval = app.obs.writer._write_timeout = 3600.0
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)

        async def main() -> list[float]:
            app.__rsgi_init__(loop)
            body = _body(stream)
            numbers = _numbers()

            async def worker(count: int) -> None:
                for _ in range(count):
                    proto = _Proto(body if numbers is None else body % numbers())
                    await app.__rsgi__(_Scope(proto.body), proto)  # type: ignore[arg-type]
                    if proto.status != 200 or (stream and proto.out != b"data: [DONE]\n\n"):
                        raise SystemExit(f"the gateway answered {proto.status}: {proto.out[:300]!r}")

            async def batch(total: int) -> None:
                await asyncio.gather(*(worker(total // CONCURRENCY) for _ in range(CONCURRENCY)))

            writer = app.obs.writer

            async def flush() -> None:
                # Every record queued so far is written, so the log's cost lands in the round that made it
                # (the writer otherwise flushes on its own clock, maybe after --instructions' end mark).
                if writer is not None:
                    await writer.flush()

            await batch(WARM_UP)  # caches, pools, first-use paths
            await flush()
            os.getloadavg()  # --instructions: the measured requests start here (MARK)
            out = []
            for _ in range(rounds):
                start = time.process_time()
                await batch(n)
                await flush()
                out.append((time.process_time() - start) / (n // CONCURRENCY * CONCURRENCY) * 1e6)
            os.getloadavg()  # and end here
            _check(app)
            return out

        return loop.run_until_complete(main())


def _check(app: Any) -> None:
    """That the run measured what it claims: --cache hit hits after the warm-up, --cache miss never; the
    request log wrote every record to its store (none spilled to a file)."""
    mode = os.environ.get("BENCH_CACHE")
    counts = app.cache.counts if mode else None
    # The first requests miss: those in flight before the first answer is stored.
    if counts is not None and (counts.bypasses or (counts.hits if mode == "miss" else counts.misses > WARM_UP)):
        raise SystemExit(f"--cache {mode}: {counts.hits} hits, {counts.misses} misses, {counts.bypasses} bypasses")
    writer = app.obs.writer
    if writer is not None and (writer.spilled or writer.failures):
        raise SystemExit(f"the request log spilled {writer.spilled} records ({writer.failures} failed writes)")


#: The C function of ``os.getloadavg``: callgrind dumps its counts on entering it (the child's marks).
MARK = "os_getloadavg"
#: The GIL's switch interval of the valgrind child (CPython's default: 0.005 s).
SWITCH_INTERVAL = 1.0


def instructions(n: int, upstream: str | None, log: str = "off", stream: bool = False,
                 stream_chunks: int = STREAM_CHUNKS) -> int:
    """Instructions per request: what callgrind counted between the child's two marks (its second dump, every
    thread's), over the requests. Until 2026-12-07 this was a run of n requests minus a run of none, whose
    start-ups differ: by 4.4 million instructions (1,400 per request at n=3200) with a random hash seed each,
    and with one still by millions (tiktoken's Rust hash maps are seeded at random, OpenSSL, where the GC's
    collections fall), so that -n 3200 and -n 6400 disagreed by 0.9%; they now agree within 0.1%. The
    child keeps one hash seed, for the same dicts every time."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="interlock-callgrind-") as tmpdir:
        cmd = [valgrind, "--tool=callgrind", f"--dump-before={MARK}", f"--callgrind-out-file={tmpdir}/cg",
               sys.executable, __file__, "--child", "-n", str(n), "--rounds", "1", "--log", log]
        if upstream:
            cmd += ["--upstream", upstream]
        if stream:
            cmd += ["--stream", "--stream-chunks", str(stream_chunks)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        part = Path(tmpdir, "cg.2")
        found = re.search(r"^summary: (\d+)$", part.read_text(), re.M) if part.exists() else None
        if done.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    return int(found.group(1)) // (n // CONCURRENCY * CONCURRENCY)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20_000, help="requests per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--upstream", help="HOST:PORT of a mock vendor instead of the canned answer")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per request under callgrind (slow; -n 3200 is plenty)")
    parser.add_argument("--guardrails", action="store_true", help="every guardrail detector on (rules only)")
    parser.add_argument("--guardrails-input-only", action="store_true",
                        help="as --guardrails, but answers are not scanned (output: false)")
    parser.add_argument("--no-verdict-cache", action="store_true",
                        help="with --guardrails: scan every text as new (no verdict cache hits)")
    parser.add_argument("--log", choices=("off", "sqlite"), default="off",
                        help="the request log: off (as make bench) or on, in SQLite (level metadata)")
    parser.add_argument("--stream", action="store_true", help="streaming requests (a canned SSE answer)")
    parser.add_argument("--stream-chunks", type=int, default=STREAM_CHUNKS,
                        help=f"with --stream: chunk events per stream, role to finish, as the mock's --chunks "
                             f"(default {STREAM_CHUNKS}: 32 words), plus the usage chunk")
    parser.add_argument("--cache", nargs="?", const="hit", choices=("hit", "miss"),
                        help="response cache on: hit (the default) every request after the first hits; miss: "
                             "every request is new (--unique) and the full cache evicts one answer per store")
    parser.add_argument("--unique", action="store_true",
                        help="number every request's user message and answer (compare --cache miss with this)")
    parser.add_argument("--policy", choices=tuple(TWO_TARGET_POLICIES),
                        help="the model is a policy of two targets: by priority, or by difficulty (a scored tier)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cache == "hit" and args.unique:
        parser.error("--cache hit with --unique would miss every time: that is --cache miss")
    if args.child:  # the options come from the parent's environment
        # Under valgrind a thread waiting for the GIL (the log's writer) forces a switch every 5 ms of a wall
        # clock some 50 times slower than the code: switches that cost instructions by the machine's load.
        sys.setswitchinterval(SWITCH_INTERVAL)
        run(args.n, args.rounds if args.n else 0, args.upstream, args.log, args.stream, args.stream_chunks)
        return 0
    configure(guardrails="all" if args.guardrails else "input" if args.guardrails_input_only else "",
              cache=args.cache or "", unique=args.unique, verdict_cache=not args.no_verdict_cache,
              policy=args.policy or "")
    where = f"mock vendor at {args.upstream}" if args.upstream else "canned vendor answer (no socket)"
    where += f", request log {args.log}" + (f", streamed ({args.stream_chunks} chunks)" if args.stream else "")
    where += ", no verdict cache" if args.no_verdict_cache else ""
    where += {"hit": ", response cache on (hits)", "miss": ", response cache on (misses)"}.get(args.cache, "")
    where += ", every request new" if args.unique or args.cache == "miss" else ""
    where += f", model: a {args.policy} policy" if args.policy else ""
    where += ", guardrails on" if args.guardrails else ", guardrails on, answers not scanned" \
        if args.guardrails_input_only else ""
    if args.instructions:
        count = instructions(args.n, args.upstream, args.log, args.stream, args.stream_chunks)
        print(f"instructions per request ({where}): {count:,}")
        return 0
    figures = run(args.n, args.rounds, args.upstream, args.log, args.stream, args.stream_chunks)
    print(f"CPU per request ({where}, {args.n} requests x {args.rounds} rounds, concurrency {CONCURRENCY}): "
          f"median {statistics.median(figures):.1f} µs  (rounds: {', '.join(f'{f:.1f}' for f in figures)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
