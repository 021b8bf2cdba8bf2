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
  local: {type: openai, base_url: "http://127.0.0.1:9/v1", name: Local, regions: [fra-dc-1]}
  azure-eu: {like: azure, api_key: az-example, base_url: "https://example-eu.openai.azure.com/openai",
             regions: [swedencentral]}
  anthropic: {api_key: sk-ant-example, anthropic_version: "2023-06-01"}
  bedrock: {region: us-east-1, aws_access_key_id: AKIAEXAMPLE, aws_secret_access_key: example,
            aws_session_token: example}
aliases:
  fast: openai/gpt-4.1-mini
regions:
  jurisdictions: {eu: [fra-dc-1]}
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
  smart:
    strategy: difficulty
    tiers: {weak: [{model: openai/gpt-4.1-mini, weight: 2}, openai/gpt-4.1-nano],
            strong: [{model: openai/gpt-4.1, weight: 1}]}
    tier_strategy: cost
    difficulty: {strong_share: 0.3, fallback_across_tiers: true}
  smart-fixed:
    strategy: difficulty
    tiers: {weak: [openai/gpt-4.1-nano], strong: [{model: openai/gpt-4.1, weight: 1}]}
    difficulty: {threshold: 0.55}
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
    "policies.<name>.tiers.weak": "list",
    "policies.<name>.tiers.strong": "list",
    "policies.<name>.description": "string",
    "policies.<name>.filters.vendors": "list of strings",
    "policies.<name>.filters.exclude_vendors": "list of strings",
    "policies.<name>.filters.capabilities": "list of strings",
    "policies.<name>.quality.scores.<name>": "mapping",
    "guardrails.patterns[].context": "list of strings",
    "server.trusted_proxies": "list of strings",
    "vendors.<name>.regions": "list of strings",
    "regions.jurisdictions.<name>": "list of strings",
}

