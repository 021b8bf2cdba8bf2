"""OpenTelemetry export: a real gateway sends OTLP/HTTP JSON to a local receiver on a real socket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from interlock.observability.tracing import parse_traceparent, request_spans
from tests.conftest import start_gateway
from tests.test_ledger_gateway import MODEL, chat, config


class Receiver:
    """A minimal OTLP/HTTP collector: decodes each JSON export body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["content-length"]))
                outer.paths.append(self.path)
                assert self.headers["content-type"] == "application/json"
                outer.bodies.append(json.loads(data))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[dict[str, Any]]:
        return [s for b in self.bodies for rs in b["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def attrs(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.mark.slow
def test_spans_reach_an_otlp_receiver(receiver: Receiver, tmp_path: Path) -> None:
    extra = f"telemetry:\n  otlp_endpoint: http://127.0.0.1:{receiver.port}\n  service_name: gw-test\n"
    g = start_gateway(tmp_path, config(extra, level="off"))
    parent_trace, parent_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        status, rid = chat(g, "trace me", headers={"traceparent": f"00-{parent_trace}-{parent_span}-01"})
        assert status == 200
        status, bad = chat(g, "fails", model="dead/x")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(receiver.spans()) < 4:
            time.sleep(0.1)
    finally:
        g.stop()
    assert receiver.paths[0] == "/v1/traces"
    resource = receiver.bodies[0]["resourceSpans"][0]["resource"]
    assert {"key": "service.name", "value": {"stringValue": "gw-test"}} in resource["attributes"]
    spans = receiver.spans()
    by_request = {attrs(s).get("interlock.request_id"): s for s in spans if s["kind"] == 2}
    root = by_request[rid]
    a = attrs(root)
    assert root["traceId"] == parent_trace and root["parentSpanId"] == parent_span
    assert root["name"] == f"chat {MODEL}"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "simulator"
    assert a["gen_ai.request.model"] == MODEL and int(a["gen_ai.usage.output_tokens"]) > 0
    children = [s for s in spans if s.get("parentSpanId") == root["spanId"]]
    assert len(children) >= 1 and all(c["kind"] == 3 and c["traceId"] == parent_trace for c in children)
    assert int(children[0]["startTimeUnixNano"]) >= int(root["startTimeUnixNano"])
    failed = by_request[bad]
    assert failed["status"]["code"] == 2 and attrs(failed)["error.type"]
    assert "fails" not in json.dumps(spans) and "trace me" not in json.dumps(spans)


def test_attempts_become_client_spans_with_their_own_timing() -> None:
    record = {"id": "req_1", "received_at": 1000.0, "done_at": 1002.0, "status": 200, "requested_model": "m",
              "vendor": "b", "model": "lab/m", "attempts": [
                  {"vendor": "a", "model": "m-a", "status": 503, "outcome": "failed", "code": "upstream_error",
                   "error": "vendor said: prompt was 'secret'", "latency_ms": 100.0, "start_ms": 5.0},
                  {"vendor": "b", "model": "m-b", "status": 200, "outcome": "answered", "latency_ms": 900.0,
                   "start_ms": 110.0}]}
    root, first, second = request_spans(record)
    assert first["parentSpanId"] == second["parentSpanId"] == root["spanId"]
    assert int(first["startTimeUnixNano"]) == 1000_005_000_000
    assert int(second["endTimeUnixNano"]) == 1001_010_000_000
    assert attrs(first)["error.type"] == "upstream_error" and first["status"]["code"] == 2
    assert second["status"]["code"] == 1 and "error.type" not in attrs(second)
    assert "secret" not in json.dumps([root, first, second])


def test_traceparent_parsing() -> None:
    assert parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00") == (
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", False)
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "01-zz-yy-01"):
        assert parse_traceparent(bad) is None
