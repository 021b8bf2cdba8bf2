"""The import target Granian loads in each worker process: ``interlock.entry:app``."""

from __future__ import annotations

from granian.rsgi import ProtocolClosed  # type: ignore[attr-defined]

from interlock.app import Gateway, gateway_from_env
from interlock.core import exchange
from interlock.server.http import Request

# What Granian raises when the client has gone: handlers catch it as they catch the native server's ClientGone.
exchange.add_client_gone(ProtocolClosed)

app: Gateway = gateway_from_env()
# Granian has no limit on the gap between two pieces of a request body: the app enforces server.body_timeout.
Request.body_timeout = app.settings.server.body_timeout
# And hyper is laxer than llhttp on a few framing shapes: the app refuses or closes after them (Request docs).
Request.check_framing = True
