"""The conformance layer: unit tests of tests/conformance/check.py and a matrix against one gateway.

The matrix needs no assertions of shape of its own: every answer it gets is checked against the
vendors' specs by the conftest hook (tests/conformance), which fails the test on a violation. The
unit tests prove the checker catches what it must (each would pass if the checker were lax).
"""

from __future__ import annotations

import base64
import http.server
import json
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
import requests
from aiohttp import web

from tests.conformance import capture
from tests.conformance.check import Checker
from tests.conftest import MASTER_KEY, GatewayProcess, start_gateway
from tests.socket_app import SocketApp

SIM = "openai/gpt-4.1-mini"
REASONING = "openai/o4-mini"
CLAUDE = "anthropic/claude-sonnet-4-5"
USER = [{"role": "user", "content": "Tell me about Paris."}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
    "additionalProperties": False}}}


# --- unit tests of the checker ------------------------------------------------------------------
def _chat(message: dict[str, Any]) -> bytes:
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": message}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "cost": 0.5}}
                      ).encode()


def _sse(events: list[dict[str, Any]], named: bool = True) -> bytes:
    return b"".join((f"event: {e['type']}\n" if named else "").encode() + b"data: " + json.dumps(e).encode()
                    + b"\n\n" for e in events)


def test_checker_catches_a_missing_refusal_and_reports_extra_usage_fields() -> None:
    checker = Checker()
    bad = checker.check("POST", "http://h/v1/chat/completions", 200, "application/json",
                        _chat({"role": "assistant", "content": "hi"}))
    assert [v.location.split(" ")[0] for v in bad] == ["choices/0/message"]
    assert "refusal" in bad[0].message
    good = checker.check("POST", "http://h/v1/chat/completions", 200, "application/json; charset=utf-8",
                         _chat({"role": "assistant", "content": "hi", "refusal": None}))
    assert good == []
    assert checker.extras[("CompletionUsage", "cost")] == 2  # allowed, reported


def _response(status: str = "completed", usage: Any = None) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1, "status": status, "model": "m", "output": [],
            "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
            "parallel_tool_calls": True, "temperature": 1, "top_p": 1, "tool_choice": "auto", "tools": [],
            **({"usage": usage} if usage is not None or status != "completed" else {
                "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                          "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}})}


def _responses_stream(middle: list[dict[str, Any]], terminals: int = 1) -> bytes:
    created = {"type": "response.created", "response": {**_response("in_progress"), "usage": None}}
    done = {"type": "response.completed", "response": _response()}
    events = [created, *middle] + [done] * terminals
    return _sse([{**e, "sequence_number": i} for i, e in enumerate(events)])


def test_checker_checks_each_responses_event_against_its_union_member() -> None:
    checker = Checker()
    done = {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 0,
            "arguments": "{}"}
    bad = checker.check("POST", "http://h/v1/responses", 200, "text/event-stream", _responses_stream([done]))
    assert [(v.schema, v.message) for v in bad] == [
        ("openai:ResponseFunctionCallArgumentsDoneEvent", "'name' is a required property")]
    # usage: null in response.created is the documented exception; the rest of the stream conforms
    assert checker.check("POST", "http://h/v1/responses", 200, "text/event-stream",
                         _responses_stream([{**done, "name": "f"}])) == []


def test_checker_catches_a_duplicated_terminal_event_and_a_backwards_sequence_number() -> None:
    checker = Checker()
    twice = checker.check("POST", "http://h/v1/responses", 200, "text/event-stream", _responses_stream([], 2))
    assert [v.schema for v in twice] == ["sequence"]
    assert "after terminal response.completed" in twice[0].message
    body = _responses_stream([]).replace(b'"sequence_number": 1', b'"sequence_number": 0')
    backwards = checker.check("POST", "http://h/v1/responses", 200, "text/event-stream", body)
    assert [v.location for v in backwards] == ["sequence_number"]


def test_checker_catches_string_content_in_input_items() -> None:
    item = {"id": "msg_1", "type": "message", "role": "user", "status": "completed", "content": "hi"}
    body = json.dumps({"object": "list", "data": [item], "has_more": False, "first_id": "msg_1",
                       "last_id": "msg_1"}).encode()
    bad = Checker().check("GET", "http://h/v1/responses/resp_1/input_items", 200, "application/json", body)
    assert len(bad) == 1 and bad[0].schema == "openai:ResponseItemList"
    item["content"] = [{"type": "input_text", "text": "hi"}]
    body = json.dumps({"object": "list", "data": [item], "has_more": False, "first_id": "msg_1",
                       "last_id": "msg_1"}).encode()
    assert Checker().check("GET", "http://h/v1/responses/resp_1/input_items", 200, "application/json", body) == []


