"""Simulated token log probabilities in OpenAI's ``ChatCompletionTokenLogprob`` shape.

The answer's text is tokenized with the model's tiktoken encoding, so there is
one entry per generated token, each with its UTF-8 ``bytes``. Probabilities
are drawn per position from an RNG seeded by the request and the position:
the same request gives the same figures, streamed or not. At each position
the ``top`` most likely tokens are listed in descending order; the chosen
token is usually the most likely one and sometimes the second, and the listed
probabilities never sum above 1 (every ``logprob`` is ≤ 0).

Entries are grouped by the stream piece that completes each token, so a
streamed chunk carries the tokens its text finishes and the whole answer
carries them all.
"""

from __future__ import annotations

import math
import random
from typing import Any

from interlock.catalog.tokens import encoding_name_for, get_encoding
from interlock.core.model import Model

#: Token ids alternatives are drawn from: past the byte tokens, within the common vocabulary.
_ALT_IDS = (256, 20000)
SECOND_CHOICE_PROBABILITY = 0.1


def _entry(token: bytes, logprob: float) -> dict[str, Any]:
    return {"token": token.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(token)}


def _position(rng: random.Random, chosen: bytes, top: int, alternative: Any) -> dict[str, Any]:
    """One token's entry: its logprob and the ``top`` most likely tokens at its position."""
    count = max(top, 1)
    probs = [rng.uniform(0.5, 0.99)]
    remaining = 1.0 - probs[0]
    for _ in range(count - 1):
        share = remaining * rng.uniform(0.3, 0.7)
        probs.append(share)
        remaining -= share
    probs.sort(reverse=True)
    rank = 1 if count > 1 and rng.random() < SECOND_CHOICE_PROBABILITY else 0
    tokens: list[bytes] = []
    for i in range(count):
        if i == rank:
            tokens.append(chosen)
            continue
        token = alternative(rng)
        while token == chosen or token in tokens:
            token = alternative(rng)
        tokens.append(token)
    listed = [_entry(t, math.log(p)) for t, p in zip(tokens, probs, strict=True)]
    entry = dict(listed[rank])
    entry["top_logprobs"] = listed if top > 0 else []
    return entry


def piece_logprobs(model: Model, pieces: list[str], top: int, seed: int) -> list[list[dict[str, Any]]]:
    """Per stream piece, the entries of the tokens that piece completes (tokens of the joined text)."""
    encoding = get_encoding(encoding_name_for(model))
    text = "".join(pieces)
    ends: list[int] = []  # byte offset where each piece ends
    offset = 0
    for piece in pieces:
        offset += len(piece.encode())
        ends.append(offset)
    out: list[list[dict[str, Any]]] = [[] for _ in pieces]

    def alternative(rng: random.Random) -> bytes:
        return encoding.decode_single_token_bytes(rng.randrange(*_ALT_IDS))

    offset = 0
    slot = 0
    for position, token_id in enumerate(encoding.encode(text, disallowed_special=())):
        token = encoding.decode_single_token_bytes(token_id)
        offset += len(token)
        while slot < len(ends) - 1 and ends[slot] < offset:
            slot += 1
        rng = random.Random(seed * 1_000_003 + position)
        out[slot].append(_position(rng, token, top, alternative))
    return out
