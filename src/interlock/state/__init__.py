"""Shared state's settings and connections: the ``redis:`` section (and, as it moves here, the stores)."""
