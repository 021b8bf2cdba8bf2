"""AWS event-stream framing as Bedrock sends it, for the tests' mock vendor and the benchmarks.

The gateway only decodes this framing (``interlock.vendors.bedrock.eventstream``); encoding it is a
test and benchmark need, so it lives here rather than in the runtime package.
"""

from __future__ import annotations

import struct
import zlib

_PRELUDE = struct.Struct(">II")


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message with string headers, as Bedrock sends it."""
    head = b"".join(
        bytes([len(k.encode())]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items())
    total = 12 + len(head) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", zlib.crc32(body))
