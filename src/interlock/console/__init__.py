"""The web console: server-rendered HTML pages over the catalog and the live stats.

This increment serves the public catalog: ``/models`` (every model, filtered and
sorted by query string) and ``/models/{lab}/{model}`` (one model: prices per vendor,
live figures, capabilities, benchmarks, code samples), plus the static files under
``/static/``. ``Gateway._routes()`` adds them unless ``console.enabled`` is false.
Templates are Jinja2 with autoescaping; pages load nothing from other hosts (see
:mod:`interlock.console.web`).
"""

from __future__ import annotations

from interlock.console.settings import ConsoleSettings
from interlock.console.setup import Console

__all__ = ["Console", "ConsoleSettings"]
