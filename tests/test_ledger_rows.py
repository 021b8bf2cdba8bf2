"""The request log's row format: built from real requests, read back as the record, on both stores.

A row (``ledger/record.build_row``) keeps the routing trace and the attempts as
compact arrays; ``ledger/rowcodec.decode_row`` renders them back. These tests
pin that the rendering is routing's own JSON shape (``RoutingTrace.to_json``),
that what the stores return is exactly what was logged, and that secrets,
zero data retention and content levels hold on the way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.core.context import RequestContext
from interlock.core.errors import GatewayError
from interlock.core.policy import Policy, PolicyTarget
from interlock.core.principal import Principal
from interlock.ledger import record
from interlock.ledger.record import Redactor, build_row
from interlock.ledger.rowcodec import ROW_COLUMNS, row_from_record, row_record
from interlock.ledger.schema import LogQuery, SpendQuery, day_of, rollup_deltas
from interlock.ledger.settings import LogSettings
from interlock.ledger.sink import RequestSink
from interlock.ledger.writer import LedgerWriter, LogStore, SpillFile
from interlock.pipeline.settle import price_openai_usage
from tests.test_routing_fixtures import MODEL, chat, simulator, world

SECRET = "vendor-secret-value-0123456789"
PRINCIPAL = Principal("project", "ik-Vh3kq9Zr", project="acme", key_id="key_3f9c2a71d0")


def jsonable(value: Any) -> Any:
    """What a client sees after the admin API's JSON encoding."""
    return orjson.loads(orjson.dumps(value))


async def routed(w: Any, request: dict[str, Any], headers: dict[str, str] | None = None,
                 tags: tuple[str, ...] = ()) -> RequestContext:
    """A request through the real routing engine and dispatcher, settled as the pipeline does."""
    ctx, canonical = w.context(request)
    ctx.principal = PRINCIPAL
    ctx.tags = tags
    ctx.end_user = "end-user-7"
    ctx.request_content = dict(request)
    ctx.capture_content = True
    try:
        completion = await w.dispatcher.complete(ctx, canonical, headers or {})
    except GatewayError as err:
        ctx.fail(err)
    else:
        ctx.first_byte = time.perf_counter()
        price_openai_usage(ctx, completion.data["usage"])
        ctx.response_content = completion.data
    w.engine.observe(ctx)
    return ctx


def three() -> Any:
    return world({v: simulator() for v in ("sima", "simb", "simc")})


async def scenarios() -> dict[str, RequestContext]:
    """Traces of every shape: plain, failover, filtered with overrides, scored, fallback models, all failed."""
    out = {"plain": await routed(three(), chat(), tags=("team-a", "exp-1"))}
    failing = world({"sima": simulator({MODEL: "error=503"}), "simb": simulator()})
    out["failover"] = await routed(failing, chat())
    routes = {"sima": {"capabilities": ["streaming"]}, "simb": {"context_window": 50}, "simc": {}, "simd": {}}
    filtered = world({v: simulator() for v in routes}, routes=routes)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    out["filtered"] = await routed(filtered, chat(tools=tools, max_tokens=100, provider={"ignore": ["simd"]}))
    prices = {"sima": {"price": {"input": 0.1, "output": 0.1}}, "simb": {"price": {"input": 9.0, "output": 9.0}}}
    balanced = Policy("b", (PolicyTarget(f"simb/{MODEL}"), PolicyTarget(f"sima/{MODEL}")), strategy="balanced")
    out["scored"] = await routed(world({v: simulator() for v in prices}, routes=prices, policies={"b": balanced}),
                                 chat("b"))
    fallback = world({"sima": simulator(), "simulator": simulator()}, routes={"sima": {}})
    out["fallback"] = await routed(fallback, chat(models=["simulator/openai/gpt-4.1-nano", "nope/nothing"]))
    down = world({"sima": simulator({MODEL: "error=503"}), "simb": simulator({MODEL: "error=500"})})
    out["all_failed"] = await routed(down, chat())
    # One target: the short trace (record.single_target) - answered, and failed after retries.
    out["single"] = await routed(world({"sima": simulator()}), chat(max_tokens=64))
    out["single_failed"] = await routed(world({"sima": simulator({MODEL: "error=500"})}), chat())
    out["single_suffix"] = await routed(world({"sima": simulator()}), chat(f"{MODEL}:floor"))
    return out


@pytest.fixture
async def contexts() -> dict[str, RequestContext]:
    return await scenarios()


