"""Offline token counting for context-window checks and budget reservations.

Counting runs before dispatch on every request, so it has to be exact where it
can be and fast everywhere. Text is tokenised with tiktoken's Rust BPE over
OpenAI's own rank tables, which ship inside this package (``data/*.tiktoken.gz``,
SHA-256 identical to what tiktoken would download): nothing is fetched at run
time. ``o200k_base`` serves GPT-4o and later, ``cl100k_base`` GPT-4/3.5 and the
embedding models.

For OpenAI models, message text counts are exact; the chat framing follows
OpenAI's documented format (3 tokens per message, 1 more for ``name``, 3 to
prime the reply); images follow OpenAI's published tile / patch rules; tool
definitions are rendered the way OpenAI's prompt format presents them to the
model, which is close but not guaranteed exact. For other labs' models the
o200k count is an approximation of their own tokenizers.

The first count loads the rank table, which takes a noticeable time; call
:func:`warm` at start-up to pay that before the first request.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import math
import struct
import threading
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    # Imported here: slow to import: only when a tokenizer is first built.
    import tiktoken

    from interlock.core.model import Model

_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""

#: encoding name -> (split pattern, special tokens). Special tokens are never
#: produced from user text (we encode "ordinary" text, as OpenAI does for content).
ENCODINGS: Mapping[str, tuple[str, dict[str, int]]] = {
    "o200k_base": (_O200K_PATTERN, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
    "cl100k_base": (
        _CL100K_PATTERN,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}

_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5", "text-embedding-", "gpt-35")
_CL100K_EXACT = frozenset({"gpt-4", "gpt-4-turbo", "gpt-4-32k"})

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}

# OpenAI chat framing: <|start|>{role}<|message|>{content}<|end|> = 3 extra tokens
# per message, +1 when a name is present, and 3 to prime the assistant's reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# Tool definitions are rendered into the system prompt inside a namespace block;
# these are the framing tokens around that block.
TOOLS_OVERHEAD = 9
RESPONSE_FORMAT_OVERHEAD = 12
#: Assumed size of an image whose dimensions cannot be read offline (an http URL).
DEFAULT_IMAGE_SIZE = (1024, 1024)


def encoding_name_for(model: Model | None) -> str:
    """The tiktoken encoding OpenAI uses for ``model``; o200k for everything else."""
    if model is None or model.lab != "openai":
        return "o200k_base"
    name = model.id.split("/", 1)[1]
    if name in _CL100K_EXACT or name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


def get_encoding(name: str = "o200k_base") -> tiktoken.Encoding:
    """The packaged encoding ``name``, built once per process (thread-safe)."""
    enc = _loaded.get(name)
    if enc is not None:
        return enc
    with _lock:
        enc = _loaded.get(name)
        if enc is None:
            enc = _build(name)
            _loaded[name] = enc
    return enc


def _build(name: str) -> tiktoken.Encoding:
    # Imported here: slow to import: only when a tokenizer is first built.
    import tiktoken

    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; packaged: {sorted(ENCODINGS)}")
    pattern, specials = ENCODINGS[name]
    raw = gzip.decompress(
        resources.files("interlock.catalog").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    )
    parts = raw.split()
    ranks = dict(zip(map(binascii.a2b_base64, parts[0::2]), map(int, parts[1::2]), strict=True))
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)


def warm(names: Sequence[str] = ("o200k_base",)) -> None:
    """Load encodings now (start-up) instead of on the first request."""
    for name in names:
        get_encoding(name)


def count_tokens(text: str, model: Model | None = None) -> int:
    """Tokens in ``text`` for ``model`` (exact for OpenAI models, approximate otherwise)."""
    if not text:
        return 0
    return len(get_encoding(encoding_name_for(model)).encode_ordinary(text))


# --------------------------------------------------------------------------- images


def image_tokens(width: int, height: int, detail: str = "auto", model: Model | None = None) -> int:
    """Input tokens OpenAI bills for one image of ``width`` x ``height`` pixels.

    Two published schemes: most models tile the image (fit in 2048x2048, shortest
    side down to 768, then ``base + per_tile * tiles`` of 512px; ``detail=low``
    is ``base`` alone); the small GPT-4.1 / GPT-5 / o4-mini models count 32px
    patches (at most 1536) times a per-model multiplier.
    """
    name = model.id.split("/", 1)[1] if model is not None and model.lab == "openai" else "gpt-4o"
    for prefix, multiplier in _PATCH_MODELS:
        if name.startswith(prefix):
            return _patch_tokens(width, height, multiplier)
    base, per_tile = _TILE_MODELS[0][1]
    for prefix, costs in _TILE_MODELS:
        if name.startswith(prefix):
            base, per_tile = costs
            break
    if detail == "low":
        return base
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return base + per_tile * tiles


# Longest prefixes first: "gpt-4o-mini" must not match "gpt-4o".
_PATCH_MODELS: tuple[tuple[str, float], ...] = (
    ("gpt-4.1-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("gpt-5-mini", 1.62),
    ("gpt-5-nano", 2.46),
    ("o4-mini", 1.72),
)
_TILE_MODELS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("gpt-4o-mini", (2833, 5667)),
    ("gpt-4o", (85, 170)),
    ("gpt-4.1", (85, 170)),
    ("gpt-4.5", (85, 170)),
    ("gpt-5", (70, 140)),
    ("o1", (75, 150)),
    ("o3", (75, 150)),
    ("computer-use", (65, 129)),
)


def _patch_tokens(width: int, height: int, multiplier: float) -> int:
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches > 1536:
        shrink = math.sqrt(32 * 32 * 1536 / (width * height))
        w, h = width * shrink, height * shrink
        # Shrink a little more so whole patches fit along the width.
        w_patches = w / 32
        shrink2 = math.floor(w_patches) / w_patches if w_patches > 0 else 1.0
        w, h = w * shrink2, h * shrink2
        patches = min(math.ceil(w / 32) * math.ceil(h / 32), 1536)
    return int(patches * multiplier)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, JPEG or WebP header; None if unrecognised."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return int(w & 0x3FFF), int(h & 0x3FFF)
        if chunk == b"VP8L":
            b = data[21:25]
            w = 1 + (((b[1] & 0x3F) << 8) | b[0])
            h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
            return w, h
        if chunk == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return w, h
        return None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def _data_url_image_size(url: str) -> tuple[int, int] | None:
    head, sep, payload = url.partition(",")
    if not sep or ";base64" not in head:
        return None
    # Headers sit at the start; decode a prefix first (JPEG may need more).
    for limit in (64, 65_536, len(payload)):
        chunk = payload[: limit - limit % 4] if limit < len(payload) else payload
        try:
            size = image_size(base64.b64decode(chunk, validate=False))
        except (binascii.Error, ValueError):
            return None
        if size is not None or limit >= len(payload):
            return size
    return None


# --------------------------------------------------------------------------- chat requests


def estimate_chat_tokens(request: Any, model: Model | None = None) -> int:
    """Prompt tokens of an OpenAI chat-completions request (before any caching).

    Counts message text and names with the chat framing, content parts (text,
    images by detail and size, audio by duration where readable), assistant
    tool calls, tool definitions and a ``json_schema`` response format.

    It runs on requests the codecs validated, but also on whatever a caller or
    a translation produced, so it never raises on any JSON value: what it cannot
    read counts as nothing.
    """
    enc = get_encoding(encoding_name_for(model))

    def n(text: str) -> int:
        return len(enc.encode_ordinary(text)) if text else 0

    total = REPLY_PRIMING
    if not isinstance(request, Mapping):
        return total
    has_system = False
    for message in _items(request.get("messages")):
        if not isinstance(message, Mapping):
            continue
        role = _text(message.get("role"))
        has_system = has_system or role in ("system", "developer")
        total += TOKENS_PER_MESSAGE + n(role)
        name = message.get("name")
        if isinstance(name, str) and name:
            total += TOKENS_PER_NAME + n(name)
        total += _content_tokens(message.get("content"), n, model)
        for call in _items(message.get("tool_calls")):
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                total += 3 + n(_text(fn.get("name"))) + n(_text(fn.get("arguments")))
        legacy_call = message.get("function_call")
        if isinstance(legacy_call, Mapping):
            total += 3 + n(_text(legacy_call.get("name"))) + n(_text(legacy_call.get("arguments")))
    functions = _function_defs(request)
    if functions:
        total += n(render_functions(functions)) + TOOLS_OVERHEAD - (4 if has_system else 0)
    fmt = request.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        spec = spec if isinstance(spec, Mapping) else {}
        try:
            schema = orjson.dumps(spec.get("schema", {})).decode()
        except orjson.JSONEncodeError:  # nested past what orjson writes: count it by its repr
            schema = repr(spec.get("schema"))
        total += n(schema) + n(_text(spec.get("name")))
        total += RESPONSE_FORMAT_OVERHEAD
    return total


def _items(value: Any) -> Sequence[Any]:
    """A JSON array as a sequence, anything else as nothing (a string is not a list of messages)."""
    return value if isinstance(value, list | tuple) else ()


def _text(value: Any) -> str:
    """A string field as text: the string itself, a number or boolean as JSON writes it, anything else empty."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int | float) else ""


