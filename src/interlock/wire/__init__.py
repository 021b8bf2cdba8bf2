"""The API formats interlock speaks to clients: OpenAI Chat Completions, Anthropic Messages, OpenAI Responses."""
