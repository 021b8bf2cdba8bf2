"""Offline token counting: packaged encodings, chat framing, images, tools."""

from __future__ import annotations

import base64
import gzip
import hashlib
import inspect
import re
import struct
import zlib
from importlib import resources
from typing import Any

import pytest

from interlock.catalog import count_tokens, estimate_chat_tokens, image_tokens, load_catalog
from interlock.catalog.tokens import (
    ENCODINGS,
    REPLY_PRIMING,
    TOKENS_PER_MESSAGE,
    encoding_name_for,
    get_encoding,
    image_size,
    render_functions,
)
from interlock.core.model import Model


def _model(model_id: str) -> Model:
    model = load_catalog().get(model_id)
    assert model is not None, model_id
    return model


# --------------------------------------------------------------------------- the packaged data is OpenAI's


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_packaged_rank_tables_match_tiktoken_hashes(name: str) -> None:
    """The shipped tables are byte-identical to what tiktoken would download (its pinned SHA-256)."""
    import tiktoken_ext.openai_public as public  # type: ignore[import-untyped]

    source = inspect.getsource(getattr(public, name))
    expected = re.search(r'expected_hash="([0-9a-f]{64})"', source)
    assert expected is not None
    raw = gzip.decompress(
        resources.files("interlock.catalog").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    )
    assert hashlib.sha256(raw).hexdigest() == expected.group(1)


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_patterns_and_specials_match_tiktoken(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken_ext.openai_public as public

    monkeypatch.setattr(public, "load_tiktoken_bpe", lambda *a, **k: {})  # no download: only the constants
    spec = getattr(public, name)()
    assert ENCODINGS[name] == (spec["pat_str"], spec["special_tokens"])


# --------------------------------------------------------------------------- exact counts


def test_known_token_ids() -> None:
    o200k = get_encoding("o200k_base")
    cl100k = get_encoding("cl100k_base")
    assert o200k.encode_ordinary("hello world") == [24912, 2375]
    assert cl100k.encode_ordinary("hello world") == [15339, 1917]
    assert cl100k.encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert o200k.decode(o200k.encode_ordinary("héllo wörld 你好 🤖")) == "héllo wörld 你好 🤖"


def test_count_tokens() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("tiktoken is great!", _model("openai/gpt-4")) == 6
    assert count_tokens("tiktoken is great!", _model("openai/gpt-4o")) == 6
    # special-token text in user content is ordinary text, never an error
    assert count_tokens("<|endoftext|>") > 1
    # non-OpenAI models are approximated with o200k
    assert count_tokens("hello world", _model("anthropic/claude-sonnet-4-5")) == 2


def test_encoding_selection() -> None:
    assert encoding_name_for(None) == "o200k_base"
    assert encoding_name_for(_model("openai/gpt-4")) == "cl100k_base"
    assert encoding_name_for(_model("openai/gpt-3.5-turbo")) == "cl100k_base"
    assert encoding_name_for(_model("openai/gpt-4-turbo")) == "cl100k_base"
    assert encoding_name_for(_model("openai/gpt-4o")) == "o200k_base"
    assert encoding_name_for(_model("openai/gpt-4.1-mini")) == "o200k_base"
    assert encoding_name_for(_model("openai/gpt-5")) == "o200k_base"
    assert encoding_name_for(_model("google/gemini-2.5-pro")) == "o200k_base"
    with pytest.raises(ValueError):
        get_encoding("p50k_base")


# --------------------------------------------------------------------------- chat framing


def test_chat_framing() -> None:
    model = _model("openai/gpt-4o")
    system, user = "You are a helpful assistant.", "Hello, how are you?"
    request = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    expected = (
        REPLY_PRIMING
        + 2 * TOKENS_PER_MESSAGE
        + count_tokens("system")
        + count_tokens(system)
        + count_tokens("user")
        + count_tokens(user)
    )
    assert estimate_chat_tokens(request, model) == expected == 23
    named = {"messages": [{"role": "user", "name": "bob", "content": user}]}
    assert (
        estimate_chat_tokens(named, model)
        == REPLY_PRIMING + TOKENS_PER_MESSAGE + 1 + 1 + count_tokens(user) + 1
    )
    parts = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": system}, {"type": "text", "text": user}]}
        ]
    }
    assert estimate_chat_tokens(parts, model) == REPLY_PRIMING + TOKENS_PER_MESSAGE + 1 + 6 + 6


def test_tool_calls_and_tools_add_tokens() -> None:
    model = _model("openai/gpt-4o")
    base = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the current weather",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "City name"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                        "days": {"type": "array", "items": {"type": "integer"}},
                    },
                    "required": ["city"],
                },
            },
        }
    ]
    rendered = render_functions([tools[0]["function"]])  # type: ignore[list-item]
    assert rendered == (
        "namespace functions {\n\n"
        "// Get the current weather\n"
        "type get_weather = (_: {\n"
        "// City name\n"
        "city: string,\n"
        'unit?: "celsius" | "fahrenheit",\n'
        "days?: number[],\n"
        "}) => any;\n\n"
        "} // namespace functions"
    )
    with_tools = estimate_chat_tokens({**base, "tools": tools}, model)
    assert with_tools == estimate_chat_tokens(base, model) + count_tokens(rendered) + 9
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    with_call = estimate_chat_tokens({"messages": [*base["messages"], call]}, model)
    assert with_call > estimate_chat_tokens(base, model) + count_tokens('{"city":"Paris"}')