#: Defaults that are another setting, not a value (shown as text).
DEFAULT_TEXT = {
    "vendors.<name>.name": "the vendor id",
    "vendors.<name>.regions": "Bedrock's `region`, Vertex's `location`; else none",
    "vendors.<name>.timeouts.connect": "`server.timeouts.connect`",
    "vendors.<name>.timeouts.first_byte": "`server.timeouts.first_byte`",
    "vendors.<name>.timeouts.idle": "`server.timeouts.idle`",
    "vendors.<name>.timeouts.total": "`server.timeouts.total`",
    "vendors.<name>.base_url": "the built-in vendor's URL",
    "vendors.<name>.api_key": "the vendor's usual environment variable (`OPENAI_API_KEY`, ...)",
    "server.state_dir": "`$INTERLOCK_HOME`, else `.interlock`",
    "simulator.enabled": "`true` without a config file, else `false`",
    "mcp.servers.<name>.transport": "`streamable_http` (`stdio` for a `command` server)",
    "mcp.servers.<name>.per_user.prefix": "`Bearer ` in `Authorization`, else none",
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

_SERVER = "mcp.servers.<name>"
_MODEL = "catalog.models.<name>"
_ROUTE = f"{_MODEL}.routes.<name>"

#: Sections parsed as plain data (``config_keys.py`` finds their keys in the code): each key's type and default.
PLAIN_TYPES: dict[str, tuple[str, Any]] = {
    f"{_SERVER}.url": ("string", None),
    f"{_SERVER}.transport": ("string", "streamable_http"),
    f"{_SERVER}.command": ("list of strings", None),
    f"{_SERVER}.env": ("mapping of strings", None),
    f"{_SERVER}.cwd": ("string", None),
    f"{_SERVER}.headers": ("mapping of header names to values", None),
    f"{_SERVER}.timeout_s": ("number", 30.0),
    f"{_SERVER}.connect_timeout_s": ("number", 10.0),
    f"{_SERVER}.per_user": ("mapping", None),
    f"{_SERVER}.per_user.type": ("string", None),
    f"{_SERVER}.per_user.header": ("string", "Authorization"),
    **{f"{_SERVER}.per_user.{key}": ("string", None)
       for key in ("prefix", "env", "token_url", "client_id", "client_secret", "scope")},
    "mcp.tool_packs.<name>.project": ("string", None),
    "mcp.tool_packs.<name>.tools": ("list of strings", None),
    "mcp.tool_packs.<name>.rename": ("mapping of strings", None),
    "mcp.tool_packs.<name>.describe": ("mapping of strings", None),
    "mcp.tool_packs.<name>.description": ("string", None),
    **{f"catalog.{key}": ("mapping", None) for key in ("models", "models.<name>", "vendors", "vendors.<name>")},
    "catalog.vendors.<name>.zdr": ("boolean", None),
    **{f"{_MODEL}.{key}": ("string", None)
       for key in ("name", "lab", "family", "release_date", "knowledge", "reference_vendor")},
    **{f"{_MODEL}.{key}": ("list of strings", None)
       for key in ("input_modalities", "output_modalities", "capabilities")},
    **{f"{_MODEL}.{key}": ("integer", None) for key in ("context_window", "max_output", "max_input")},
    f"{_MODEL}.open_weights": ("boolean", False),
    f"{_MODEL}.routes": ("mapping", None),
    _ROUTE: ("mapping", None),
    f"{_ROUTE}.vendor_model_id": ("string", None),
    **{f"{_ROUTE}.{key}": ("integer", None) for key in ("context_window", "max_output", "max_input")},
    f"{_ROUTE}.capabilities": ("list of strings", None),
    f"{_ROUTE}.zdr": ("boolean", None),
    f"{_ROUTE}.remove": ("boolean", False),
    f"{_ROUTE}.price": ("mapping", None),
    **{f"{_ROUTE}.price.{key}": ("number", None)
       for key in ("input", "output", "cache_read", "cache_write", "reasoning", "input_audio", "output_audio",
                   "citation", "request")},
    f"{_ROUTE}.price.tiers": ("list of mappings", None),
    f"{_ROUTE}.price.tiers[].above": ("integer", None),
    **{f"{_ROUTE}.price.tiers[].{key}": ("number", None)
       for key in ("input", "output", "cache_read", "cache_write", "reasoning", "input_audio", "output_audio")},
}

#: Example values for keys without a default.
EXAMPLES: dict[str, Any] = {
    "store": "postgresql://interlock@127.0.0.1:5432/interlock",
    "redis.url": "redis://127.0.0.1:6379/0",
    "server.state_dir": "/var/lib/interlock",
    "server.trusted_proxies": ["127.0.0.1", "10.0.0.0/8"],
    "vendors.<name>.regions": ["swedencentral"],
    "vendors.<name>.like": "azure",
    "regions.jurisdictions": {"eu": ["fra-dc-1"]},
    "regions.jurisdictions.<name>": ["fra-dc-1", "fra-dc-2"],
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
    "policies.<name>.tiers.weak": ["openai/gpt-4.1-nano", "groq/llama-3.1-8b-instant"],
    "policies.<name>.tiers.strong": ["openai/gpt-4.1", "anthropic/claude-sonnet-4-5"],
    "policies.<name>.tiers.weak[].model": "openai/gpt-4.1-mini",
    "policies.<name>.tiers.strong[].model": "openai/gpt-4.1",
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
    f"{_SERVER}.url": "https://mcp.example.com/mcp",
    f"{_SERVER}.command": ["python", "weather_server.py"],
    f"{_SERVER}.env": {"WEATHER_API_KEY": "${WEATHER_API_KEY}"},
    f"{_SERVER}.cwd": "/srv/mcp/weather",
    f"{_SERVER}.headers": {"Authorization": "Bearer ${MCP_TOKEN}"},
    f"{_SERVER}.per_user.type": "api_key",
    f"{_SERVER}.per_user.header": "X-Api-Key",
    f"{_SERVER}.per_user.prefix": "Token ",
    f"{_SERVER}.per_user.env": "CRM_API_KEY",
    f"{_SERVER}.per_user.token_url": "https://auth.example.com/token",
    f"{_SERVER}.per_user.client_id": "interlock",
    f"{_SERVER}.per_user.client_secret": "example-client-secret",
    f"{_SERVER}.per_user.scope": "calendar.read",
    "mcp.tool_packs.<name>.project": "acme",
    "mcp.tool_packs.<name>.tools": ["search/*"],
    "mcp.tool_packs.<name>.rename": {"search/find": "find_docs"},
    "mcp.tool_packs.<name>.describe": {"search/find": "Find a page of the product docs."},
    "mcp.tool_packs.<name>.description": "Docs search for the support agents",
    f"{_MODEL}.name": "GPT-4.1 mini",
    f"{_MODEL}.lab": "openai",
    f"{_MODEL}.family": "gpt-mini",
    f"{_MODEL}.release_date": "2025-04-14",
    f"{_MODEL}.knowledge": "2024-04",
    f"{_MODEL}.context_window": 1047576,
    f"{_MODEL}.max_output": 32768,
    f"{_MODEL}.max_input": 1000000,
    f"{_MODEL}.input_modalities": ["text", "image"],
    f"{_MODEL}.output_modalities": ["text"],
    f"{_MODEL}.capabilities": ["streaming", "tools", "vision"],
    f"{_MODEL}.open_weights": False,
    f"{_MODEL}.reference_vendor": "openai",
    f"{_ROUTE}.vendor_model_id": "gpt-4.1-mini",
    f"{_ROUTE}.context_window": 1047576,
    f"{_ROUTE}.max_output": 32768,
    f"{_ROUTE}.max_input": 1000000,
    f"{_ROUTE}.capabilities": ["streaming", "tools"],
    f"{_ROUTE}.remove": True,
    f"{_ROUTE}.price.input": 0.3,
    f"{_ROUTE}.price.output": 1.2,
    f"{_ROUTE}.price.cache_read": 0.075,
    f"{_ROUTE}.price.cache_write": 0.5,
    f"{_ROUTE}.price.reasoning": 1.2,
    f"{_ROUTE}.price.input_audio": 10,
    f"{_ROUTE}.price.output_audio": 20,
    f"{_ROUTE}.price.citation": 2,
    f"{_ROUTE}.price.request": 5,
    f"{_ROUTE}.price.tiers": [{"above": 200000, "input": 0.6, "output": 2.4}],
    f"{_ROUTE}.price.tiers[].above": 200000,
    f"{_ROUTE}.price.tiers[].input": 0.6,
    f"{_ROUTE}.price.tiers[].output": 2.4,
    f"{_ROUTE}.price.tiers[].cache_read": 0.15,
    f"{_ROUTE}.price.tiers[].cache_write": 1.0,
    f"{_ROUTE}.price.tiers[].reasoning": 2.4,
    f"{_ROUTE}.price.tiers[].input_audio": 20,
    f"{_ROUTE}.price.tiers[].output_audio": 40,
}

_OAUTH = {"type": "oauth", "token_url": "https://auth.example.com/token", "client_id": "interlock"}
_STDIO = {"command": ["python", "weather_server.py"]}
#: What an example needs beside its key to be a valid config (a required sibling), by key, else by its section.
EXAMPLE_WITH: dict[str, dict[str, Any]] = {
    f"{_SERVER}.env": _STDIO,
    f"{_SERVER}.cwd": _STDIO,
    f"{_SERVER}.per_user": {"type": "api_key"},
    **{f"{_SERVER}.per_user.{key}": _OAUTH for key in ("token_url", "client_id", "client_secret", "scope")},
    f"{_ROUTE}.price.tiers[]": {"above": 200000},
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
    ("catalog", "models"): "openai/gpt-4.1-mini",
    ("routes",): "openai",
    ("catalog", "vendors"): "openai",
}
#: The name an MCP server has in the example of a key that only a stdio server takes (RICH_CONFIG's is HTTP).
STDIO_SERVER = ("weather", ("command", "env", "cwd"))
#: The built-in vendor an example of a vendor type's own key names.
VENDOR_OF_TYPE = {"openai": "azure", "anthropic": "anthropic", "bedrock": "bedrock", "vertex": "vertex"}
