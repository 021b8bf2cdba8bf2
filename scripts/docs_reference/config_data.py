"""The config page's data: the configs the loader is run over, and what the loader cannot tell.

The keys themselves, their types and defaults come from running the loader (``config.py``); these tables
add what it cannot know: example values, a type for keys read as raw data, and defaults that are another
setting. ``tests/test_docs_reference.py`` fails on an entry for a key the loader no longer reads.
"""

from __future__ import annotations

from typing import Any

#: A config that uses every section and every nested kind of entry, so the loader reads all of their keys.
RICH_CONFIG = """
vendors:
  openai: {api_key: sk-example, timeouts: {total: 60}, headers: {x-example: "1"}}
  azure: {api_key: az-example, base_url: "https://example.openai.azure.com/openai", api_version: "2024-10-21",
          deployments: {gpt-4.1-mini: mini}}
  local: {type: openai, base_url: "http://127.0.0.1:9/v1", name: Local}
  anthropic: {api_key: sk-ant-example, anthropic_version: "2023-06-01"}
  bedrock: {region: us-east-1, aws_access_key_id: AKIAEXAMPLE, aws_secret_access_key: example,
            aws_session_token: example}
aliases:
  fast: openai/gpt-4.1-mini
simulator:
  enabled: true
policies:
  cheap-first:
    description: an example policy
    targets: [{model: openai/gpt-4.1-mini, weight: 2}, openai/gpt-4.1]
    strategy: priority
    balance: {cost: 1, latency: 1, quality: 1}
    quality: {weights: {mmlu: 1}, scores: {openai/gpt-4.1-mini: {mmlu: 0.8}}}
    expected_output_tokens: 200
    retry: {attempts: 2}
    timeout_s: 30
    filters: {zdr: false, vendors: [openai], exclude_vendors: [azure], capabilities: [tools],
              max_price: {input: 10, output: 30}}
redis:
  url: redis://127.0.0.1:6379/0
cache:
  enabled: true
  semantic: {enabled: true, threshold: 0.95, max_entries: 100}
  policies: {cheap-first: {ttl_s: 60, semantic: {enabled: false}}}
  projects: {acme: {enabled: false, semantic: {threshold: 0.98}}}
guardrails:
  patterns: [{name: TICKET_ID, regex: "T-[0-9]{6}", context: [ticket], context_window: 40}]
routing:
  prefix_affinity: {vendor_ttl_s: {openai: 60}}
mcp:
  servers: {search: {url: "https://mcp.example.com/mcp"}}
  tool_packs: {research: {project: acme, tools: ["search/*"]}}
"""

#: Configs the loader refuses after it read their keys (the spaCy pipeline is the operator's to install): the keys
#: read up to the refusal are recorded, the rest come from the section's accepted keys (``Section.only``).
PARTIAL_CONFIGS = (
    "vendors:\n  vertex: {project: example, location: us-east5, credentials_file: /nonexistent.json}\n",
    "vendors:\n  bedrock: {profile: example}\n",
    "guardrails:\n  ner: {model: en_core_web_sm, entities: [PERSON], score_threshold: 0.5, language: en}\n",
)


#: The type of keys read as raw data (``Section.raw``), where the loader checks the value itself.
RAW_TYPES = {
    "cache.semantic": "mapping",
    "catalog": "mapping",
    "guardrails.ner": "mapping",
    "guardrails.ner.entities": "list of strings",
    "guardrails.ner.score_threshold": "number",
    "guardrails.ner.language": "string",
    "guardrails.patterns": "list of mappings",
    "guardrails.projects": "mapping",
    "guardrails.pii.action": "string",
    "guardrails.secrets.action": "string",
    "guardrails.prompt_injection.action": "string",
    "guardrails.prompt_injection.classifier": "string",
    "logging.level": "string",
    "logging.retention_days": "number",
    "mcp.allowed_server_urls": "list of strings",
    "mcp.stateless": "boolean or auto",
    "mcp.servers.<name>": "mapping",
    "mcp.tool_packs.<name>": "mapping",
    "policies.<name>.targets": "list",
    "server.trusted_proxies": "list of strings",
    "policies.<name>.description": "string",
    "policies.<name>.filters.vendors": "list of strings",
    "policies.<name>.filters.exclude_vendors": "list of strings",
    "policies.<name>.filters.capabilities": "list of strings",
    "policies.<name>.quality.scores.<name>": "mapping",
    "guardrails.patterns[].context": "list of strings",
}

#: Defaults that are another setting, not a value (shown as text).
DEFAULT_TEXT = {
    "vendors.<name>.name": "the vendor id",
    "vendors.<name>.timeouts.connect": "`server.timeouts.connect`",
    "vendors.<name>.timeouts.first_byte": "`server.timeouts.first_byte`",
    "vendors.<name>.timeouts.idle": "`server.timeouts.idle`",
    "vendors.<name>.timeouts.total": "`server.timeouts.total`",
    "vendors.<name>.base_url": "the built-in vendor's URL",
    "vendors.<name>.api_key": "the vendor's usual environment variable (`OPENAI_API_KEY`, ...)",
    "server.state_dir": "`$INTERLOCK_HOME`, else `.interlock`",
    "simulator.enabled": "`true` without a config file, else `false`",
    "policies.<name>.expected_output_tokens": "the request's max tokens (at most 1,000), else 500",
    "policies.<name>.filters.max_price.input": "no limit",
    "policies.<name>.filters.max_price.output": "no limit",
    "guardrails.prompt_injection.classifier": "`on`",
}
#: A policy's or a project's cache entry: a key it leaves out is the floor's (for a project, its policy's first).
DEFAULT_TEXT.update({f"cache.{kind}.<name>.{key}": ("the policy's, else " if kind == "projects" else "")
                     + f"`cache.{key}`" for kind in ("policies", "projects")
                     for key in ("allow_request_opt_in", "allow_temperature", "enabled", "hit_cost_fraction", "ttl_s",
                                 "semantic.enabled", "semantic.threshold")})

