"""The native server's refusals: llhttp's errors mapped to a status and a fixed reason, and the limits.

The reason is the error's ``code`` and the ``reason`` label of
``interlock_http_refusals_total``: a small fixed set, whatever llhttp's message.
"""

from __future__ import annotations

import httptools

#: The largest request head (request line + headers) accepted, and the most header fields.
MAX_HEAD = 64 * 1024
MAX_HEADERS = 128


class ClientGone(ConnectionResetError):
    """Raised by a response stream's ``send_bytes`` once the client has closed the connection."""


class BodyTimeout(TimeoutError):
    """Raised to a reader of the request body when the client stopped sending it."""


# The exceptions live here, not in rsgi.py or h1.py: those are compiled (make fast), and a compiled module
# cannot define a subclass of a built-in exception.
class ProtocolError(Exception):
    """A request this server refuses before the app sees it: ``status``, a fixed ``reason`` slug, a message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        #: The request's path when its head was parsed: the error is rendered in that API's format.
        self.path: str | None = None


#: llhttp's error reasons (substrings) → the refusal's reason label; anything else is "malformed".
_LLHTTP_REASONS = (
    ("Content-Length can't be present with Transfer-Encoding", "content_length_with_transfer_encoding",
     "A request may not carry both Content-Length and Transfer-Encoding."),
    ("Transfer-Encoding can't be present with Content-Length", "content_length_with_transfer_encoding",
     "A request may not carry both Content-Length and Transfer-Encoding."),
    ("Duplicate Content-Length", "duplicate_content_length",
     "Conflicting Content-Length headers: a request carries at most one."),
    ("Content-Length", "invalid_content_length", "Invalid Content-Length: expected decimal digits only."),
    ("Transfer-Encoding", "invalid_transfer_encoding",
     "Invalid Transfer-Encoding: a request body's last coding must be chunked, applied once."),
    ("chunk", "invalid_chunked_body", "Malformed chunked body"),
    ("Unexpected whitespace after header value", "obs_fold",
     "Obsolete line folding (a header line starting with whitespace) is not accepted."),
    ("Unexpected space after start line", "obs_fold",
     "Obsolete line folding (a header line starting with whitespace) is not accepted."),
    ("header", "invalid_header", "Malformed header field"),
    ("Invalid HTTP version", "unsupported_http_version", "Unsupported HTTP version: speak HTTP/1.1 to this gateway."),
)


def refusal(exc: httptools.HttpParserError) -> ProtocolError:
    """The answer to a request llhttp refused to parse."""
    text = str(exc)
    if isinstance(exc, httptools.HttpParserInvalidMethodError | httptools.HttpParserInvalidURLError):
        return ProtocolError(400, "invalid_request_line", f"Malformed request line: {text}.")
    lower = text.lower()
    for needle, reason, message in _LLHTTP_REASONS:
        if needle.lower() in lower:
            status = 505 if reason == "unsupported_http_version" else 400
            return ProtocolError(status, reason, f"{message} ({text}).")
    if "version" in lower or "http/" in lower or "url" in lower or "method" in lower:
        return ProtocolError(400, "invalid_request_line", f"Malformed request line: {text}.")
    return ProtocolError(400, "malformed", f"Malformed request: {text}.")


def head_too_large() -> ProtocolError:
    return ProtocolError(431, "head_too_large",
                         f"The request head is larger than this gateway accepts ({MAX_HEAD} bytes).")


def body_too_large(limit: int) -> ProtocolError:
    return ProtocolError(413, "request_too_large",
                         f"The request body is larger than this gateway accepts ({limit} bytes; "
                         "see server.max_body_bytes).")
