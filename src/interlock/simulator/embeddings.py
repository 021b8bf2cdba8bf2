"""OpenAI ``/v1/embeddings`` as the simulator answers it: deterministic unit vectors, real token counts.

So that embeddings work offline (the embedded default), every input gets a
vector seeded by its own text: the same text always maps to the same vector,
different texts to nearly orthogonal ones, which is enough for tests of
search plumbing and caches. Components are Gaussian draws normalised to unit
length (a uniformly random direction), rounded to float32 like a real
vendor's, so the ``float`` and ``base64`` answers carry identical values.
``dimensions`` keeps the first components and re-normalises, which is how
OpenAI's text-embedding-3 models shorten vectors - a shortened vector is the
prefix of the full one. Usage is counted with the catalog's tokenizer, as the
gateway prices it.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from interlock.core.model import Model
from interlock.simulator.catalog_view import count_text
from interlock.simulator.request import BadRequest, canonical
from interlock.vendors.embeddings_common import base64_vector, input_problem, inputs_of, is_embedding_model

PATH = "/v1/embeddings"
DEFAULT_DIMENSIONS = 1024
#: Documented native sizes, by the model id's tail. models.dev records an embedding
#: model's size as its output limit, but not reliably (gemini-embedding-001: 1), so these win.
NATIVE_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "gemini-embedding-001": 3072,
    "mistral-embed": 1024,
    "cohere-embed-v3-english": 1024,
    "cohere-embed-v3-multilingual": 1024,
    "cohere-embed-v-4-0": 1536,
    "titan-embed-text-v2": 1024,
}


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    model: str
    inputs: list[str] | list[list[int]]
    dimensions: int | None
    base64: bool


def native_dimensions(model: Model) -> int:
    tail = model.id.rsplit("/", 1)[-1]
    known = NATIVE_DIMENSIONS.get(tail)
    if known is not None:
        return known
    output = model.max_output or 0
    return output if 64 <= output <= 8192 else DEFAULT_DIMENSIONS


def parse(body: bytes) -> EmbedRequest:
    """Validate the body the way OpenAI does; a :class:`BadRequest` is the vendor's 400."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(data, dict):
        raise BadRequest("Invalid request body: expected a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    problem = input_problem(data.get("input"))
    if problem is not None:
        raise BadRequest(problem[1], problem[0])
    fmt = data.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise BadRequest(f"Invalid value for 'encoding_format': {fmt!r}. Supported values are: 'float' and "
                         "'base64'.", "encoding_format")
    dimensions = data.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)
                                   or dimensions < 1):
        raise BadRequest("Invalid 'dimensions': expected an integer of at least 1.", "dimensions")
    return EmbedRequest(model, inputs_of(data), dimensions, fmt == "base64")


def check_model(req: EmbedRequest, model: Model) -> tuple[str, str] | None:
    """``(param, message)`` when the model cannot answer this request (a chat model, too many dimensions)."""
    if not is_embedding_model(model):
        return "model", f"The model '{req.model}' does not support embeddings."
    native = native_dimensions(model)
    if req.dimensions is not None and req.dimensions > native:
        return "dimensions", (f"This model supports at most {native} dimensions; 'dimensions' was "
                              f"{req.dimensions}.")
    return None


def unit_vector(item: str | list[int], dimensions: int) -> list[float]:
    """The deterministic vector of one input, float32-rounded.

    The draws come from one stream seeded by the input, so the first ``d``
    draws are the same whatever the length: a shortened vector is a prefix.
    """
    seed_bytes = item.encode() if isinstance(item, str) else b"tokens:" + canonical(item)
    rng = random.Random(int.from_bytes(hashlib.blake2b(seed_bytes, digest_size=8).digest(), "big"))
    draws = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in draws)) or 1.0
    values = [x / norm for x in draws]
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *values)))


def render(req: EmbedRequest, model: Model) -> bytes:
    """The ``list`` of ``embedding`` objects with usage, as OpenAI sends it."""
    dimensions = req.dimensions or native_dimensions(model)
    data: list[dict[str, Any]] = []
    tokens = 0
    items: Sequence[str | list[int]] = req.inputs
    for index, item in enumerate(items):
        vector = unit_vector(item, dimensions)
        data.append({"object": "embedding", "index": index,
                     "embedding": base64_vector(vector) if req.base64 else vector})
        tokens += count_text(item, model) if isinstance(item, str) else len(item)
    return orjson.dumps({"object": "list", "data": data, "model": model.id,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
