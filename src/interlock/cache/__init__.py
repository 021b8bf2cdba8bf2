"""Caching: the exact response cache and prompt-cache helpers."""
