"""Server log lines under zero data retention: an exception's text is withheld, its frames are kept.

No log line of interlock quotes a request body, but an unexpected exception's
message may quote a value taken from one (``invalid literal for int() with base
10: '<prompt text>'``) and a traceback prints it. While a request under ZDR is
handled - :func:`mark`, called by ``pipeline.core.identify`` in the request's
task - a record logged with an exception shows the traceback's frames and the
exception's class, but not its message nor the exceptions chained to it. With
``logging.zero_data_retention`` (:func:`install` is told) that holds for every
record.
"""

from __future__ import annotations

import logging
import traceback
from contextvars import ContextVar

_ZDR: ContextVar[bool] = ContextVar("interlock_zero_data_retention", default=False)
_everywhere = False
#: The loggers that log a request's exceptions from inside its task (``app.py``, ``server/runner.py``).
LOGGERS = ("interlock", "interlock.server")
WITHHELD = "(message withheld: zero data retention)"


def mark(zero_data_retention: bool) -> None:
    """Say whether the request now handled in this task is under zero data retention."""
    _ZDR.set(zero_data_retention)


class WithholdExceptionText(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (_everywhere or _ZDR.get()):
            frames = "".join(traceback.format_tb(exc.__traceback__))
            record.exc_text = (f"Traceback (most recent call last):\n{frames}"
                               f"{type(exc).__module__}.{type(exc).__qualname__}: {WITHHELD}")
        return True


_FILTER = WithholdExceptionText()


def install(everywhere: bool = False) -> None:
    """Attach the filter to interlock's request loggers (idempotent); ``everywhere``: global ZDR."""
    global _everywhere
    _everywhere = everywhere
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