def _content_tokens(content: Any, n: Any, model: Model | None) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return int(n(content))
    total = 0
    for part in _items(content):
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text" or kind == "refusal":
            total += n(_text(part.get(kind)))
        elif kind == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, Mapping) else spec
            url = url if isinstance(url, str) else ""
            detail = spec.get("detail") if isinstance(spec, Mapping) else None
            size = _data_url_image_size(url) if url.startswith("data:") else None
            w, h = size or DEFAULT_IMAGE_SIZE
            total += image_tokens(w, h, detail if isinstance(detail, str) and detail else "auto", model)
        elif kind == "input_audio":
            spec = part.get("input_audio")
            if isinstance(spec, Mapping):
                total += _audio_tokens(spec)
    return total


def _audio_tokens(spec: Mapping[str, Any]) -> int:
    """Rough: OpenAI audio input runs at ~10 tokens per second of audio."""
    data = spec.get("data")
    if not isinstance(data, str) or not data:
        return 0
    raw_len = len(data) * 3 // 4
    seconds: float
    if spec.get("format") == "wav":
        try:
            head = base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4), validate=False)
        except (binascii.Error, ValueError):  # not base64 after all: no header to read
            head = b""
        if len(head) >= 32 and head[:4] == b"RIFF":
            (byte_rate,) = struct.unpack("<I", head[28:32])
            seconds = raw_len / byte_rate if byte_rate else 0.0
        else:
            seconds = raw_len / 48_000
    else:
        seconds = raw_len / 16_000  # ~128 kbit/s compressed audio
    return math.ceil(seconds * 10)