def test_scenarios_cover_every_trace_shape(contexts: dict[str, RequestContext]) -> None:
    traces = {name: ctx.routing.to_json() for name, ctx in contexts.items() if ctx.routing is not None}
    assert any(a["outcome"] == "failed" for a in traces["failover"]["attempts"])
    assert any(c.get("filtered") for c in traces["filtered"]["candidates"]) and traces["filtered"]["overrides"]
    assert any("score" in c for c in traces["scored"]["candidates"])
    assert any(c["group"] > 0 for c in traces["fallback"]["candidates"]) and len(traces["fallback"]["models"]) > 1
    assert contexts["all_failed"].status >= 500 and contexts["all_failed"].error is not None
    assert traces["single_failed"]["attempts"] and contexts["single_failed"].status >= 500


def test_one_target_decisions_are_stored_short(contexts: dict[str, RequestContext]) -> None:
    short = {name for name, ctx in contexts.items()
             if len(orjson.loads(build_row(ctx, "metadata", False, Redactor())[-1])[-3]) == 5}
    # A :floor suffix is an override: the full form keeps it.
    assert short == {"single", "single_failed"}
    assert len(contexts["single_failed"].attempts) > 1


async def test_the_stored_trace_renders_as_routings_own_json(contexts: dict[str, RequestContext]) -> None:
    for name, ctx in contexts.items():
        record = row_record(build_row(ctx, "metadata", False, Redactor()))
        assert ctx.routing is not None
        assert record["routing_trace"] == jsonable(ctx.routing.to_json()), name
        plan = "; ".join(ctx.plan.explanation) if ctx.plan is not None else ""
        assert record["explanation"] == ctx.routing.outcome_reason() + (f" ({plan})" if plan else ""), name
        expected = [a.to_json() for a in ctx.attempts]
        got = record["attempts"]
        assert [{k: v for k, v in a.items() if k != "start_ms"} for a in got] == jsonable(expected), name
        for attempt, made in zip(got, ctx.attempts, strict=True):
            assert attempt["start_ms"] == pytest.approx((made.started - ctx.started) * 1000.0, abs=2e-3)


async def test_record_fields_from_a_real_request(contexts: dict[str, RequestContext]) -> None:
    ctx = contexts["plain"]
    row = build_row(ctx, "full", False, Redactor())
    assert len(row) == len(ROW_COLUMNS)
    record = row_record(row)
    assert ctx.target is not None and ctx.usage is not None and ctx.cost is not None
    assert record["id"] == ctx.id and record["received_at"] == ctx.received_at
    assert record["project"] == "acme" and record["key_id"] == "key_3f9c2a71d0" and record["end_user"] == "end-user-7"
    assert record["tags"] == ["team-a", "exp-1"] and record["inbound"] == "openai.chat" and record["stream"] == 0
    assert record["model"] == ctx.target.model_id and record["vendor"] == ctx.target.vendor.id
    assert record["vendor_model"] == ctx.target.vendor_model and record["requested_model"] == MODEL
    assert record["status"] == 200 and record["error_type"] is None and record["error_message"] is None
    assert record["input_tokens"] == ctx.usage.input_tokens and record["output_tokens"] == ctx.usage.output_tokens
    assert record["cost_picousd"] == ctx.cost.picousd and record["cost_usd"] == ctx.cost.picousd / 1e12
    assert record["cost_estimated"] == 0 and record["simulated"] == 0 and record["cache_hit"] == 0
    assert record["received_at"] <= record["first_byte_at"] <= record["done_at"]
    assert record["duration_ms"] >= record["ttft_ms"] >= 0 and record["output_tps"] > 0
    assert record["content_level"] == "full" and record["request_content"]["messages"] == chat()["messages"]
    assert record["response_content"]["choices"][0]["message"]["content"]
    assert set(record) == {*jsonable(record)} and "detail" not in record


async def test_secrets_are_scrubbed_and_zero_data_retention_keeps_no_text(
        contexts: dict[str, RequestContext]) -> None:
    ctx = contexts["all_failed"]
    assert ctx.error is not None
    ctx.error.message = f"vendor said: key {SECRET} and Bearer abcdefghijklmnop rejected"
    for attempt in ctx.attempts:
        attempt.error = f"upstream echoed {SECRET}"
    ctx.request_content = {"messages": [{"role": "user", "content": f"my key is {SECRET}"}]}
    redactor = Redactor([SECRET])
    row = build_row(ctx, "full", False, redactor)
    assert SECRET not in repr(row) and "abcdefghijklmnop" not in repr(row)
    record = row_record(row)
    assert "[REDACTED]" in record["error_message"] and "[REDACTED]" in record["attempts"][0]["error"]
    assert "[REDACTED]" in record["request_content"]["messages"][0]["content"]
    zdr = row_record(build_row(ctx, "metadata", True, redactor))
    assert zdr["content_level"] == "zdr" and zdr["error_message"] is None
    assert zdr["request_content"] is None and zdr["response_content"] is None
    assert all("error" not in a for a in zdr["attempts"]) and all("error" not in a for a in
                                                                  zdr["routing_trace"]["attempts"])
    assert zdr["error_type"] == record["error_type"] and zdr["attempts"][0]["code"]


