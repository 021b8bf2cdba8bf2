"""The worst case a request can cost, computed before it is sent, so hard budgets never overshoot.

A hard budget admits a request only if *everything it could possibly cost*
still fits, so the estimate must be an upper bound, not a guess:

* input tokens: for plain-text chat, the UTF-8 byte length plus framing (a BPE
  token is at least one byte, whatever the vendor's tokenizer); otherwise the
  byte length of the serialised messages and tools plus a generous allowance
  per image given by URL;
* output tokens: the request's ``max_completion_tokens`` / ``max_tokens``, else
  the route's (or model's) maximum output, else what is left of the context
  window, else :data:`DEFAULT_MAX_OUTPUT`;
* rates: the most expensive rate any token could be billed at on that route
  (cache writes can cost more than input; reasoning or audio more than text
  output), in the long-context tier the input bound falls in;
* targets: the most expensive of every target dispatch may fail over to.

Everything is integer pico-USD, rounded *up* to the nano-USD the counters
use. Per-route rates are computed once per target and cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from interlock.catalog.tokens import requested_output, text_upper_bound
from interlock.core.plan import Target
from interlock.core.pricing import Price

DEFAULT_MAX_OUTPUT = 32_768
#: Tokens allowed for one image given by URL (its size is unknown before the vendor fetches it).
IMAGE_URL_TOKENS = 6_000
_Rates = tuple[int, int, int, tuple[tuple[int, int, int], ...]]


def _max(*values: int | None) -> int:
    return max((v for v in values if v is not None), default=0)


def rates(price: Price | None) -> _Rates:
    """(input rate, output rate, per-request fee in pico-USD, tiers as (above, input, output)); worst cases."""
    if price is None:
        return 0, 0, 0, ()
    base_in = _max(price.input, price.cache_read, price.cache_write, price.input_audio)
    base_out = _max(price.output, price.reasoning, price.output_audio)
    tiers = []
    for tier in sorted(price.tiers, key=lambda t: t.above):
        t = price.for_prompt(tier.above + 1)
        tiers.append((tier.above, _max(t.input, t.cache_read, t.cache_write, t.input_audio),
                      _max(t.output, t.reasoning, t.output_audio)))
    return base_in, base_out, (price.request or 0) * 1000, tuple(tiers)


def _embedding_input_bound(value: Any) -> int:
    """Embeddings ``input``: a BPE token is at least one byte, and token ids count one each."""
    if isinstance(value, str):
        return 8 + len(value.encode())
    if isinstance(value, list):
        return sum(1 if isinstance(item, int) else _embedding_input_bound(item) for item in value)
    return 8


def input_bound(request: Mapping[str, Any]) -> int:
    """An upper bound on the prompt's tokens (see the module docstring)."""
    if "messages" not in request and "input" in request:
        return _embedding_input_bound(request["input"])
    bound = text_upper_bound(request)
    if bound is not None:
        return bound
    parts = [request.get(k) for k in ("messages", "tools", "functions", "response_format", "tool_choice")]
    raw = orjson.dumps([p for p in parts if p is not None], default=str)
    return 64 + len(raw) + raw.count(b'"image_url"') * IMAGE_URL_TOKENS


class Estimator:
    def __init__(self) -> None:
        self._rates: dict[str, _Rates] = {}

    def _target_rates(self, target: Target) -> _Rates:
        r = self._rates.get(target.key)
        if r is None:
            if len(self._rates) > 4096:
                self._rates.clear()
            r = self._rates[target.key] = rates(target.price)
        return r

    @staticmethod
    def output_bound(request: Mapping[str, Any], target: Target, prompt: int) -> int:
        wanted = requested_output(request)
        if wanted:
            return wanted
        route, model = target.route, target.model
        most = (route.max_output if route is not None else None) or (model.max_output if model is not None else None)
        if most:
            return most
        window = target.context_window
        if window and window > prompt:
            return window - prompt
        return DEFAULT_MAX_OUTPUT

    def worst(self, request: Mapping[str, Any], targets: Sequence[Target]) -> tuple[int, int]:
        """(tokens, nano-USD): the most any of ``targets`` could consume / charge for this request."""
        prompt = input_bound(request)
        tokens = 0
        pico = 0
        for target in targets:
            out = self.output_bound(request, target, prompt)
            tokens = max(tokens, prompt + out)
            rate_in, rate_out, fee, tiers = self._target_rates(target)
            for above, t_in, t_out in tiers:
                if prompt > above:
                    rate_in, rate_out = max(rate_in, t_in), max(rate_out, t_out)
            pico = max(pico, prompt * rate_in + out * rate_out + fee)
        return tokens, -(-pico // 1000)
