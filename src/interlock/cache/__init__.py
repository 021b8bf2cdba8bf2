"""The response cache: exact answers by a canonical key (memory or Redis), and prompt-cache helpers."""