#: Example values for keys without a default.
EXAMPLES: dict[str, Any] = {
    "store": "postgresql://interlock@127.0.0.1:5432/interlock",
    "redis.url": "redis://127.0.0.1:6379/0",
    "server.state_dir": "/var/lib/interlock",
    "server.trusted_proxies": ["127.0.0.1", "10.0.0.0/8"],
    "governance.alert_webhook": "https://hooks.example.com/interlock",
    "telemetry.otlp_endpoint": "http://127.0.0.1:4318",
    "telemetry.headers": {"authorization": "Bearer ${OTLP_TOKEN}"},
    "vendors.<name>": {"api_key": "${OPENAI_API_KEY}"},
    "vendors.<name>.type": "openai",
    "vendors.<name>.base_url": "http://127.0.0.1:8000/v1",
    "vendors.<name>.api_key": "${MY_VENDOR_KEY}",
    "vendors.<name>.name": "My vLLM",
    "vendors.<name>.headers": {"x-team": "search"},
    "vendors.<name>.api_version": "2024-10-21",
    "vendors.<name>.anthropic_version": "2023-06-01",
    "vendors.<name>.aws_access_key_id": "${AWS_ACCESS_KEY_ID}",
    "vendors.<name>.aws_secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
    "vendors.<name>.aws_session_token": "${AWS_SESSION_TOKEN}",
    "vendors.<name>.profile": "bedrock-prod",
    "vendors.<name>.region": "us-east-1",
    "vendors.<name>.project": "my-gcp-project",
    "vendors.<name>.location": "us-east5",
    "vendors.<name>.credentials_file": "/etc/interlock/vertex-sa.json",
    "vendors.<name>.deployments.<name>": "mini-deployment",
    "vendors.<name>.headers.<name>": "search",
    "cache.projects.<name>.semantic": {"enabled": False},
    "vendors.<name>.deployments": {"gpt-4.1-mini": "mini-deployment"},
    "aliases.<name>": "openai/gpt-4.1-mini",
    "policies.<name>.targets": ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4"],
    "policies.<name>.description": "cheap first, then the big one",
    "policies.<name>.expected_output_tokens": 400,
    "policies.<name>.filters.vendors": ["openai", "azure"],
    "policies.<name>.filters.exclude_vendors": ["openrouter"],
    "policies.<name>.filters.capabilities": ["tools"],
    "policies.<name>.filters.max_price.input": 5,
    "policies.<name>.filters.max_price.output": 15,
    "policies.<name>.quality.weights.<name>": 1,
    "policies.<name>.quality.scores.<name>": {"mmlu": 0.8},
    "policies.<name>.quality.scores.<name>.<name>": 0.8,
    "policies.<name>.targets[].model": "openai/gpt-4.1-mini",
    "guardrails.patterns": [{"name": "TICKET_ID", "regex": "T-[0-9]{6}"}],
    "guardrails.patterns[].name": "TICKET_ID",
    "guardrails.patterns[].regex": "T-[0-9]{6}",
    "guardrails.patterns[].validator": "luhn",
    "guardrails.patterns[].context": ["ticket", "case"],
    "guardrails.patterns[].context_window": 40,
    "guardrails.ner.model": "en_core_web_lg",
    "guardrails.projects": {"acme": {"pii": {"action": "block"}}},
    "guardrails.pii.action": "redact",
    "guardrails.secrets.action": "block",
    "guardrails.prompt_injection.action": "monitor",
    "guardrails.prompt_injection.classifier": "off",
    "logging.level": "metadata",
    "logging.retention_days": 30,
    "catalog": {"models": {"openai/gpt-4.1-mini": {"routes": {"openai": {"price": {"input": 0.3}}}}}},
    "cache.semantic": {"enabled": True, "threshold": 0.95},
    "mcp.servers.<name>": {"url": "https://mcp.example.com/mcp"},
    "mcp.tool_packs.<name>": {"project": "acme", "tools": ["search/*"]},
    "mcp.allowed_server_urls": ["https://mcp.example.com/"],
    "routing.prefix_affinity.vendor_ttl_s.<name>": 60,
    "simulator.seed": 7,
    "simulator.faults": {"openai/gpt-4.1-mini": "error=503;rate=0.1"},
    "simulator.latency": {"openai/*": {"ttft_p50": 0.3, "ttft_p95": 0.9, "tps_p50": 40, "tps_p95": 80}},
}


#: The name an example uses for a ``<name>`` after this section (the names RICH_CONFIG uses).
NAMES = {
    ("aliases",): "fast",
    ("policies",): "cheap-first",
    ("quality", "weights"): "mmlu",
    ("quality", "scores"): "openai/gpt-4.1-mini",
    ("cache", "policies"): "cheap-first",
    ("cache", "projects"): "acme",
    ("mcp", "servers"): "search",
    ("mcp", "tool_packs"): "research",
    ("prefix_affinity", "vendor_ttl_s"): "openai",
    ("deployments",): "gpt-4.1-mini",  # the vendor's model id (the route's), not the catalog's
    ("headers",): "x-team",
}
#: The built-in vendor an example of a vendor type's own key names.
VENDOR_OF_TYPE = {"openai": "azure", "anthropic": "anthropic", "bedrock": "bedrock", "vertex": "vertex"}
