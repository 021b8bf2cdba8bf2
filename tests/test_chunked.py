"""The chunked-coding decoder the server (request bodies) and the vendor client (answers) share."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.wire.chunked import MAX_LINE, ChunkedDecoder, ChunkedError


def encode(pieces: list[bytes], extension: bool, trailers: bool) -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), b";x=1" if extension else b"", p) for p in pieces if p)
    return out + b"0\r\n" + (b"X-Trailer: 1\r\n" if trailers else b"") + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.binary(min_size=1, max_size=40), max_size=6), extension=st.booleans(),
       trailers=st.booleans(), cuts=st.lists(st.integers(0, 400), max_size=5), after=st.binary(max_size=20))
def test_any_split_gives_the_body_and_what_follows_it(pieces: list[bytes], extension: bool, trailers: bool,
                                                      cuts: list[int], after: bytes) -> None:
    wire = encode(pieces, extension, trailers) + after
    decoder = ChunkedDecoder()
    body, rest, start = b"", b"", 0
    for cut in [*sorted(c % (len(wire) + 1) for c in cuts), len(wire)]:
        if decoder.done:
            rest += wire[start:cut]
        else:
            got, tail = decoder.feed(wire[start:cut])
            body += b"".join(got)
            rest += tail
        start = cut
    assert decoder.done and body == b"".join(pieces) and rest == after


@pytest.mark.parametrize("wire", [b"+5\r\nhello\r\n", b"-1\r\n", b"1_0\r\n", b"zz\r\n", b"\r\n",
                                  b"2\r\nhiXX", b"5" * (MAX_LINE + 1)])
def test_what_a_lenient_parser_would_take_is_refused(wire: bytes) -> None:
    with pytest.raises(ChunkedError):
        ChunkedDecoder().feed(wire)
