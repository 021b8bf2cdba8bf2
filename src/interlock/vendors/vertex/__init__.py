"""Vertex AI: Gemini and Claude on Google Cloud, with service-account credentials."""
