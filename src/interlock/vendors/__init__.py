"""Vendor adapters, their specs and settings, and the transports that carry their requests."""
