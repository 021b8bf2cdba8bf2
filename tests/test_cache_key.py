"""The response cache's key: semantically equal requests hit, any changed field misses (property-based)."""

from __future__ import annotations

import copy
import json
import random
from collections import OrderedDict
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.cache.key import IGNORED, canonical, integral, request_digest

CTX: dict[str, Any] = {"inbound": "openai.chat", "stream": False, "policy": None, "models": ("openai/gpt-4.1-mini",),
                       "project": "p1", "namespace": ""}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=12),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4)), max_leaves=12)
requests = st.fixed_dictionaries(
    {"messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                                 "content": st.text(max_size=40)}), min_size=1, max_size=4)},
    optional={"temperature": st.floats(0, 2, allow_nan=False), "seed": st.integers(0, 2**31),
              "tools": st.lists(st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
                  {"name": st.text(min_size=1, max_size=8), "parameters": values})}), max_size=2),
              "tool_choice": st.sampled_from(["auto", "none", "required"]),
              "response_format": st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"])}),
              "reasoning_effort": st.sampled_from(["low", "medium", "high"]),
              "max_tokens": st.integers(1, 4096), "top_p": st.floats(0, 1, allow_nan=False),
              "extra_body_field": values})


def digest(request: dict[str, Any], **changes: Any) -> str:
    return request_digest(request, **{**CTX, **changes})


def reshaped(value: Any, rng: random.Random) -> Any:
    """The same JSON value spelled differently: keys reordered, integral numbers as floats or back."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: reshaped(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [reshaped(v, rng) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return float(value) if rng.random() < 0.5 else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value) if rng.random() < 0.5 else value
    return value


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, (*path, i))] or [path]
    return [path]


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return 0
    return [*value, 1] if isinstance(value, list) else {**value, "added": 1}


@settings(max_examples=300, deadline=None)
@given(requests, st.randoms(use_true_random=False))
def test_semantically_equal_requests_share_a_key(request: dict[str, Any], rng: random.Random) -> None:
    respelled = reshaped(request, rng)
    # JSON text with other whitespace, parsed again: the same request as another client would send it.
    roundtrip = json.loads(json.dumps(respelled, indent=rng.choice([None, 1, 4]), separators=None))
    assert digest(respelled) == digest(request) == digest(roundtrip)
    labelled = {**request, "user": "someone", "metadata": {"trace": "x"}, "model": "alias", "stream": True}
    assert digest(labelled) == digest(request)  # fields that cannot change the answer are not in the key


@settings(max_examples=300, deadline=None)
@given(requests, st.data())
def test_any_changed_field_misses(request: dict[str, Any], data: st.DataObject) -> None:
    paths = [p for p in leaves(request) if p and p[0] not in IGNORED]
    path = data.draw(st.sampled_from(paths))
    other = copy.deepcopy(request)
    node = other
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = changed(node[path[-1]])
    if canonical(other) == canonical(request):  # e.g. -0.0 + 1 == 1.0 == 1: the same JSON value
        return
    assert digest(other) != digest(request)


def test_the_context_is_in_the_key() -> None:
    request = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    base = digest(request)
    for change in ({"inbound": "anthropic.messages"}, {"stream": True}, {"policy": "cheap"},
                   {"models": ("anthropic/claude-sonnet-4",)}, {"project": "p2"}, {"namespace": "alice"}):
        assert digest(request, **change) != base, change


def test_numbers_canonical() -> None:
    assert canonical({"b": 1.0, "a": [2.0, 0.5, True]}) == {"a": [2, 0.5, True], "b": 1}
    assert list(canonical({"b": 1, "a": 2})) == ["a", "b"]


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
                    | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20))
def test_the_digest_serializes_as_canonical(value: Any) -> None:
    """``integral`` + sorted keys (the digest's fast path) writes exactly what ``canonical`` does."""
    assert orjson.dumps(integral(value), option=orjson.OPT_SORT_KEYS) == orjson.dumps(canonical(value))


def test_integral_copies_only_what_changes() -> None:
    request = {"messages": [{"role": "user", "content": "hi"}], "tools": [{"x": {"minimum": 1.0}}]}
    out = integral(request)
    assert out == {"messages": [{"role": "user", "content": "hi"}], "tools": [{"x": {"minimum": 1}}]}
    assert out["messages"] is request["messages"] and request["tools"][0]["x"]["minimum"] == 1.0
    same = {"a": [1, "b", None, True]}
    assert integral(same) is same
    # Tuples (built in Python, never parsed from JSON) and subclasses: as their plain kind.
    pair = (1, "a", (None, 0.5))
    assert integral(pair) is pair and integral((1.0, "a")) == [1, "a"]
    class Items(list[Any]):
        pass

    for value, plain in ((OrderedDict(b=2.0), {"b": 2}), (Items([3.0]), [3])):
        out = integral(value)
        assert type(out) is type(plain) and orjson.dumps(out) == orjson.dumps(plain)  # 2, not 2.0
    assert integral([True, 2.5, float("inf"), 2.0 ** 53]) == [True, 2.5, float("inf"), 2.0 ** 53]
