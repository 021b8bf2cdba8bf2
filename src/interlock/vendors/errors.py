"""Vendor HTTP errors → what the caller sees, shared by every adapter.

A vendor refusing *our* credential is a 502 (never the caller's 401); a 429
keeps its ``retry-after``; other 4xx keep the vendor's message, type and param.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from interlock.core.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from interlock.vendors.transport import UpstreamResponse


def error_from_status(vendor: str, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
    """Map a vendor's HTTP error to what the caller should see."""
    message, vtype, param, code = _vendor_error_fields(body)
    detail = message or body[:300].decode("utf-8", "replace").strip() or f"HTTP {status}"
    if status == 429:
        out_headers = {}
        retry = headers.get("retry-after")
        if retry:
            out_headers["retry-after"] = retry
        return RateLimited(f"{vendor} is rate limiting requests: {detail}", code=code or "rate_limit_exceeded",
                           headers=out_headers)
    if status in (401, 403):
        return UpstreamError(f"{vendor} refused interlock's credential (HTTP {status}): {detail}. "
                             "Check the vendor key configured for the gateway.", code="upstream_auth_error")
    if status == 408 or status == 504:
        return UpstreamTimeout(f"{vendor} timed out (HTTP {status}): {detail}")
    if 400 <= status < 500:
        err = UpstreamRejected(f"{vendor} rejected the request: {detail}", status=status, param=param,
                               code=code or "upstream_rejected")
        if vtype:
            err.type = vtype
        return err
    return UpstreamError(f"{vendor} failed (HTTP {status}): {detail}", code="upstream_error")


def _vendor_error_fields(body: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, None, None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, str):
        return err, None, None, None
    if not isinstance(err, dict):
        msg = data.get("message") or data.get("detail") if isinstance(data, dict) else None
        return (str(msg) if msg else None), None, None, None
    code = err.get("code")
    param = err.get("param")
    return (
        str(err.get("message")) if err.get("message") is not None else None,
        err.get("type") if isinstance(err.get("type"), str) else None,
        param if isinstance(param, str) else None,
        str(code) if code is not None else None,
    )


async def check_stream_response(vendor: str, resp: UpstreamResponse, ctype_needed: str = "text/event-stream") -> None:
    """Raise the mapped error for an HTTP error, or for a 200 that is not the expected stream."""
    if resp.status >= 400:
        raw = await resp.read()
        raise error_from_status(vendor, resp.status, resp.headers, raw)
    ctype = resp.headers.get("content-type", "")
    if ctype_needed not in ctype:
        raw = await resp.read()
        raise UpstreamError(f"{vendor} answered a streaming request with '{ctype or 'no content type'}' instead of "
                            f"{ctype_needed}: {raw[:200].decode('utf-8', 'replace')}", code="upstream_invalid_response")
