"""The ``application/vnd.amazon.eventstream`` binary framing (Bedrock ConverseStream), decoded incrementally.

A message is: a 12-byte prelude (total length, headers length, both
big-endian uint32, then the prelude's CRC32), the headers, the payload, and a
CRC32 of everything before it. Both CRCs are checked (``zlib.crc32``, the
same CRC-32 AWS uses): a corrupted frame is an upstream error, never silently
mis-parsed JSON. Header values are typed; Bedrock sends strings
(``:event-type``, ``:message-type``, ``:content-type``, ``:exception-type``),
but every type of the spec is decoded so an unexpected one cannot derail the
stream. Reference: https://docs.aws.amazon.com/transcribe/latest/dg/streaming-format.html
(the same encoding across AWS services).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from interlock.core.errors import UpstreamError

_PRELUDE = struct.Struct(">II")
_PRELUDE3 = struct.Struct(">III")
_MAX_MESSAGE = 16 * 1024 * 1024

HeaderValue = bool | int | bytes | str


@dataclass(slots=True)
class Message:
    headers: dict[str, HeaderValue]
    payload: bytes


def _headers(data: bytes) -> dict[str, HeaderValue]:
    out: dict[str, HeaderValue] = {}
    i = 0
    n = len(data)
    while i < n:
        name_len = data[i]
        name = data[i + 1:i + 1 + name_len].decode("utf-8")
        i += 1 + name_len
        kind = data[i]
        i += 1
        value: HeaderValue
        if kind in (0, 1):
            value = kind == 0
        elif kind == 2:
            value = struct.unpack_from(">b", data, i)[0]
            i += 1
        elif kind == 3:
            value = struct.unpack_from(">h", data, i)[0]
            i += 2
        elif kind == 4:
            value = struct.unpack_from(">i", data, i)[0]
            i += 4
        elif kind in (5, 8):  # int64, timestamp (ms since epoch)
            value = struct.unpack_from(">q", data, i)[0]
            i += 8
        elif kind in (6, 7):  # bytes, string
            length = struct.unpack_from(">H", data, i)[0]
            raw = data[i + 2:i + 2 + length]
            value = raw.decode("utf-8") if kind == 7 else raw
            i += 2 + length
        elif kind == 9:  # uuid
            value = data[i:i + 16]
            i += 16
        else:
            raise UpstreamError(f"event stream header {name!r} has unknown type {kind}", code="upstream_invalid_response")
        out[name] = value
    return out


class EventStreamDecoder:
    """Bytes in arbitrary slices → whole, CRC-checked messages."""

    __slots__ = ("_buf", "_seen")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._seen: dict[bytes, dict[str, HeaderValue]] = {}

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        out: list[Message] = []
        pos = 0
        size = len(buf)
        crc32 = zlib.crc32
        while size - pos >= 12:
            total, header_len, prelude_crc = _PRELUDE3.unpack_from(buf, pos)
            if crc32(buf[pos:pos + 8]) != prelude_crc:
                raise UpstreamError("event stream prelude CRC mismatch", code="upstream_invalid_response")
            if total < 16 or total > _MAX_MESSAGE or header_len > total - 16:
                raise UpstreamError(f"event stream message length {total} is invalid", code="upstream_invalid_response")
            if size - pos < total:
                break
            frame = bytes(buf[pos:pos + total])
            pos += total
            if crc32(frame[:-4]) != int.from_bytes(frame[-4:], "big"):
                raise UpstreamError("event stream message CRC mismatch", code="upstream_invalid_response")
            raw_headers = frame[12:12 + header_len]
            headers = self._seen.get(raw_headers)
            if headers is None:
                # Every delta of a stream carries the same header bytes: parse each distinct set once.
                headers = _headers(raw_headers)
                if len(self._seen) < 64:
                    self._seen[raw_headers] = headers
            out.append(Message(headers, frame[12 + header_len:-4]))
        if pos:
            # One compaction per network read, not one per message.
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)
