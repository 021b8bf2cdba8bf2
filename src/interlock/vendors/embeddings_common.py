"""What every embeddings adapter shares: the input shapes, vector encodings and batched fan-out.

The canonical embeddings request is the OpenAI ``/v1/embeddings`` body as the
caller sent it (validated by ``api/embeddings.py``). ``input`` may be a string,
strings, token ids or token-id arrays. OpenAI-compatible vendors get it as is;
native vendors only embed text, so token ids are decoded back to text with
``cl100k_base`` - the encoding of every OpenAI embedding model, and the one
clients such as LangChain tokenize with before sending ids.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from interlock.catalog.tokens import get_encoding
from interlock.core.errors import InvalidRequest, UpstreamError
from interlock.core.model import Model
from interlock.core.vendor import Vector

T = TypeVar("T")

#: OpenAI's documented limit on the number of inputs in one request.
MAX_INPUTS = 2048
#: The encoding token-id inputs are decoded with for vendors that only take text.
TOKEN_ENCODING = "cl100k_base"

Inputs = list[str] | list[list[int]]


def is_embedding_model(model: Model) -> bool:
    """Is this catalog model an embedding model?

    The catalog (models.dev) has no embedding flag; every embedding model it
    lists carries "embed" in its id or family (text-embedding-3-small,
    gemini-embedding-001, cohere-embed-v3-english, mistral-embed).
    """
    return "embed" in model.id.lower() or "embed" in (model.family or "").lower()


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def input_problem(value: Any) -> tuple[str, str] | None:
    """``(param, message)`` when ``input`` is not a shape OpenAI accepts, else None.

    Shared by the gateway (a 400 naming the parameter) and the simulator (the
    vendor's own 400), so both reject exactly the same bodies.
    """
    if value is None:
        return "input", "Missing required parameter: 'input'."
    if isinstance(value, str):
        return ("input", "'input' cannot be an empty string.") if not value else None
    if not isinstance(value, list):
        return "input", ("'input' must be a string, an array of strings, an array of token ids or an array of "
                         f"token-id arrays, got {type(value).__name__}.")
    if not value:
        return "input", "'input' cannot be an empty array."
    if len(value) > MAX_INPUTS:
        return "input", f"'input' has {len(value)} items; at most {MAX_INPUTS} inputs are allowed per request."
    first = value[0]
    if isinstance(first, str):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                return f"input[{i}]", f"'input[{i}]' must be a string like the other inputs."
            if not item:
                return f"input[{i}]", f"'input[{i}]' cannot be an empty string."
        return None
    if _is_token(first):
        bad = next((i for i, item in enumerate(value) if not _is_token(item)), None)
        return (f"input[{bad}]", f"'input[{bad}]' must be a token id (a non-negative integer).") \
            if bad is not None else None
    if isinstance(first, list):
        for i, item in enumerate(value):
            if not isinstance(item, list) or not item:
                return f"input[{i}]", f"'input[{i}]' must be a non-empty array of token ids."
            bad = next((j for j, token in enumerate(item) if not _is_token(token)), None)
            if bad is not None:
                return f"input[{i}][{bad}]", f"'input[{i}][{bad}]' must be a token id (a non-negative integer)."
        return None
    return "input[0]", "'input[0]' must be a string, a token id or an array of token ids."


def inputs_of(request: Mapping[str, Any]) -> Inputs:
    """``input`` as a list with one item per embedding (a validated request)."""
    value = request["input"]
    if isinstance(value, str):
        return [value]
    if value and _is_token(value[0]):
        return [list(value)]
    return list(value)


def texts_of(request: Mapping[str, Any]) -> list[str]:
    """The inputs as text, for vendors that take nothing else (token ids decoded, see module docstring)."""
    inputs = inputs_of(request)
    if not inputs or isinstance(inputs[0], str):
        return [str(item) for item in inputs]
    encoding = get_encoding(TOKEN_ENCODING)
    limit = encoding.n_vocab
    texts: list[str] = []
    for i, tokens in enumerate(inputs):
        assert isinstance(tokens, list)
        if any(token >= limit for token in tokens):
            raise InvalidRequest(f"'input[{i}]' holds a token id outside {TOKEN_ENCODING} (ids must be below "
                                 f"{limit}); this vendor embeds text, so token ids are decoded first.",
                                 param="input")
        texts.append(encoding.decode(tokens))
    return texts


def option(request: Mapping[str, Any], *names: str) -> str | None:
    """A vendor-specific string option passed as an extra body field (``task_type``, ``input_type``)."""
    for name in names:
        value = request.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise InvalidRequest(f"'{name}' must be a non-empty string.", param=name)
        return value
    return None


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


async def bounded_gather(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run ``calls`` at most ``limit`` at a time, results in order; the first failure cancels the rest.

    Vendors that embed one input per request (Titan) or cap a batch (Cohere: 96)
    are fanned out; the bound keeps one large request from tripping the
    account's own rate limit.
    """
    if len(calls) == 1:
        return [await calls[0]()]
    gate = asyncio.Semaphore(limit)

    async def run(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    tasks = [asyncio.ensure_future(run(call)) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        # Collect the siblings' outcomes so none is reported as "never retrieved".
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def float_vector(vector: Vector) -> list[float]:
    """Floats of a vector that may be OpenAI's base64 (little-endian float32)."""
    if isinstance(vector, list):
        return vector
    try:
        raw = base64.b64decode(vector, validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamError("the vendor sent an embedding that is neither floats nor base64",
                            code="upstream_invalid_response") from None
    if len(raw) % 4:
        raise UpstreamError("the vendor sent a base64 embedding that is not a float32 array",
                            code="upstream_invalid_response")
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def base64_vector(vector: Vector) -> str:
    """OpenAI's ``encoding_format: base64``: the float32 values, little-endian, base64-encoded."""
    if isinstance(vector, str):
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def check_vectors(vectors: Any, expected: int, vendor: str) -> list[Vector]:
    """The vendor's vectors, checked for count and type (a short answer must not be billed as whole)."""
    if not isinstance(vectors, list) or len(vectors) != expected:
        got = len(vectors) if isinstance(vectors, list) else "no"
        raise UpstreamError(f"{vendor} returned {got} embeddings for {expected} inputs",
                            code="upstream_invalid_response")
    for vector in vectors:
        if isinstance(vector, str):
            continue
        if not isinstance(vector, list) or not all(isinstance(x, int | float) for x in vector[:4]):
            raise UpstreamError(f"{vendor} sent an embedding that is not an array of numbers",
                                code="upstream_invalid_response")
    return vectors


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def sum_tokens(counts: Sequence[int | None]) -> int | None:
    """The total of per-call counts, or None when any call reported none (then the gateway counts)."""
    total = 0
    for count in counts:
        if count is None:
            return None
        total += count
    return total