_USAGE = {"input_tokens": 1, "output_tokens": 1, "cache_creation": None, "cache_creation_input_tokens": None,
          "cache_read_input_tokens": None, "inference_geo": None, "output_tokens_details": None,
          "server_tool_use": None, "service_tier": None}


def _message(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": content,
            "stop_reason": "tool_use", "stop_sequence": None, "stop_details": None, "container": None,
            "usage": _USAGE}


def test_checker_catches_a_tool_use_block_without_caller_and_missing_nullable_fields() -> None:
    tool = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
    checker = Checker()
    bad = checker.check("POST", "http://h/v1/messages", 200, "application/json",
                        json.dumps(_message([tool])).encode())
    assert len(bad) == 1 and bad[0].location.startswith("content/0")
    good = _message([{**tool, "caller": {"type": "direct"}}])
    assert checker.check("POST", "http://h/v1/messages", 200, "application/json", json.dumps(good).encode()) == []
    no_usage_fields = {**good, "usage": {"input_tokens": 1, "output_tokens": 1}}
    missing = checker.check("POST", "http://h/v1/messages", 200, "application/json",
                            json.dumps(no_usage_fields).encode())
    assert len(missing) == 7  # every always-present usage field the TypeScript types declare


def test_checker_follows_the_messages_event_sequence() -> None:
    start = {"type": "message_start", "message": {**_message([]), "stop_reason": None}}
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "", "citations": None}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}
    stop = {"type": "content_block_stop", "index": 0}
    mdelta = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
              "usage": {"output_tokens": 1, "input_tokens": 1, "cache_creation_input_tokens": None,
                        "cache_read_input_tokens": None, "output_tokens_details": None, "server_tool_use": None}}
    end = {"type": "message_stop"}
    checker = Checker()
    assert checker.check("POST", "http://h/v1/messages", 200, "text/event-stream",
                         _sse([start, block, delta, stop, mdelta, end])) == []
    wrong_index = checker.check("POST", "http://h/v1/messages", 200, "text/event-stream",
                                _sse([start, block, {**delta, "index": 1}, stop, mdelta, end]))
    assert [v.location for v in wrong_index] == ["index"]
    unterminated = checker.check("POST", "http://h/v1/messages", 200, "text/event-stream",
                                 _sse([start, block, delta, stop, mdelta]))
    assert [v.schema for v in unterminated] == ["sequence"]
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}, "request_id": "req_1"}
    assert checker.check("POST", "http://h/v1/messages", 200, "text/event-stream",
                         _sse([start, block, delta, error])) == []
    assert len(checker.check("POST", "http://h/v1/messages", 200, "text/event-stream",
                             _sse([start, block, delta, error, error]))) == 1


def test_checker_reports_a_second_chat_stream_error_and_checks_error_bodies() -> None:
    err = {"error": {"message": "boom", "type": "server_error", "param": None, "code": "upstream_error"}}
    body = b"data: " + json.dumps(err).encode() + b"\n\ndata: " + json.dumps(err).encode() + b"\n\n"
    found = Checker().check("POST", "http://h/v1/chat/completions", 200, "text/event-stream", body)
    assert [v.message for v in found] == ["a second error in one stream"]
    no_param = {"error": {"message": "x", "type": "invalid_request_error", "code": None}}
    bad = Checker().check("GET", "http://h/v1/models/x", 404, "application/json", json.dumps(no_param).encode())
    assert "'param' is a required property" in bad[0].message
    anthropic_error = {"type": "error", "error": {"type": "not_found_error", "message": "x"}}
    bad = Checker().check("POST", "http://h/v1/messages", 404, "application/json",
                          json.dumps(anthropic_error).encode())
    assert "request_id" in bad[0].message


def test_checker_accepts_base64_embeddings_only_as_float32s() -> None:
    vector = base64.b64encode(struct.pack("<3f", 0.1, 0.2, 0.3)).decode()
    answer = {"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
              "data": [{"object": "embedding", "index": 0, "embedding": vector}]}
    assert Checker().check("POST", "http://h/v1/embeddings", 200, "application/json",
                           json.dumps(answer).encode()) == []
    answer["data"][0]["embedding"] = "AAE"  # type: ignore[index]
    assert Checker().check("POST", "http://h/v1/embeddings", 200, "application/json", json.dumps(answer).encode())


