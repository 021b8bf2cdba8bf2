"""The cache key: a digest of a canonical form of everything that can change the answer.

Canonical means that JSON key order, number spelling (``1``, ``1.0``, ``1e0``) and the JSON's whitespace do
not matter, while every value does: messages, tools, tool_choice, response_format, sampling parameters,
seed, reasoning settings and any vendor extra the request carries all go in, since a field the key left out
would let one request be answered with another's answer. Left out are only fields that cannot change what
the model writes (:data:`IGNORED`). Beside the request: the inbound API, whether it streams, the resolved
policy and models, the project (unless shared) and the caller's namespace.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from typing import Any

import orjson

#: Request fields that only label, route or account for a request: leaving them out lets identical prompts
#: from different end users, traces or tags share an answer (``x-interlock-cache-namespace`` separates them).
IGNORED = frozenset({"model", "stream", "user", "metadata", "store", "service_tier", "prompt_cache_key",
                     "safety_identifier"})


def canonical(value: Any) -> Any:
    """``value`` with mappings sorted by key and integral floats as integers (``1.0`` and ``1`` are one key)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer() and math.isfinite(value) and abs(value) < 2 ** 53:
        return int(value)
    return value


_LEAVES = (str, int, bool, type(None))


def integral(value: Any) -> Any:
    """``value`` with integral floats as integers; ``value`` itself (nothing copied) when it has none, which is
    the common case. Key order is left to ``orjson.OPT_SORT_KEYS``: together they serialize as
    :func:`canonical` does, without rebuilding every mapping of the request."""
    kind = type(value)
    if kind is dict:
        return _integral_dict(value)
    if kind is list:
        return _integral_list(value)
    if kind is float:
        return _integral_float(value)
    if kind is tuple:
        items = list(value)
        out = _integral_list(items)
        return value if out is items else out
    if kind not in _LEAVES and isinstance(value, Mapping | list | tuple):
        return integral(dict(value) if isinstance(value, Mapping) else list(value))  # subclasses: as plain
    return value


# The dict and list walks are typed functions of their own, and leaves are told apart by identity, so that the
# compiled build (mypyc) iterates them natively: as one function over `Any`, a request's walk cost ~12,000
# instructions there.
def _integral_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] | None = None
    for k, v in value.items():
        kind = type(v)
        if kind is str or kind is int or kind is bool or v is None:
            continue
        new = integral(v)
        if new is not v:
            if out is None:
                out = dict(value)
            out[k] = new
    return value if out is None else out


def _integral_list(value: list[Any]) -> list[Any]:
    items: list[Any] | None = None
    for i, v in enumerate(value):
        kind = type(v)
        if kind is str or kind is int or kind is bool or v is None:
            continue
        new = integral(v)
        if new is not v:
            if items is None:
                items = list(value)
            items[i] = new
    return value if items is None else items


def _integral_float(value: Any) -> Any:
    """Typed `Any`, not `float`: the compiled build would unbox a float and box a new one on return, and the
    callers tell a change by identity."""
    if value.is_integer() and math.isfinite(value) and abs(value) < 2 ** 53:
        return int(value)
    return value


def request_digest(request: Mapping[str, Any], *, inbound: str, stream: bool, policy: str | None,
                   models: tuple[str, ...], project: str, namespace: str) -> str:
    """Hex digest (32 characters) of the canonical request and its context."""
    body = {k: v for k, v in request.items() if k not in IGNORED}
    head = {"api": inbound, "stream": stream, "policy": policy, "models": list(models), "project": project,
            "namespace": namespace}
    blob = orjson.dumps([head, integral(body)], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


@functools.lru_cache(maxsize=4096)  # projects, namespaces and models repeat on every request
def short(text: str) -> str:
    """A fixed-width 8-character tag of a project, namespace or model, for Redis key patterns."""
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
