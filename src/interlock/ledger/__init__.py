"""The request log, its stores and writer, and stored Responses."""