class Collect:
    """The writer's submit, and nothing else."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def submit(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)


async def test_content_is_kept_only_at_full(contexts: dict[str, RequestContext]) -> None:
    ctx = contexts["plain"]
    metadata = row_record(build_row(ctx, "metadata", False, Redactor()))
    assert metadata["request_content"] is None and metadata["response_content"] is None
    writer = Collect()
    sink = RequestSink(LogSettings(level="metadata"), writer, None, None)
    ctx.log_level = "off"  # the project's level: nothing is written
    sink.settle(ctx)
    assert writer.rows == []
    ctx.log_level = "full"
    sink.settle(ctx)
    assert len(writer.rows) == 1 and row_record(writer.rows[0])["request_content"] == ctx.request_content
    ctx.log_level = None


# ----------------------------------------------------------------- both stores


@pytest.fixture
def store(log_store: LogStore) -> LogStore:
    return log_store


async def test_what_the_store_returns_is_what_was_logged(store: LogStore, contexts: dict[str, RequestContext],
                                                         tmp_path: Path) -> None:
    rows = [build_row(ctx, "full", False, Redactor()) for ctx in contexts.values()]
    writer = LedgerWriter(store, SpillFile(tmp_path / "spill"), interval=0.05)
    for row in rows:
        writer.submit(row)
    await writer.flush()
    assert writer.written == len(rows) and writer.spilled == 0
    listed = {r["id"]: r for r in await store.query(LogQuery(limit=100))}
    for row in rows:
        logged = jsonable(row_record(row))
        assert jsonable(await store.get(row[0])) == logged
        assert jsonable(listed[row[0]]) == logged
    tagged = await store.query(LogQuery(tag="team-a"))
    assert [r["id"] for r in tagged] == [contexts["plain"].id]
    assert [r["id"] for r in await store.query(LogQuery(text="\"tools\""))] == [contexts["filtered"].id]
    errors = {r["id"] for r in await store.query(LogQuery(status="error"))}
    assert errors == {contexts["all_failed"].id, contexts["single_failed"].id}
    spend = await store.spend(SpendQuery(group_by="tag"))
    assert {r["tag"]: r["requests"] for r in spend} == {"team-a": 1, "exp-1": 1}
    total = await store.spend(SpendQuery(group_by="day"))
    assert sum(r["requests"] for r in total) == len(rows) and sum(r["errors"] for r in total) == 2
    cost = sum(ctx.cost.picousd for ctx in contexts.values() if ctx.cost is not None)
    assert sum(r["cost_picousd"] for r in total) == cost


async def test_an_id_twice_in_one_batch_is_written_and_counted_once(store: LogStore,
                                                                    contexts: dict[str, RequestContext]) -> None:
    row = build_row(contexts["plain"], "metadata", False, Redactor())
    other = build_row(contexts["failover"], "metadata", False, Redactor())
    assert await store.write([row, row, other]) == 2
    assert await store.write([row, other]) == 0
    rows = await store.spend(SpendQuery(group_by="day"))
    assert sum(r["requests"] for r in rows) == 2


async def test_records_given_as_dicts_are_written_as_rows(store: LogStore) -> None:
    record = {"id": "req_dict", "received_at": 1_750_000_000.0, "done_at": 1_750_000_000.25, "duration_ms": 250.0,
              "ttft_ms": 50.0, "output_tps": 12.5, "inbound": "openai-chat", "status": 502, "stream": 1,
              "model": "m", "vendor": "v", "tags": ["t"], "error_type": "upstream_error",
              "attempts": [{"vendor": "v", "outcome": "failed", "status": 502}],
              "routing_trace": {"reason": "first", "candidates": []}, "explanation": "first (plan)",
              "content_level": "metadata"}
    assert await store.write([record]) == 1
    got = await store.get("req_dict")
    assert got is not None
    for key, value in record.items():
        assert got[key] == value, key
    assert got["first_byte_at"] == pytest.approx(1_750_000_000.05)
    assert row_record(row_from_record(record)) == {**got, "received_at": record["received_at"]}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1_750_000_000.0, 1_750_000_500.5, 1_750_086_399.9, 1_750_086_400.0]),
                          st.sampled_from(["", "acme"]), st.sampled_from(["k1", "k2"]), st.sampled_from(["m", ""]),
                          st.sampled_from(["v"]), st.sampled_from([200, 429, 500]),
                          st.one_of(st.none(), st.integers(0, 10**6)), st.one_of(st.none(), st.integers(0, 99)),
                          st.sampled_from(["", '["a"]', '["a","b"]', '"x"']),
                          # what the response cache did, and what a hit saved ("": absent)
                          st.sampled_from([("", ""), ("miss", ""), ("bypass", ""), ("hit", ""), ("hit", 0),
                                           ("hit", 7_000)])),
                min_size=1, max_size=40),
       st.booleans())
def test_rollup_deltas_match_the_row_by_row_definition(fields: list[tuple[Any, ...]], same: bool) -> None:
    """Per-key sums of any batch, mixed keys or one key (most batches), are the definition's."""
    if same:  # every row with the first row's key, values still varying
        fields = [(fields[0][0], *fields[0][1:5], *f[5:8], fields[0][8], f[9]) for f in fields]
    rows = [(f"req_{i}", at, project, key, model, model, vendor, status, cost, tokens, None, tokens, tags, "i", 0,
             "", "", cache, saved, "[1]")
            for i, (at, project, key, model, vendor, status, cost, tokens, tags, (cache, saved)) in enumerate(fields)]
    expected: dict[tuple[str, ...], list[int]] = {}
    for r in rows:  # the definition, one row at a time
        tag_list = orjson.loads(r[12]) if r[12] else []
        for tag in ["*", *(tag_list if isinstance(tag_list, list) else [])]:
            key = (day_of(r[1]), r[2], r[3], r[4], r[6], tag)
            sums = expected.setdefault(key, [0] * 8)
            hit = r[17] == "hit"
            for i, value in enumerate((1, int(r[7] >= 400), r[9] or 0, r[10] or 0, r[11] or 0, r[8] or 0,
                                       (r[18] or 0) if hit else 0, int(hit))):
                sums[i] += value
    assert rollup_deltas(rows) == [(*k, *v) for k, v in sorted(expected.items())]


