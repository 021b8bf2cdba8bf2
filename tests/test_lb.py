"""Three replicas on PostgreSQL and Redis behind a real HAProxy (deploy/haproxy.cfg), traffic through it with
the official OpenAI SDK: rolling restart and ``kill -9`` under load, revocation across replicas, budget and
rate-limit exactness under 600 concurrent requests, config reload; and the deploy/ samples stay valid.

HAProxy is Debian's package (scripts/debian_packages.sh installs it); without it these tests fail, they do
not skip. The replicas' simulator answers at once (a latency profile of 1 ms and 100k tokens a second);
streams that must last ask for a slow answer with ``x-interlock-simulator-latency`` (which ``time_scale: 0``
would ignore: it never sleeps).
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from tests import pg_util
from tests.conftest import MASTER_KEY, GatewayProcess, at_minute_start, clean_env, free_port
from tests.lb_cluster import ROOT, HAProxy, haproxy_binary, logged_ids, psql, replica_name, start_replica
from tests.test_governance_gateway import call
from tests.test_governance_util import REDIS_URL
from tests.test_replicas import first_refusal

redis_asyncio = pytest.importorskip("redis.asyncio")

pytestmark = pytest.mark.slow

MODEL = "openai/gpt-4.1-mini"
SECRET = "lb-replicas-shared-secret"
#: A slow answer from the simulator: the first token after 0.1 s, then 40 tokens a second.
SLOW = {"x-interlock-simulator-latency": "ttft=0.1;tps=40"}


def base_config(db: str, prefix: str, extra: str = "") -> str:
    # drain_s: HAProxy checks every 500 ms and needs 2 failures: 1 s to take a replica out; twice that.
    return (f"server: {{drain_s: 2, grace_s: 15}}\nstore: {db}\n"
            f"redis: {{url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n"
            "logging: {flush_interval: 0.2}\n"
            # Answers at once (a millisecond to the first token, 100k tokens/s) unless a request asks to be slow.
            "simulator: {enabled: true, time_scale: 1, allow_fault_headers: true, latency: {'*': {ttft_p50: 0.001, "
            "ttft_p95: 0.002, tps_p50: 100000, tps_p95: 200000}}}\n"
            "policies:\n  support:\n    targets: [openai/gpt-4.1-mini]\n" + extra)


@dataclass
class Cluster:
    workdir: Path
    db: str
    prefix: str
    env: dict[str, str]
    faketime_offset: float
    ports: list[int]
    replicas: list[GatewayProcess] = field(default_factory=list)
    lb: HAProxy | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "interlock.yaml"

    def start(self, i: int) -> GatewayProcess:
        gw = start_replica(self.workdir / f"r{i}", self.ports[i], self.config, self.env)
        self.replicas[i] = gw
        return gw

    def client(self, key: str = MASTER_KEY, timeout: float = 20) -> openai.OpenAI:
        assert self.lb is not None
        return openai.OpenAI(base_url=self.lb.base_url, api_key=key, max_retries=0, timeout=timeout)

    def fake_seconds_into_minute(self) -> float:
        return (time.time() - self.faketime_offset) % 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    haproxy_binary()  # fails (not skips) with the command that installs it
    workdir = tmp_path_factory.mktemp("lb")
    name = pg_util.create_database()
    prefix = f"itest-lb-{random.randrange(1 << 30)}:"
    # Every replica's wall clock is shifted by one offset (libfaketime) so rate-limit minutes start together.
    env = at_minute_start(clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_SECRET=SECRET))
    offset = -float(env["FAKETIME"])
    c = Cluster(workdir, pg_util.url(name), prefix, env, offset, [free_port() for _ in range(3)])
    c.config.write_text(base_config(c.db, prefix))
    try:
        c.replicas = [None, None, None]  # type: ignore[list-item]
        c.start(0)  # the first one migrates the database and stores the secret's verifier
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(c.start, (1, 2)))
        c.lb = HAProxy(workdir, c.ports)
        for i in range(3):
            c.lb.wait_state(f"r{i}", "UP")
        yield c
    finally:
        if c.lb is not None:
            c.lb.stop()
        for gw in c.replicas:
            if gw is not None:
                gw.stop()

        async def cleanup() -> None:
            client = redis_asyncio.Redis.from_url(REDIS_URL)
            keys = [k async for k in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

        asyncio.run(cleanup())
        pg_util.drop_database(name)


# ------------------------------------------------------------------------------------------------ load


@dataclass
class Outcome:
    stream: bool
    started: float
    ended: float
    ok: bool
    request_id: str | None = None
    replica: str | None = None
    error: str = ""


class Load:
    """Constant traffic through the LB from threads: half streaming (slow streams), half not."""

    def __init__(self, cluster: Cluster, threads: int = 4, stream_tokens: int = 30) -> None:
        self.cluster = cluster
        self.stop_event = threading.Event()
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.stream_tokens = stream_tokens
        self.threads = [threading.Thread(target=self._run, args=(i % 2 == 0,), daemon=True) for i in range(threads)]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(40)
        assert not any(t.is_alive() for t in self.threads), "a load thread hangs"

    def _run(self, stream: bool) -> None:
        client = self.cluster.client(timeout=30)
        while not self.stop_event.is_set():
            out = Outcome(stream, time.monotonic(), 0.0, False)
            try:
                if stream:
                    chunks = client.chat.completions.create(
                        model=MODEL, stream=True, max_tokens=self.stream_tokens, extra_headers=SLOW,
                        messages=[{"role": "user", "content": "a long story"}])
                    out.request_id = chunks.response.headers.get("x-interlock-request-id")
                    out.replica = replica_name(chunks.response.headers)
                    finish = None
                    for chunk in chunks:
                        if chunk.choices and chunk.choices[0].finish_reason:
                            finish = chunk.choices[0].finish_reason
                    out.ok = finish in ("stop", "length")
                    if not out.ok:
                        out.error = f"stream ended without finish_reason ({finish})"
                else:
                    raw = client.chat.completions.with_raw_response.create(
                        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
                    out.request_id = raw.headers.get("x-interlock-request-id")
                    out.replica = replica_name(raw.headers)
                    out.ok = bool(raw.parse().choices)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and asserted on
                out.error = f"{type(exc).__name__}: {exc} ({exc.__cause__!r})"
            out.ended = time.monotonic()
            with self.lock:
                self.outcomes.append(out)


def lb_trouble(cluster: Cluster) -> str:
    """HAProxy's log lines of requests that did not end cleanly (termination state other than ----)."""
    assert cluster.lb is not None
    lines = cluster.lb.log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if re.search(r" [A-Za-z-]{4} \d+/\d+/\d+/\d+/\d+ ", line)
                     and " ---- " not in line)[-3000:]


