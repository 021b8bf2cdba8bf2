"""Mock native vendors on real sockets, and golden wire fixtures written from the vendors' documentation."""