class _Answers(http.server.BaseHTTPRequestHandler):
    """A model-not-found error without ``param``: an OpenAI-shape violation to capture."""

    def do_GET(self) -> None:
        body = json.dumps({"error": {"message": "no", "type": "invalid_request_error", "code": None}}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        if self.path.endswith("chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_capture_checks_registered_ports_through_every_client_stack() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.protocol_version = "HTTP/1.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/v1/models"
    try:
        capture.take()
        requests.get(f"{url}/unregistered", timeout=5)
        assert capture.take() == []  # a port no gateway registered (a mock vendor) is not checked
        capture.register(port)
        requests.get(f"{url}/a", timeout=5)
        requests.get(f"{url}/chunked", timeout=5)
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(f"{url}/b", timeout=5)
        raised.value.read()
        with httpx2.Client() as client:
            client.get(f"{url}/c")
        found = capture.take()
        assert [v.where for v in found] == [f"GET /v1/models/{p} 404" for p in ("a", "chunked", "b", "c")]
        assert all("'param' is a required property" in v.message for v in found)
    finally:
        capture.unregister(port)
        server.shutdown()


# --- the matrix against one gateway (answers checked by the conftest hook) ------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The module's own simulator gateway: its deliberate vendor faults must not open a circuit breaker
    that the suite's shared gateway (or a later test here) relies on."""
    config = ("simulator: {enabled: true, time_scale: 0, allow_fault_headers: true}\n"
              "circuit_breaker: {min_requests: 1000}\n")
    gw = start_gateway(tmp_path_factory.mktemp("conformance"), config)
    yield gw
    gw.stop()


@pytest.fixture
def oai(gateway: GatewayProcess) -> openai.OpenAI:
    return gateway.openai_client()


@pytest.fixture
def ant(gateway: GatewayProcess) -> anthropic.Anthropic:
    return gateway.anthropic_client()


def _fault(spec: str) -> dict[str, str]:
    return {"x-interlock-simulator-fault": spec}


CHAT_CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "tools": {"tools": TOOLS, "tool_choice": "required"},
    "json_schema": {"response_format": SCHEMA},
    "n2": {"n": 2},
    "logprobs": {"logprobs": True, "top_logprobs": 2},
}


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("case", sorted(CHAT_CASES))
def test_chat_matrix(oai: openai.OpenAI, case: str, stream: bool) -> None:
    extra = CHAT_CASES[case]
    if stream:
        chunks = list(oai.chat.completions.create(model=SIM, messages=USER, max_tokens=30, stream=True,  # type: ignore[call-overload]
                                                  stream_options={"include_usage": True}, **extra))
        assert chunks
        if case == "logprobs":  # requested logprobs must come back (the schema allows null)
            assert any(c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content for c in chunks)
    else:
        answer = oai.chat.completions.create(model=SIM, messages=USER, max_tokens=30, **extra)  # type: ignore[call-overload]
        assert len(answer.choices) == extra.get("n", 1)
        if case == "logprobs":
            logprobs = answer.choices[0].logprobs
            assert logprobs is not None and logprobs.content and len(logprobs.content[0].top_logprobs) == 2


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_chat_reasoning_model(oai: openai.OpenAI, stream: bool) -> None:
    if stream:
        assert list(oai.chat.completions.create(model=REASONING, messages=USER, max_completion_tokens=60,
                                                stream=True, reasoning_effort="low"))
    else:
        assert oai.chat.completions.create(model=REASONING, messages=USER, max_completion_tokens=60,
                                           reasoning_effort="low").choices


RESPONSES_CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "tools": {"tools": [{"type": "function", "name": "get_weather", "strict": False,
                         "parameters": TOOLS[0]["function"]["parameters"]}], "tool_choice": "required"},
    "json_schema": {"text": {"format": {"type": "json_schema", "name": "city", "strict": True,
                                        "schema": SCHEMA["json_schema"]["schema"]}}},
    "reasoning": {"model": REASONING, "reasoning": {"effort": "low"}},
}


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("case", sorted(RESPONSES_CASES))
def test_responses_matrix(oai: openai.OpenAI, case: str, stream: bool) -> None:
    extra = dict(RESPONSES_CASES[case])
    model = extra.pop("model", SIM)
    if stream:
        events = list(oai.responses.create(model=model, input="Tell me about Paris.", max_output_tokens=60,
                                           stream=True, **extra))
        assert events[-1].type in ("response.completed", "response.incomplete")
    else:
        response = oai.responses.create(model=model, input="Tell me about Paris.", max_output_tokens=60, **extra)
        assert response.status in ("completed", "incomplete")  # incomplete: max_output_tokens reached


@pytest.mark.slow
def test_responses_retrieve_input_items_and_delete(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model=SIM, input=[{"role": "user", "content": "Hello there"}], store=True)
    assert oai.responses.retrieve(response.id).id == response.id
    assert oai.responses.input_items.list(response.id).data
    oai.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(response.id)


