"""Every vendor that speaks OpenAI Chat Completions: one adapter, one line of data per vendor."""
