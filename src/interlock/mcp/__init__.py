"""The MCP gateway: tool packs served to registered users."""
