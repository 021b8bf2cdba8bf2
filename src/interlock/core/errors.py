"""Errors a caller can see.

Every failure that reaches a client is a :class:`GatewayError`: it carries the
HTTP status, the OpenAI error ``type``, the offending ``param`` and a ``code``.
Inbound codecs render it in the caller's API format (OpenAI's
``{"error": {...}}`` or Anthropic's ``{"type": "error", "error": {...}}``), so
nothing a client sends can produce a traceback or a bare 500.
"""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    """A failure with everything needed to render it for the caller."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None
    #: The id of the request that failed, when whoever renders the error knows it (Anthropic bodies carry it).
    request_id: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers) if headers else {}

    def to_openai(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InternalError(GatewayError):
    """A bug: an exception nothing turned into an answer (500). The message names its class, never its text."""

    code = "internal_error"


class InvalidRequest(GatewayError):
    """The request is malformed: bad JSON, a wrong type, a missing field (400)."""

    status = 400
    type = "invalid_request_error"


class ContentBlocked(InvalidRequest):
    """A guardrail refused the request before any vendor saw it (400); the message names the detector."""

    code = "content_blocked"


class GuardrailUnavailable(GatewayError):
    """A guardrail detector could not run and its ``fail_mode`` is closed (503)."""

    status = 503
    code = "guardrail_unavailable"


class AuthenticationFailed(GatewayError):
    """No key, or a key interlock does not know (401)."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    """A valid key that may not do this (403)."""

    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(GatewayError):
    """An unknown route or resource (404)."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    """The model is neither a catalog model, a vendor model nor an alias (404)."""

    code = "model_not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RequestTimeout(GatewayError):
    """The client stopped sending its request body (408)."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class BudgetExceeded(GatewayError):
    """A hard budget cannot cover the request's worst-case cost (402); headers carry limit and remaining."""

    status = 402
    type = "budget_exceeded"
    code = "budget_exceeded"


class RateLimited(GatewayError):
    """Too many requests, from a vendor or from interlock's own limits (429)."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class NoRouteAvailable(GatewayError):
    """The model exists but no live vendor can serve it here (503)."""

    status = 503
    type = "api_error"
    code = "no_route_available"


class UpstreamError(GatewayError):
    """The vendor failed: a 5xx, a broken connection or an unreadable answer (502)."""

    status = 502
    type = "api_error"
    code = "upstream_error"


class UpstreamTimeout(GatewayError):
    """The vendor did not answer in time (504)."""

    status = 504
    type = "api_error"
    code = "upstream_timeout"


class UpstreamRejected(GatewayError):
    """The vendor refused the request as a client error (4xx): passed on as-is."""

    type = "invalid_request_error"
    code = "upstream_rejected"


#: Anthropic's error ``type`` by HTTP status: the members of ``ErrorType`` in the TypeScript SDK
#: (src/resources/shared.ts). It has no ``request_too_large``, so a 413 is an ``invalid_request_error``.
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    found = _ANTHROPIC_ERROR_TYPES.get(status)
    if found is not None:
        return found
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error_body(error_type: str, message: str, request_id: str | None) -> dict[str, object]:
    """Anthropic's ``ErrorResponse`` (``request_id`` is always present, null when unknown): the one builder
    of the gateway's Anthropic errors, bodies and stream ``error`` events, and of the simulator's."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
