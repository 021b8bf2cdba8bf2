"""The import target Granian loads in each worker process: ``interlock.server.entry:app``."""

from __future__ import annotations

from interlock.app import Gateway, gateway_from_env

app: Gateway = gateway_from_env()