def test_response_format_schema_counts() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "schema": {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
            },
        },
    }
    assert estimate_chat_tokens({**base, "response_format": schema}) > estimate_chat_tokens(base) + 10
    assert estimate_chat_tokens({**base, "response_format": {"type": "json_object"}}) == estimate_chat_tokens(
        base
    )


def test_malformed_messages_do_not_crash() -> None:
    assert estimate_chat_tokens({}) == REPLY_PRIMING
    assert estimate_chat_tokens({"messages": ["junk", {"role": "user", "content": [1, {"type": "x"}]}]}) == (
        REPLY_PRIMING + TOKENS_PER_MESSAGE + 1
    )


# --------------------------------------------------------------------------- images


def test_image_tokens_tile_models_match_openai_examples() -> None:
    gpt4o = _model("openai/gpt-4o")
    assert image_tokens(1024, 1024, "high", gpt4o) == 765
    assert image_tokens(2048, 4096, "high", gpt4o) == 1105
    assert image_tokens(4096, 8192, "low", gpt4o) == 85
    assert image_tokens(512, 512, "auto", gpt4o) == 255
    assert image_tokens(1024, 1024, "low", _model("openai/gpt-4o-mini")) == 2833
    assert image_tokens(1024, 1024, "high", _model("openai/o3")) == 75 + 4 * 150


def test_image_tokens_patch_models() -> None:
    mini = _model("openai/gpt-4.1-mini")
    assert image_tokens(1024, 1024, "high", mini) == int(1024 * 1.62)
    # OpenAI's example: 1800x2400 is scaled to 1056x1408 = 33 x 44 = 1452 patches
    assert image_tokens(1800, 2400, "high", mini) == int(1452 * 1.62)
    assert image_tokens(1800, 2400, "high", _model("openai/gpt-4.1-nano")) == int(1452 * 2.46)


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def test_image_size_parsers() -> None:
    assert image_size(_png(640, 480)) == (640, 480)
    assert image_size(_jpeg(1800, 2400)) == (1800, 2400)
    assert image_size(b"GIF89a" + struct.pack("<HH", 20, 10) + b"\x00" * 8) == (20, 10)
    vp8x = (
        b"RIFF"
        + b"\x00" * 4
        + b"WEBPVP8X"
        + b"\x00" * 8
        + (299).to_bytes(3, "little")
        + (199).to_bytes(3, "little")
    )
    assert image_size(vp8x) == (300, 200)
    assert image_size(b"not an image") is None


def _image_request(url: str, detail: str = "high") -> dict[str, Any]:
    return {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": url, "detail": detail}},
                ],
            }
        ]
    }


def test_chat_images_use_data_url_size() -> None:
    model = _model("openai/gpt-4o")
    text_only = estimate_chat_tokens({"messages": [{"role": "user", "content": "What is this?"}]}, model)
    png = "data:image/png;base64," + base64.b64encode(_png(2048, 4096)).decode()
    assert estimate_chat_tokens(_image_request(png), model) == text_only + 1105
    jpeg = "data:image/jpeg;base64," + base64.b64encode(_jpeg(512, 512)).decode()
    assert estimate_chat_tokens(_image_request(jpeg), model) == text_only + 255
    assert estimate_chat_tokens(_image_request(png, "low"), model) == text_only + 85
    # a remote URL cannot be read offline: assume 1024x1024
    assert estimate_chat_tokens(_image_request("https://example.com/cat.png"), model) == text_only + 765


def test_audio_input_estimate() -> None:
    header = b"RIFF" + b"\x00" * 4 + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    wav = header + b"data" + b"\x00" * 4 + b"\x00" * 64_000  # 2 s at 32,000 bytes/s
    part = {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"}}
    request = {"messages": [{"role": "user", "content": [part]}]}
    assert estimate_chat_tokens(request) == REPLY_PRIMING + TOKENS_PER_MESSAGE + 1 + 21


# --------------------------------------------------------------------------- speed


def test_counts_scale_with_the_text() -> None:
    """Speed is measured by ``bench/tokens.py`` (make bench), not asserted here."""
    model = _model("openai/gpt-4.1-mini")
    sentence = "The quick brown fox jumps over the lazy dog while the gateway counts every token. "
    small = {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": sentence * 10}]}
    large = {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": sentence * 600}]}
    small_count = estimate_chat_tokens(small, model)
    large_count = estimate_chat_tokens(large, model)
    assert 150 < small_count < 250
    assert 8_000 < large_count < 12_000
    per_sentence = count_tokens(sentence, model)
    assert large_count - small_count == pytest.approx(590 * per_sentence, abs=600)
