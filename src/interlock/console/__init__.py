"""The web console: server-rendered HTML pages over the catalog and the live stats, sign-in and the playground.

The catalog: ``/models`` (every model, filtered and sorted by query string),
``/models/{lab}/{model}`` and ``/compare``, plus the static files under ``/static/``.
Signed in (``/console/signin``, a server-side session): ``/console/playground`` and
its endpoints under ``/console/api/``. ``Gateway._routes()`` adds them unless
``console.enabled`` is false. Templates are Jinja2 with autoescaping; pages load
nothing from other hosts (see :mod:`interlock.console.web`).
"""

from __future__ import annotations

from interlock.console.settings import ConsoleSettings
from interlock.console.setup import Console

__all__ = ["Console", "ConsoleSettings"]