def wait_logged(db: str, ids: set[str], timeout: float = 10.0) -> set[str]:
    """The ids of ``ids`` still missing from the PostgreSQL request log after ``timeout``."""
    deadline = time.monotonic() + timeout
    missing = set(ids)
    while time.monotonic() < deadline:
        missing = ids - logged_ids(db)
        if not missing:
            break
        time.sleep(0.2)
    return missing


# ------------------------------------------------------------------------------------------- the tests


def test_the_shipped_samples_are_valid(tmp_path: Path, pg_url: str) -> None:
    # HAProxy's own check of deploy/haproxy.cfg as shipped.
    check = subprocess.run([haproxy_binary(), "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "Configuration file is valid" in check.stdout, check.stdout + check.stderr
    # The systemd units: the keys relied on, and systemd's own parser (no warning at all).
    template = (ROOT / "deploy" / "interlock@.service").read_text()
    simulator = (ROOT / "deploy" / "interlock-simulator.service").read_text()
    assert re.search(r"^ExecStart=\S+/interlock serve --config /etc/interlock/interlock.yaml .*--port %i$",
                     template, re.M)
    assert "ExecReload=/bin/kill -HUP $MAINPID" in template and "KillSignal=SIGTERM" in template
    stop_s = int(re.search(r"^TimeoutStopSec=(\d+)$", template, re.M).group(1))  # type: ignore[union-attr]
    assert re.search(r"^ExecStart=\S+/interlock simulator --host \S+ --port \d+", simulator, re.M)
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        # The units name /opt/interlock/.venv/bin/interlock, which `verify` wants to exist: point them at ours.
        ours = shutil.which("interlock") or str(Path(ROOT / ".venv" / "bin" / "interlock"))
        for name, text in (("interlock@8401.service", template), ("interlock-simulator.service", simulator)):
            (tmp_path / name).write_text(text.replace("/opt/interlock/.venv/bin/interlock", ours))
        verify = subprocess.run([analyze, "verify", str(tmp_path / "interlock@8401.service"),
                                 str(tmp_path / "interlock-simulator.service")],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stdout + verify.stderr
    # The config sample, as a replica really runs it: PostgreSQL and Redis from the environment, ready.
    port = free_port()
    env = clean_env(INTERLOCK_MASTER_KEY=MASTER_KEY, INTERLOCK_SECRET="deploy-sample-secret",
                    INTERLOCK_STORE_URL=pg_url, INTERLOCK_REDIS_URL=REDIS_URL,
                    OPENAI_API_KEY="sk-sample-not-used", ANTHROPIC_API_KEY="sk-ant-sample-not-used")
    gw = start_replica(tmp_path / "sample", port, ROOT / "deploy" / "interlock.yaml", env)
    try:
        # Ready (start_replica waited for /readyz: PostgreSQL and Redis answer) and serving its admin API.
        assert call(gw, "GET", "/admin/v1/projects")[0] == 200
        assert "Traceback" not in gw.output()
        # drain_s + grace_s of the sample fit in the unit's TimeoutStopSec.
        sample = (ROOT / "deploy" / "interlock.yaml").read_text()
        drain = float(re.search(r"^\s+drain_s:\s*([\d.]+)", sample, re.M).group(1))  # type: ignore[union-attr]
        grace = float(re.search(r"^\s+grace_s:\s*([\d.]+)", sample, re.M).group(1))  # type: ignore[union-attr]
        assert stop_s > drain + grace
        # HAProxy takes a replica out after inter x fall; the sample's drain_s covers it twice.
        cfg = (ROOT / "deploy" / "haproxy.cfg").read_text()
        inter = re.search(r"inter (\d+)ms fall (\d+)", cfg)
        assert inter is not None and drain >= 2 * int(inter.group(1)) / 1000 * int(inter.group(2))
    finally:
        gw.stop()
    assert gw.proc.returncode == 0, gw.output()[-2000:]


def test_rate_limit_and_budget_are_exact_through_the_lb_under_600_concurrent(cluster: Cluster) -> None:
    if cluster.fake_seconds_into_minute() > 40:  # the 600 requests must fall into one rate-limit minute
        time.sleep(61 - cluster.fake_seconds_into_minute())
    a = cluster.replicas[0]
    assert call(a, "POST", "/admin/v1/projects", {"id": "limited"})[0] == 201
    assert call(a, "POST", "/admin/v1/projects", {"id": "budgeted"})[0] == 201
    _, _, limited = call(a, "POST", "/admin/v1/keys", {"project": "limited", "limits": {"rpm": 150}})
    _, _, budgeted = call(a, "POST", "/admin/v1/keys", {"project": "budgeted"})
    status, _, budget = call(a, "POST", "/admin/v1/budgets",
                             {"scope": "project", "subject": "budgeted", "amount_usd": "0.002"})
    assert status == 201, budget
    # Made on A, known to the others by pub/sub; wait until each replica accepts the keys.
    for gw in cluster.replicas:
        for key in (limited["key"], budgeted["key"]):
            deadline = time.monotonic() + 5
            while call(gw, "GET", "/v1/models?limit=1", key=key)[0] != 200:
                assert time.monotonic() < deadline
                time.sleep(0.02)

    async def burst(key: str, max_tokens: int) -> list[Any]:
        assert cluster.lb is not None
        client = openai.AsyncOpenAI(base_url=cluster.lb.base_url, api_key=key, max_retries=0, timeout=60)

        async def one() -> Any:
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": "hi"}])
            return replica_name(raw.headers)

        try:
            return await asyncio.gather(*(one() for _ in range(600)), return_exceptions=True)
        finally:
            await client.close()

    results = asyncio.run(burst(limited["key"], 5))
    ok = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    others = [r for r in results if not isinstance(r, str | openai.RateLimitError)]
    assert not others, others[:3]
    assert (len(ok), len(refused)) == (150, 450)
    # One counter: per-replica counters would admit up to 450. Which replicas' requests came first is the
    # balancer's and the scheduler's business; at least two of them admitting shows the count is shared.
    limited_on = {replica_name(r.response.headers) for r in refused}
    assert len(set(ok)) >= 2 and limited_on == {"r0", "r1", "r2"}, (set(ok), limited_on)

    results = asyncio.run(burst(budgeted["key"], 50))
    ok = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, openai.APIStatusError) and r.status_code == 402]
    assert len(ok) + len(refused) == 600, [r for r in results if not isinstance(r, str)][:3]
    # Only ~20 requests fit the budget, so which replicas admitted them is a race (CI once saw
    # two); the shared budget shows in all three refusing once the others have spent it.
    refused_on = {replica_name(r.response.headers) for r in refused}
    assert ok and refused and refused_on == {"r0", "r1", "r2"}, (set(ok), refused_on)
    # The money: what the log billed stays within the budget (overshoot $0), and nothing stays reserved.
    deadline = time.monotonic() + 10
    while True:
        rows = psql(cluster.db, "SELECT count(*), coalesce(sum(cost_picousd), 0) FROM requests "
                                "WHERE project = 'budgeted' AND status = 200")
        if int(rows[0][0]) == len(ok) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert int(rows[0][0]) == len(ok)
    spent_picousd = int(rows[0][1])
    assert 0 < spent_picousd <= 2_000_000_000  # $0.002 = 2e9 picodollars
    _, _, state = call(a, "GET", f"/admin/v1/budgets/{budget['id']}")
    assert state["status"]["reserved_usd"] == "0.000000", state
    assert float(state["status"]["spent_usd"]) <= 0.002, state


def test_a_key_revoked_on_a_is_refused_on_c_within_100_ms(cluster: Cluster) -> None:
    a, c = cluster.replicas[0], cluster.replicas[2]
    assert call(a, "POST", "/admin/v1/projects", {"id": "revoked"})[0] == 201
    waits = []
    for _ in range(5):
        status, _, made = call(a, "POST", "/admin/v1/keys", {"project": "revoked"})
        assert status == 201
        deadline = time.monotonic() + 2
        while call(c, "GET", "/v1/models?limit=1", key=made["key"])[0] != 200:
            assert time.monotonic() < deadline, "a key made on A is not accepted on C"
            time.sleep(0.005)
        assert call(a, "POST", f"/admin/v1/keys/{made['id']}/revoke")[0] == 200
        waits.append(first_refusal(c, made["key"], 1.0))
    assert max(waits) < 0.1, waits
    # ... and through the LB, whichever replica answers.
    with pytest.raises(openai.AuthenticationError):
        cluster.client(made["key"]).models.list()


NEW_POLICY = "  triage:\n    targets: [openai/gpt-4.1-nano]\n"
#: A policy whose strategy is unknown: refused, the running config stays.
BAD_POLICY = "  triage:\n    targets: [openai/gpt-4.1-nano]\n    strategy: quickest\n"


def test_a_reload_applies_a_new_policy_everywhere_and_a_bad_config_changes_nothing(cluster: Cluster) -> None:
    client = cluster.client()

    def ask(model: str) -> tuple[str, str | None]:
        raw = client.chat.completions.with_raw_response.create(model=model, max_tokens=5,
                                                               messages=[{"role": "user", "content": "hi"}])
        return raw.parse().model, replica_name(raw.headers)

    with pytest.raises(openai.NotFoundError):
        ask("triage")
    good = base_config(cluster.db, cluster.prefix, NEW_POLICY)
    cluster.config.write_text(good)
    for gw in cluster.replicas:
        status, _, body = call(gw, "POST", "/admin/v1/reload")
        assert status == 200 and body["policies"] == ["support", "triage"], body
        assert body["restart_needed_for"] == [], body
    answers = [ask("triage") for _ in range(24)]
    assert all("gpt-4.1-nano" in model for model, _ in answers), answers
    assert {replica for _, replica in answers} == {"r0", "r1", "r2"}
    # A bad file: every replica refuses it and keeps serving the config it has.
    cluster.config.write_text(base_config(cluster.db, cluster.prefix, BAD_POLICY))
    try:
        for gw in cluster.replicas:
            status, _, err = call(gw, "POST", "/admin/v1/reload")
            assert status == 400 and err["error"]["code"] == "invalid_config", err
            assert "strategy" in err["error"]["message"]
        answers = [ask("triage") for _ in range(24)]
        assert all("gpt-4.1-nano" in model for model, _ in answers), answers
        assert all("gpt-4.1-mini" in ask("support")[0] for _ in range(6))
        # Every replica, asked directly (which ones the balancer picks for 24 requests is a race under load).
        for gw in cluster.replicas:
            status, _, body = call(gw, "POST", "/v1/chat/completions", {
                "model": "triage", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
            assert status == 200 and "gpt-4.1-nano" in body["model"], body
    finally:
        cluster.config.write_text(good)  # the replicas restarted later read the file


def test_a_rolling_restart_under_load_fails_no_request(cluster: Cluster) -> None:
    assert cluster.lb is not None
    restarted = []
    with Load(cluster) as load:
        time.sleep(1.0)
        for i in range(3):
            old = cluster.replicas[i]
            old.proc.send_signal(signal.SIGTERM)
            assert old.proc.wait(30) == 0, old.output()[-3000:]
            cluster.start(i)
            restarted.append(time.monotonic())
            cluster.lb.wait_state(f"r{i}", "UP")
        time.sleep(1.0)
    outcomes = load.outcomes
    failed = [o for o in outcomes if not o.ok]
    assert not failed, f"{[o.error for o in failed[:5]]}\nHAProxy:\n{lb_trouble(cluster)}"
    streams = [o for o in outcomes if o.stream]
    assert len(streams) >= 20 and len(outcomes) - len(streams) >= 50, len(outcomes)
    # Traffic reached every restarted replica after it came back.
    after = {o.replica for o in outcomes if o.started > restarted[-1]}
    assert after == {"r0", "r1", "r2"}, after
    # Every completed request has its record in PostgreSQL (the drained replicas flushed theirs).
    ids = {o.request_id for o in outcomes if o.request_id}
    assert len(ids) == len(outcomes)
    missing = wait_logged(cluster.db, ids)  # type: ignore[arg-type]
    assert not missing, f"{len(missing)} of {len(ids)} completed requests have no log record"


def test_kill_9_of_one_replica_under_load(cluster: Cluster) -> None:
    assert cluster.lb is not None
    victim_index = 1
    victim = cluster.replicas[victim_index]
    client = cluster.client(timeout=30)
    # A long stream known to be on the victim (the LB names the replica that answers).
    probe: Any = None
    for _ in range(30):
        chunks = client.chat.completions.create(model=MODEL, stream=True, max_tokens=400, extra_headers=SLOW,
                                                messages=[{"role": "user", "content": "a long story"}])
        if replica_name(chunks.response.headers) == f"r{victim_index}":
            probe = chunks
            break
        chunks.close()
    assert probe is not None, "no stream landed on the victim"
    first = next(iter(probe))
    assert first.id
    with Load(cluster, stream_tokens=60) as load:
        time.sleep(1.5)
        killed = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(5)
        # Until here the victim may still accept a connection (the signal is delivered, not yet acted on):
        # a request started in that window was in flight on it too.
        dead = time.monotonic()
        # The stream in flight on it fails visibly, at once, rather than hanging.
        raised: Exception | None = None
        try:
            for _ in probe:
                pass
        except Exception as exc:  # noqa: BLE001 - httpx's RemoteProtocolError or the SDK's APIError
            raised = exc
        assert raised is not None, "the stream on the killed replica ended as if complete"
        assert time.monotonic() - killed < 5, "the stream on the killed replica hung"
        went_down = cluster.lb.wait_state(f"r{victim_index}", "DOWN", timeout=10)
        time.sleep(2.0)
    outcomes = load.outcomes
    failed = [o for o in outcomes if not o.ok]
    # Only requests in flight on the victim failed: started before it was dead, ended quickly after the kill.
    for o in failed:
        assert o.started < dead and o.ended - killed < 5, o
        assert o.replica in (None, f"r{victim_index}"), o
    after = [o for o in outcomes if o.started > dead]
    assert len(after) >= 20 and all(o.ok for o in after), [o.error for o in after if not o.ok][:5]
    assert all(o.replica != f"r{victim_index}" for o in after)
    assert went_down < 3.0
    # Every request a survivor completed has its record in PostgreSQL.
    survivors = {o.request_id for o in outcomes if o.ok and o.replica != f"r{victim_index}" and o.request_id}
    assert survivors
    missing = wait_logged(cluster.db, survivors)
    assert not missing, f"{len(missing)} of {len(survivors)} survivor requests have no log record"
    # The replica comes back on its port and the LB sees it up again.
    cluster.start(victim_index)
    cluster.lb.wait_state(f"r{victim_index}", "UP")