def test_rows_of_the_previous_detail_layout_still_read(contexts: dict[str, RequestContext]) -> None:
    # Layout 1 (before the short one-target trace) is layout 2 without the short form.
    for name, ctx in contexts.items():
        row = build_row(ctx, "metadata", False, Redactor())
        detail = orjson.loads(row[-1])
        if len(detail[-3]) == 5:
            continue
        old = (*row[:-1], orjson.dumps([1, *detail[1:]]).decode())
        assert row_record(old) == row_record(row), name
    with pytest.raises(ValueError, match="unknown detail layout"):
        row_record((*row[:-1], orjson.dumps([99, *detail[1:]]).decode()))


@pytest.mark.parametrize(("level", "zdr"), [("metadata", False), ("full", False), ("full", True), ("metadata", True)])
async def test_the_answered_fast_path_writes_the_full_paths_row(
        contexts: dict[str, RequestContext], monkeypatch: pytest.MonkeyPatch, level: str, zdr: bool) -> None:
    more = {"tagged": await routed(world({"sima": simulator()}), chat(), tags=("team-a",)),
            "unpriced_alias": await routed(world({"sima": simulator()}), chat(max_tokens=5))}
    more["tagged"].principal = Principal("admin", "ik-admin00")
    more["unpriced_alias"].cost = None
    fast = {name: record._answered_row(ctx, level, zdr) for name, ctx in {**contexts, **more}.items()}
    with monkeypatch.context() as patched:
        patched.setattr(record, "_answered_row", lambda *_: None)
        full = {name: build_row(ctx, level, zdr, Redactor()) for name, ctx in {**contexts, **more}.items()}
    # Content kept (level full, no ZDR) or anything but one answered attempt: the full path.
    taken = {name for name, row in fast.items() if row is not None}
    assert taken == (set() if level == "full" and not zdr else {"single", "tagged", "unpriced_alias"})
    for name in taken:
        row, expected = fast[name], full[name]
        assert row[:-1] == expected[:-1], name
        got, want = orjson.loads(row[-1]), orjson.loads(expected[-1])
        assert abs(got[2] - want[2]) < 50_000  # duration_us: each path reads the clock
        assert got[:2] + got[3:] == want[:2] + want[3:], name