MESSAGES_CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "tools": {"tools": [{"name": "get_weather", "description": "Weather", "input_schema": TOOLS[0]["function"]["parameters"]}],
              "tool_choice": {"type": "any"}},
    "thinking": {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048},
}


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("case", sorted(MESSAGES_CASES))
def test_messages_matrix(ant: anthropic.Anthropic, case: str, stream: bool) -> None:
    extra = {"max_tokens": 100, **MESSAGES_CASES[case]}
    if stream:
        events = list(ant.messages.create(model=CLAUDE, messages=USER, stream=True, **extra))  # type: ignore[arg-type, call-overload]
        assert events[-1].type == "message_stop"
    else:
        assert ant.messages.create(model=CLAUDE, messages=USER, **extra).content  # type: ignore[arg-type, call-overload]


@pytest.mark.slow
def test_count_tokens(ant: anthropic.Anthropic) -> None:
    assert ant.messages.count_tokens(model=CLAUDE, messages=USER).input_tokens > 0  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings(oai: openai.OpenAI, encoding: str) -> None:
    answer = oai.embeddings.with_raw_response.create(model="openai/text-embedding-3-small", input=["a", "b"],
                                                     encoding_format=encoding)  # type: ignore[arg-type]
    assert len(answer.parse().data) == 2


@pytest.mark.slow
def test_models_list_and_retrieve_including_a_percent_encoded_id(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert SIM in ids
    assert oai.models.retrieve(SIM).id == SIM


@pytest.mark.slow
def test_model_retrieve_with_a_percent_encoded_slash(gateway: GatewayProcess) -> None:
    # openai-node percent-encodes path values: GET /v1/models/openai%2Fgpt-4.1-mini
    answer = requests.get(f"{gateway.base_url}/models/openai%2Fgpt-4.1-mini",
                          headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == SIM


@pytest.mark.slow
@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_vendor_errors_in_each_format(oai: openai.OpenAI, ant: anthropic.Anthropic, status: int) -> None:
    with pytest.raises(openai.APIStatusError):
        oai.chat.completions.create(model=SIM, messages=USER, extra_headers=_fault(f"error={status}"))  # type: ignore[arg-type]
    with pytest.raises(openai.APIStatusError):
        oai.responses.create(model=SIM, input="hi", extra_headers=_fault(f"error={status}"))
    with pytest.raises(anthropic.APIStatusError):
        ant.messages.create(model=CLAUDE, max_tokens=20, messages=USER, extra_headers=_fault(f"error={status}"))  # type: ignore[arg-type]


@pytest.mark.slow
def test_client_errors_in_each_format(gateway: GatewayProcess, oai: openai.OpenAI) -> None:
    bad_key = openai.OpenAI(base_url=gateway.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model=SIM, messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="nobody/nothing", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model=SIM, messages=USER, temperature=9)  # type: ignore[arg-type]
    bad_ant = anthropic.Anthropic(base_url=gateway.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_ant.messages.create(model=CLAUDE, max_tokens=20, messages=USER)  # type: ignore[arg-type]


@pytest.mark.slow
def test_vendor_fault_mid_stream_is_one_error(gateway: GatewayProcess) -> None:
    # Raw reads to the end of each body: the SDKs stop at the first error, hiding a second one.
    _read_whole_streams(gateway, SIM, CLAUDE, _fault("error_event=529"))


def _read_whole_streams(gw: GatewayProcess, model: str, claude: str, extra: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01",
               **extra}
    bodies = {"/v1/chat/completions": {"model": model, "messages": USER, "stream": True, "max_tokens": 40},
              "/v1/responses": {"model": model, "input": "Tell me a story.", "stream": True, "store": False,
                                "max_output_tokens": 40},
              "/v1/messages": {"model": claude, "max_tokens": 40, "messages": USER, "stream": True}}
    for path, body in bodies.items():
        answer = requests.post(gw.url + path, json=body, headers=headers, timeout=20)
        assert answer.status_code == 200 and b"error" in answer.content, path


# --- a vendor that sends an error object in the middle of its stream ------------------------------
class _ErrorMidStream(SocketApp):
    """An OpenAI-compatible vendor: two content chunks, then ``data: {"error": ...}`` and the end."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for text in ("Hello", " wor"):
            chunk = {"id": "chatcmpl-e", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        error = {"error": {"message": "The vendor fell over", "type": "server_error", "param": None, "code": None}}
        await resp.write(b"data: " + json.dumps(error).encode() + b"\n\n")
        await resp.write_eof()
        return resp


@pytest.fixture(scope="module")
def failing_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    vendor = _ErrorMidStream().start()
    config = f"""
vendors:
  shaky: {{type: openai, base_url: "http://127.0.0.1:{vendor.port}/v1", api_key: sk-shaky}}
"""
    gw = start_gateway(tmp_path_factory.mktemp("conformance-shaky"), config)
    yield gw
    gw.stop()
    vendor.stop()


@pytest.mark.slow
def test_vendor_error_object_mid_stream_is_reported_once(failing_gateway: GatewayProcess) -> None:
    _read_whole_streams(failing_gateway, "shaky/any", "shaky/any", {})
