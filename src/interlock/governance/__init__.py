"""Projects, keys, budgets and rate limits: who may run a request, and what it may spend."""
