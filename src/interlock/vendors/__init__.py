"""Vendors: one folder per vendor type (adapters, usage, typed settings, its ``VENDOR`` declaration),
the registry that assembles them, and what they share (transport, HTTP/1.1 client, errors, translation helpers)."""