def _function_defs(request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    defs: list[Mapping[str, Any]] = []
    for tool in _items(request.get("tools")):
        if isinstance(tool, Mapping) and tool.get("type", "function") == "function":
            fn = tool.get("function")
            if isinstance(fn, Mapping):
                defs.append(fn)
    for fn in _items(request.get("functions")):
        if isinstance(fn, Mapping):
            defs.append(fn)
    return defs


#: Schema levels rendered; deeper levels are shown as ``any`` (the validated limit is lower, this is a backstop).
_MAX_RENDER_DEPTH = 64


def render_functions(functions: Sequence[Mapping[str, Any]]) -> str:
    """Tool definitions in the TypeScript-like namespace form the model is shown."""
    lines = ["namespace functions {", ""]
    for fn in functions:
        description = fn.get("description")
        if description:
            lines.append(f"// {_text(description)}")
        params = fn.get("parameters")
        props = params.get("properties") if isinstance(params, Mapping) else None
        name = _text(fn.get("name"))
        if props and isinstance(props, Mapping) and isinstance(params, Mapping):
            lines.append(f"type {name} = (_: {{")
            lines.append(_render_object(params, 0))
            lines.append("}) => any;")
        else:
            lines.append(f"type {name} = () => any;")
        lines.append("")
    lines.append("} // namespace functions")
    return "\n".join(lines)


def _render_object(schema: Mapping[str, Any], indent: int, depth: int = 0) -> str:
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return ""
    required = {r for r in _items(schema.get("required")) if isinstance(r, str)}
    pad = "  " * indent
    lines = []
    for key, prop in props.items():
        if not isinstance(prop, Mapping):
            continue
        if prop.get("description"):
            lines.append(f"{pad}// {_text(prop['description'])}")
        optional = "" if key in required else "?"
        lines.append(f"{pad}{key}{optional}: {_render_type(prop, indent, depth + 1)},")
    return "\n".join(lines)


def _render_type(prop: Mapping[str, Any], indent: int, depth: int = 0) -> str:
    if depth > _MAX_RENDER_DEPTH:
        return "any"
    if "enum" in prop:
        values = _items(prop["enum"])
        return " | ".join(_literal(v) for v in values) if values else "any"
    kind = prop.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if isinstance(k, str)]
        return " | ".join(_render_type({**prop, "type": k}, indent, depth + 1) for k in kinds) if kinds else "any"
    if kind == "array":
        items = prop.get("items")
        return f"{_render_type(items, indent, depth + 1)}[]" if isinstance(items, Mapping) else "any[]"
    if kind == "object":
        if isinstance(prop.get("properties"), Mapping) and prop["properties"]:
            inner = _render_object(prop, indent + 1, depth + 1)
            return "{\n" + inner + "\n" + "  " * indent + "}"
        return "object"
    if kind in ("integer", "number"):
        return "number"
    if kind in ("string", "boolean", "null"):
        return str(kind)
    for combo in ("anyOf", "oneOf"):
        options = prop.get(combo)
        if isinstance(options, list):
            return " | ".join(_render_type(p, indent, depth + 1) for p in options if isinstance(p, Mapping))
    return "any"


def _literal(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits, or nesting past orjson's limit
        return repr(value)


# --- request-size bounds: cheap figures for routing and budgets before (or instead of) counting ---


def text_upper_bound(request: Mapping[str, Any]) -> int | None:
    """An upper bound on the prompt's tokens, or None when only the real count will do.

    A BPE token is at least one byte, so for plain-text messages the UTF-8 length
    (plus framing) bounds the count. It costs a fraction of tokenising, and when
    it already fits every candidate's window the exact count is not needed.
    """
    if request.get("tools") or request.get("functions") or request.get("response_format"):
        return None
    total = 8
    for message in request.get("messages") or ():
        if not isinstance(message, dict) or "tool_calls" in message or "function_call" in message:
            return None
        total += 8 + len(str(message.get("role", ""))) + len(str(message.get("name") or ""))
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text":
                    return None
                total += len(str(part.get("text") or "").encode())
        elif content is not None:
            return None
    return total


def requested_output(request: Mapping[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = request.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0
