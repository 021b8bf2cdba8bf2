"""The answer side of the guardrails, in process: non-streamed answers and the stream hold-back.

Streams are cut into chunks at arbitrary places (hypothesis): whatever the cuts, a redacted value
never reaches the caller, and a block ends the relayed text before the value starts.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.core.errors import ContentBlocked, GuardrailUnavailable
from interlock.guardrails.answer import HOLD, STEP, AnswerGuard, StreamScreen
from interlock.guardrails.guard import Guard, Placeholders, _Unloaded
from interlock.guardrails.settings import DetectorSettings, GuardrailSettings

CARD = "4111 1111 1111 1111"
OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" + "Q7"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nx9Yk2fQ\n-----END RSA PRIVATE KEY-----"
PROSE = ("Here is what I found in the configuration you asked about, with the values spelled out in full so "
         "that you can copy them. ")


def guard(pii: str = "off", secrets: str = "off", **extra: Any) -> Guard:
    return Guard(GuardrailSettings(pii=DetectorSettings(pii, **extra), secrets=DetectorSettings(secrets, **extra)))


def answer_guard(g: Guard, restore: Placeholders | None = None) -> tuple[AnswerGuard, list[tuple[str, str, str]]]:
    counted: list[tuple[str, str, str]] = []
    return AnswerGuard(g, restore, lambda *labels: counted.append(labels)), counted


def chunk(delta: dict[str, Any], finish: str | None = None, idx: int = 0) -> bytes:
    return orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                         "choices": [{"index": idx, "delta": delta, "logprobs": None, "finish_reason": finish}]})


def stream_of(text: str, cuts: list[int], key: str = "content") -> list[bytes]:
    bounds = sorted({c for c in cuts if 0 < c < len(text)})
    pieces = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)], strict=True)]
    return [chunk({"role": "assistant", "content": ""}), *(chunk({key: p}) for p in pieces), chunk({}, "stop")]


def relay(screen: StreamScreen, payloads: list[bytes], per_batch: int = 1) -> list[dict[str, Any]]:
    out: list[bytes] = []
    for i in range(0, len(payloads), per_batch):
        out.extend(screen.feed(payloads[i:i + per_batch]))
        if screen.blocked is not None:
            return [orjson.loads(p) for p in out]
    out.extend(screen.finish())
    return [orjson.loads(p) for p in out]


def text_of(chunks: list[dict[str, Any]], key: str = "content") -> str:
    return "".join(c["choices"][0]["delta"].get(key) or "" for c in chunks if c.get("choices"))


cut_lists = st.lists(st.integers(min_value=1, max_value=400), max_size=60)


@settings(max_examples=150, deadline=None)
@given(cuts=cut_lists, per_batch=st.integers(1, 4))
def test_a_redacted_secret_never_reaches_the_client_however_the_stream_is_cut(cuts: list[int],
                                                                             per_batch: int) -> None:
    text = f"{PROSE}deploy with {OPENAI_KEY} and pay with {CARD}. Done, nothing else to add here."
    ag, counted = answer_guard(guard(pii="redact", secrets="redact"))
    screen = ag.stream()
    chunks = relay(screen, stream_of(text, cuts), per_batch)
    for c in chunks:  # not even a part of a value is in any one chunk
        piece = json.dumps(c)
        assert OPENAI_KEY[:12] not in piece and "4111 1111" not in piece
    assert text_of(chunks) == f"{PROSE}deploy with [OPENAI_KEY_1] and pay with [CREDIT_CARD_1]. Done, nothing else " \
                              "to add here."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"  # the end comes after all the text
    assert screen.blocked is None
    assert {d.detector: d.entities for d in ag.detections()} == {"secrets": {"OPENAI_KEY": 1},
                                                                "pii": {"CREDIT_CARD": 1}}
    assert not counted  # counted once, when the request settles


@settings(max_examples=150, deadline=None)
@given(cuts=cut_lists)
def test_a_block_ends_the_relayed_text_before_the_secret(cuts: list[int]) -> None:
    text = f"{PROSE}the key is {OPENAI_KEY} and that is all"
    ag, _ = answer_guard(guard(secrets="block"))
    screen = ag.stream()
    chunks = relay(screen, stream_of(text, cuts))
    relayed = text_of(chunks)
    assert isinstance(screen.blocked, ContentBlocked)
    assert "secrets" in str(screen.blocked) and "OPENAI_KEY" in str(screen.blocked)
    assert OPENAI_KEY[:4] not in str(screen.blocked)
    assert text.startswith(relayed) and len(relayed) <= text.index(OPENAI_KEY)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


@settings(max_examples=100, deadline=None)
@given(cuts=cut_lists)
def test_a_private_key_block_is_held_until_its_end_line(cuts: list[int]) -> None:
    text = f"{PROSE}\n{PEM}\nKeep it safe."
    ag, _ = answer_guard(guard(secrets="redact"))
    relayed = text_of(relay(ag.stream(), stream_of(text, cuts)))
    assert relayed == f"{PROSE}\n[PRIVATE_KEY_1]\nKeep it safe."


@settings(max_examples=100, deadline=None)
@given(cuts=cut_lists)
def test_restore_puts_values_back_even_when_a_placeholder_is_split(cuts: list[int]) -> None:
    placeholders = Placeholders()
    token = placeholders.of("CREDIT_CARD", CARD)
    ag, _ = answer_guard(guard(pii="redact", restore=True), placeholders)
    text = f"{PROSE}I will charge {token} today, and {token} again next month."
    screen = ag.stream()
    relayed = text_of(relay(screen, stream_of(text, cuts)))
    assert relayed == text.replace(token, CARD)  # the caller's own value is back, not reported as a leak
    assert ag.detections() == []
    assert screen.log_text() == text  # the log keeps the placeholders


def test_restore_alone_holds_back_only_to_the_last_space() -> None:
    placeholders = Placeholders()
    token = placeholders.of("CREDIT_CARD", CARD)
    g = guard(pii="redact", restore=True, output=False)
    assert g.output == ()
    ag, _ = answer_guard(g, placeholders)
    screen = ag.stream()
    first = screen.feed([chunk({"content": "Charging your "}), chunk({"content": token[:6]})])
    assert text_of([orjson.loads(p) for p in first]) == "Charging your "
    rest = screen.feed([chunk({"content": token[6:] + " now"}), chunk({}, "stop")])
    assert text_of([orjson.loads(p) for p in rest]) == f"{CARD} now"


def test_relayed_text_stays_a_window_behind_the_model_until_the_end() -> None:
    ag, _ = answer_guard(guard(pii="monitor"))
    screen = ag.stream()
    text = PROSE * 3
    pieces = [text[i:i + 5] for i in range(0, len(text), 5)]
    written = sent = ""
    for piece in pieces:
        written += piece
        sent += text_of([orjson.loads(p) for p in screen.feed([chunk({"content": piece})])])
        assert written.startswith(sent)
        if sent:  # once text goes, it never comes closer to the model than the window
            assert len(written) - len(sent) >= HOLD
    assert sent and len(written) - len(sent) <= HOLD + STEP + max(map(len, text.split(" ")))
    sent += text_of([orjson.loads(p) for p in screen.finish()])
    assert sent == written  # the end releases the rest


def test_tool_call_arguments_are_scanned_and_the_order_of_events_is_kept() -> None:
    ag, _ = answer_guard(guard(secrets="redact"))
    args = json.dumps({"token": OPENAI_KEY, "note": "rotate it " * 8})
    payloads = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Calling the tool now."}),
                chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                       "function": {"name": "rotate", "arguments": ""}}]})]
    payloads += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 5]}}]})
                 for i in range(0, len(args), 5)]
    payloads += [chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                                        "function": {"name": "log", "arguments": '{"ok": true}'}}]}),
                 chunk({}, "tool_calls")]
    chunks = relay(ag.stream(), payloads)
    events: list[str] = []
    arguments: dict[int, str] = {}
    for c in chunks:
        delta = c["choices"][0]["delta"]
        if delta.get("content"):
            events.append("text")
        for call in delta.get("tool_calls") or ():
            if call.get("id"):
                events.append(f"call {call['index']}")
            arguments[call["index"]] = arguments.get(call["index"], "") + call["function"].get("arguments", "")
        if c["choices"][0]["finish_reason"]:
            events.append("finish")
    assert events == ["text", "call 0", "call 1", "finish"]
    assert json.loads(arguments[0]) == {"token": "[OPENAI_KEY_1]", "note": "rotate it " * 8}
    assert json.loads(arguments[1]) == {"ok": True}
    assert "sk-proj" not in json.dumps(chunks)


def test_choices_are_held_apart_and_the_usage_chunk_comes_last() -> None:
    ag, _ = answer_guard(guard(pii="redact"))
    payloads = []
    for word in (PROSE + f"card {CARD} end").split(" "):
        payloads += [chunk({"content": word + " "}, idx=0), chunk({"content": word.upper() + " "}, idx=1)]
    usage = orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                          "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}})
    chunks = relay(ag.stream(), [*payloads, usage])  # no finish_reason: the vendor omitted it
    assert "usage" in chunks[-1]
    by_choice = {0: "", 1: ""}
    for c in chunks[:-1]:
        for choice in c["choices"]:
            by_choice[choice["index"]] += choice["delta"].get("content") or ""
    assert by_choice[0].strip().endswith("card [CREDIT_CARD_1] end")
    assert by_choice[1].strip().endswith("CARD [CREDIT_CARD_1] END")
    assert "4111" not in json.dumps(chunks)


def test_reasoning_is_scanned_and_relayed_before_the_answer() -> None:
    ag, _ = answer_guard(guard(secrets="redact"))
    payloads = [chunk({"reasoning_content": f"the user pasted {OPENAI_KEY} earlier"}), chunk({"content": "Done."}),
                chunk({}, "stop")]
    chunks = relay(ag.stream(), payloads)
    assert [next(iter(c["choices"][0]["delta"]), None) for c in chunks] == ["reasoning_content", "content", None]
    assert chunks[0]["choices"][0]["delta"]["reasoning_content"] == "the user pasted [OPENAI_KEY_1] earlier"


def test_text_in_the_finishing_chunk_comes_before_the_finish() -> None:
    ag, _ = answer_guard(guard(pii="monitor"))
    chunks = relay(ag.stream(), [chunk({"content": PROSE}), chunk({"content": "The end."}, "stop")])
    assert text_of(chunks) == PROSE + "The end."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert ag.detections() == []


def test_logprobs_are_dropped_when_answers_are_scanned() -> None:
    ag, _ = answer_guard(guard(secrets="monitor"))
    payload = orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"},
                                                    "logprobs": {"content": [{"token": "hi"}]}, "finish_reason": "stop"}]})
    chunks = relay(ag.stream(), [payload])
    assert chunks[0]["choices"][0]["logprobs"] is None


def completion(content: str | None, arguments: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if arguments is not None:
        message["tool_calls"] = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]
    return {"choices": [{"index": 0, "message": message, "logprobs": {"content": []}, "finish_reason": "stop"}]}


def test_a_non_streamed_answer_is_redacted_blocked_or_monitored() -> None:
    ag, _ = answer_guard(guard(pii="redact", secrets="monitor"))
    data = completion(f"card {CARD}, key {OPENAI_KEY}", json.dumps({"card": CARD}))
    ag.screen(data)
    message = data["choices"][0]["message"]
    assert message["content"] == f"card [CREDIT_CARD_1], key {OPENAI_KEY}"  # monitor leaves the key
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"card": "[CREDIT_CARD_1]"}
    assert data["choices"][0]["logprobs"] is None
    assert {d.detector: (d.action, d.entities) for d in ag.detections()} == {
        "pii": ("redact", {"CREDIT_CARD": 2}), "secrets": ("monitor", {"OPENAI_KEY": 1})}

    blocker, _ = answer_guard(guard(secrets="block"))
    with pytest.raises(ContentBlocked) as info:
        blocker.screen(completion(None, json.dumps({"key": OPENAI_KEY})))
    assert "OPENAI_KEY" in str(info.value) and "sk-" not in str(info.value)


def test_a_model_made_value_is_numbered_after_the_request_and_never_restored() -> None:
    placeholders = Placeholders()
    token = placeholders.of("CREDIT_CARD", CARD)
    ag, _ = answer_guard(guard(pii="redact", restore=True), placeholders)
    other = "5500 0000 0000 0004"
    data = completion(f"yours {token}, another {other}")
    ag.screen(data)
    ag.restore(data)
    assert data["choices"][0]["message"]["content"] == f"yours {CARD}, another [CREDIT_CARD_2]"


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_detector_that_fails_on_an_answer_follows_its_fail_mode(mode: str) -> None:
    g = guard(pii="block", fail_mode=mode)
    # A pii model that could not be loaded: every scan raises (a real one, not a stand-in: the compiled build's
    # Guard holds only its own types, make fast).
    g.ner = _Unloaded("the detector is broken")
    ag, _ = answer_guard(g)
    data = completion("fine text")
    if mode == "closed":
        with pytest.raises(GuardrailUnavailable):
            ag.screen(data)
        assert [d.record() for d in ag.detections()] == [
            {"detector": "pii", "action": "unavailable", "score": 0.0, "unchecked": True}]
    else:
        ag.screen(data)
        assert data["choices"][0]["message"]["content"] == "fine text"
        assert [d.record() for d in ag.detections()] == [
            {"detector": "pii", "action": "block", "score": 0.0, "unchecked": True}]
        screen = answer_guard(g)[0].stream()
        assert text_of(relay(screen, stream_of(PROSE * 2, [10, 50, 90]))) == PROSE * 2


def test_a_call_id_repeated_in_every_chunk_does_not_release_the_arguments_early() -> None:
    ag, _ = answer_guard(guard(secrets="block"))
    args = json.dumps({"note": "rotate it " * 8, "token": OPENAI_KEY})
    payloads = [chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                       "function": {"name": "rotate", "arguments": args[i:i + 4]}}]})
                for i in range(0, len(args), 4)]
    screen = ag.stream()
    chunks = relay(screen, [*payloads, chunk({}, "tool_calls")])
    assert isinstance(screen.blocked, ContentBlocked)
    relayed = "".join(call["function"].get("arguments", "") for c in chunks
                      for call in c["choices"][0]["delta"].get("tool_calls") or ())
    assert args.startswith(relayed) and OPENAI_KEY[:6] not in relayed
