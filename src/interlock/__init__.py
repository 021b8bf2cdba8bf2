"""interlock: one OpenAI- and Anthropic-compatible endpoint in front of every model vendor."""

__version__ = "0.1.0"
