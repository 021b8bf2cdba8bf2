"""Under zero data retention a logged traceback keeps its frames and loses the exception's text."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest

from interlock.observability import zdr_log

MARKER = "zdrmark0123456789abcdef"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("interlock")
    logger.addHandler(handler)
    zdr_log.install()
    yield out
    logger.removeHandler(handler)


def fail(value: str) -> None:
    try:
        int(value)
    except ValueError as exc:
        raise KeyError(f"while reading {value}") from exc


async def handle(zdr: bool) -> None:
    """A request's task: identify() marks it, then a bug's traceback is logged as app.py logs it."""
    zdr_log.mark(zdr)
    try:
        fail(f"prompt {MARKER}")
    except KeyError:
        logging.getLogger("interlock").exception("internal error on POST /v1/chat/completions")


def test_a_zdr_requests_traceback_withholds_the_exception_text(captured: io.StringIO) -> None:
    asyncio.run(handle(True))
    text = captured.getvalue()
    assert MARKER not in text
    assert "internal error on POST" in text and "in fail" in text and zdr_log.WITHHELD in text
    assert "builtins.KeyError" in text


def test_other_requests_keep_the_full_traceback(captured: io.StringIO) -> None:
    async def two_requests() -> None:
        await asyncio.create_task(handle(True))  # a ZDR request in its own task does not mark the next one
        await asyncio.create_task(handle(False))

    asyncio.run(two_requests())
    zdr_text, plain_text = captured.getvalue().split("internal error on POST")[1:]
    assert MARKER not in zdr_text and MARKER in plain_text and "ValueError" in plain_text


def test_global_zero_data_retention_withholds_every_exception_text(captured: io.StringIO) -> None:
    zdr_log.install(everywhere=True)
    try:
        asyncio.run(handle(False))  # even a task no request marked (count_tokens before auth, say)
    finally:
        zdr_log.install()
    assert MARKER not in captured.getvalue() and zdr_log.WITHHELD in captured.getvalue()
