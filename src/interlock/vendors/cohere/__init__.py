"""Cohere: the v2 chat API and embeddings."""
