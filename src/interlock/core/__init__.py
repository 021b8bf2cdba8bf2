"""interlock's core layer: what every other layer may use, importing nothing of interlock's own."""
