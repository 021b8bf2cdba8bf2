"""HTTP/1.1 chunked transfer coding (RFC 9112 7.1): one incremental decoder for both directions.

The native server (``server/h1.py``) decodes request bodies with it and the
vendor client (``vendors/http1.py``) response bodies. Bytes arrive in
arbitrary slices; ``feed`` returns the chunk data they complete - in the
common case a whole chunk per size line, sliced straight out of the read - and
keeps only a partial size line. Chunk extensions and trailer lines are read
and dropped. A size must be plain hex (no sign, no ``_``: what ``int`` would
also accept is refused, as a request smuggled past a lenient parser would use it).
"""

from __future__ import annotations

#: The longest size or trailer line kept while waiting for its end.
MAX_LINE = 8192

_SIZE = -1  # expecting a chunk-size line
_CRLF = -2  # expecting the CRLF after a chunk's data
_TRAILER = -3  # after the last chunk: trailer lines up to an empty one


class ChunkedError(ValueError):
    """The body is not valid chunked coding."""


def chunk_size(line: bytes) -> int:
    """The size on a chunk-size line (hex, optionally followed by ``;extensions``)."""
    text = line.split(b";", 1)[0].strip(b" \t") if b";" in line else line
    if not text or text[0] in b"+-_" or b"_" in text:
        raise ChunkedError(f"bad chunk size {text[:20]!r}")
    try:
        return int(text, 16)
    except ValueError:
        raise ChunkedError(f"bad chunk size {text[:20]!r}") from None


class ChunkedDecoder:
    """Decodes one chunked body; ``done`` once the last chunk and its trailers are in."""

    __slots__ = ("_left", "_pending", "done")

    def __init__(self) -> None:
        self._pending = b""
        #: Bytes of chunk data still to come (> 0), or one of _SIZE, _CRLF, _TRAILER.
        self._left = _SIZE
        self.done = False

    def feed(self, data: bytes) -> tuple[list[bytes], bytes]:
        """The chunk data ``data`` completes, and what follows the body's end (b"" until ``done``)."""
        buf = self._pending + data if self._pending else data
        pos = 0
        n = len(buf)
        out: list[bytes] = []
        left = self._left
        while pos < n:
            if left == _SIZE:  # the common case takes the whole chunk in the same step
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                size = chunk_size(buf[pos:end])
                pos = end + 2
                if size == 0:
                    left = _TRAILER
                elif pos + size + 2 <= n and buf[pos + size:pos + size + 2] == b"\r\n":
                    out.append(buf[pos:pos + size])
                    pos += size + 2
                else:
                    left = size
            elif left > 0:
                take = min(left, n - pos)
                out.append(buf[pos:pos + take])
                pos += take
                left -= take
                if left == 0:
                    left = _CRLF
            elif left == _CRLF:
                if n - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise ChunkedError("missing CRLF after chunk data")
                pos += 2
                left = _SIZE
            else:  # _TRAILER
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                if end == pos:
                    self._left = left
                    self._pending = b""
                    self.done = True
                    return out, buf[pos + 2:]
                pos = end + 2
        self._left = left
        self._pending = buf[pos:]
        if len(self._pending) > MAX_LINE:
            raise ChunkedError("chunk size or trailer line too long")
        return out, b""
