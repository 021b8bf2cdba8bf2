"""What each config key means: the config page's *meaning* column.

One entry per key ``config_keys()`` finds, by its dotted path; ``tests/test_docs_reference.py`` fails when a
key has none (a key added to the settings) or an entry names a key the loader no longer reads. Each meaning
says what the key changes, read from the code that uses it, not only what its name says.
"""

from __future__ import annotations

_SERVER = "mcp.servers.<name>"
_MODEL = "catalog.models.<name>"
_ROUTE = f"{_MODEL}.routes.<name>"
_PRICE = f"{_ROUTE}.price"
_CACHE_KEYS = {
    "allow_request_opt_in": "Honour `x-interlock-cache: on` on a request where the cache is otherwise off.",
    "allow_temperature": "Store and serve answers sampled at `temperature > 0` or at the vendor's default "
                         "temperature (otherwise such requests bypass the cache).",
    "enabled": "Use the response cache: an identical request is answered from it without calling a vendor.",
    "hit_cost_fraction": "What a cache hit costs the caller (request log, spend, budgets), as a fraction of what "
                         "the stored answer cost, from 0 to 1.",
    "semantic": "The semantic cache: a single-turn prompt that paraphrases a stored one is a hit.",
    "semantic.enabled": "Use the semantic cache (needs the `classifier` extra: prompts are embedded with its "
                        "model).",
    "semantic.threshold": "The lowest cosine similarity of two prompts' embeddings that is a hit, from 0.9 to 1.",
    "ttl_s": "How long an answer is kept, in seconds (at most `max_ttl_s`); `x-interlock-cache-ttl` may ask for "
             "another lifetime.",
}
_DETECTORS = {"pii": "personal data: card numbers, IBANs, US SSNs, e-mail addresses, phone numbers, IP addresses, "
                     "the `patterns` below and the `ner` entities",
              "secrets": "credentials: vendor API keys, private keys, JWTs, `password=...`"}
_PRICES = {"input": "input tokens", "output": "output tokens", "cache_read": "input tokens read from the prompt cache",
           "cache_write": "input tokens written to the prompt cache", "reasoning": "reasoning tokens",
           "input_audio": "audio input tokens", "output_audio": "audio output tokens"}

MEANINGS: dict[str, str] = {
    # ---------------------------------------------------------------------------------------- aliases
    "aliases": "Other names for models: a caller's `model` may be an alias.",
    "aliases.<name>": "The model the alias stands for: a catalog id or `vendor/model`.",
    # ------------------------------------------------------------------------------------------ cache
    "cache": "The exact response cache (and the semantic one): the floor here, then entries per policy and per "
             "project; the most specific wins, and `x-interlock-cache: off` always skips it.",
    **{f"cache.{key}": meaning for key, meaning in _CACHE_KEYS.items()},
    "cache.semantic": "The semantic cache: a single-turn prompt that paraphrases a stored one is a hit; off unless "
                      "`enabled`.",
    "cache.semantic.max_entries": "Prompt vectors the semantic index keeps per worker (least recently used "
                                  "leave first).",
    "cache.anthropic_auto_breakpoints": "Add `cache_control` markers to requests for Anthropic that carry none, "
                                        "on the stable prefix, so the vendor's prompt cache is used.",
    "cache.backend": "Where answers are kept: `memory` (per worker, bounded by `max_bytes`) or `redis` (the "
                     "`redis:` server, shared by every worker and replica).",
    "cache.max_bytes": "Memory backend: the size of the whole cache per worker, in bytes (least recently used "
                       "answers leave first).",
    "cache.max_entry_bytes": "An answer larger than this many bytes is not stored.",
    "cache.max_ttl_s": "The longest lifetime an answer may get, in seconds: the bound of every `ttl_s` and of "
                       "`x-interlock-cache-ttl`.",
    "cache.redis_timeout_s": "Redis backend: a lookup or store slower than this many seconds counts as a miss, "
                             "never an error.",
    "cache.share_across_projects": "One project's stored answers may serve another project's identical "
                                   "requests (otherwise each project has its own entries).",
    "cache.policies": "Cache settings per routing policy (by policy name), over the floor.",
    "cache.policies.<name>": "One policy's cache settings: the keys it sets replace the floor's.",
    **{f"cache.policies.<name>.{key}": f"For requests of this policy: {meaning[0].lower()}{meaning[1:]}"
       for key, meaning in _CACHE_KEYS.items()},
    "cache.projects": "Cache settings per project (by project id), over the floor and the policy's entry.",
    "cache.projects.<name>": "One project's cache settings: the keys it sets replace the floor's and the "
                             "policy's.",
    **{f"cache.projects.<name>.{key}": f"For requests of this project: {meaning[0].lower()}{meaning[1:]}"
       for key, meaning in _CACHE_KEYS.items()},
    # ---------------------------------------------------------------------------------------- catalog
    "catalog": "Changes to the packaged model catalog, applied at start: negotiated prices, private "
               "deployments, zero-data-retention flags, new models.",
    "catalog.models": "Models by id: an existing id is patched, a new one (`lab/model`) is added.",
    f"{_MODEL}": "One model: the keys given replace the catalog's values; `routes` patches its vendor routes.",
    f"{_MODEL}.name": "The model's display name (a new model: its id).",
    f"{_MODEL}.lab": "The lab that made the model (a new model: the part of its id before `/`).",
    f"{_MODEL}.family": "The model's family, as catalog pages and `/v1/models` show it.",
    f"{_MODEL}.release_date": "The model's release date, as text (`YYYY-MM-DD`).",
    f"{_MODEL}.knowledge": "The model's knowledge cut-off, as text (`YYYY-MM`).",
    f"{_MODEL}.context_window": "The model's context window in tokens (a route's own value wins for that route).",
    f"{_MODEL}.max_output": "The most tokens the model writes in one answer.",
    f"{_MODEL}.max_input": "The most input tokens the model accepts, when less than the context window.",
    f"{_MODEL}.input_modalities": "What the model reads: `text`, `image`, `audio`, `pdf`, ...",
    f"{_MODEL}.output_modalities": "What the model writes: `text`, `image`, `audio`, ...",
    f"{_MODEL}.capabilities": "What the model supports (`streaming`, `tools`, `structured_outputs`, `vision`, "
                              "`reasoning`, `prompt_caching`, `temperature`, `attachments`, `pdf_input`, "
                              "`audio_input`): routing refuses a request that needs one it lacks.",
    f"{_MODEL}.open_weights": "The model's weights are published.",
    f"{_MODEL}.reference_vendor": "The vendor whose route is the reference route: the one the simulator and "
                                  "budget estimates price the model at (default: the lab's own vendor, else the "
                                  "cheapest route).",
    f"{_MODEL}.routes": "The model's routes by vendor id: each entry patches that vendor's routes, adds one, or "
                        "removes them.",
    _ROUTE: "This vendor's routes to the model: every one of them, or only the one named by "
            "`vendor_model_id` (added when the vendor has none by that id: it then needs a `price`).",
    f"{_ROUTE}.vendor_model_id": "The vendor's own id for the model: selects (or adds) that route only.",
    f"{_ROUTE}.price": "The route's rates: the keys given replace the listed ones, the others stay (a negotiated "
                       "input rate keeps the listed output rate).",
    **{f"{_PRICE}.{key}": f"USD per 1M {what}." for key, what in _PRICES.items()},
    f"{_PRICE}.citation": "USD per 1M citation tokens (search models).",
    f"{_PRICE}.request": "USD per 1,000 requests (a search fee on top of the tokens).",
    f"{_PRICE}.tiers": "Long-context rates: once a prompt exceeds a tier's `above` tokens, the whole request is "
                       "billed at that tier's rates (the highest tier that applies).",
    f"{_PRICE}.tiers[].above": "The prompt size in tokens above which this tier applies (required).",
    **{f"{_PRICE}.tiers[].{key}": f"USD per 1M {what} in this tier (a rate left out keeps the base rate)."
       for key, what in _PRICES.items()},
    f"{_ROUTE}.context_window": "This route's context window in tokens (a vendor may serve less than the lab).",
    f"{_ROUTE}.max_output": "The most tokens this route writes in one answer.",
    f"{_ROUTE}.max_input": "The most input tokens this route accepts, when less than its context window.",
    f"{_ROUTE}.capabilities": "What this route supports (a vendor may not offer tools or caching the model "
                              "has); same names as the model's `capabilities`.",
    f"{_ROUTE}.zdr": "The vendor retains no data on this route: `true` qualifies it for `filters.zdr` policies and "
                     "`provider.zdr` requests.",
    f"{_ROUTE}.remove": "`true` drops this vendor's route(s) from the model (a model keeps at least one route).",
    "catalog.vendors": "Settings for every route of a vendor, by vendor id.",
    "catalog.vendors.<name>": "One vendor's settings over all of its routes.",
    "catalog.vendors.<name>.zdr": "Every route of this vendor retains no data (`true`) or may (`false`).",
    # -------------------------------------------------------------------------------- circuit_breaker
    "circuit_breaker": "Circuit breakers: one per target (`vendor/model`) per process; an open breaker sets the "
                       "target aside until a probe succeeds. Client errors (4xx) and context-length refusals do "
                       "not count as failures.",
    "circuit_breaker.failure_rate": "The share of attempts in the window that failed at which the breaker "
                                    "opens (0 < x ≤ 1).",
    "circuit_breaker.min_requests": "Attempts the window needs before its failure share is trusted.",
    "circuit_breaker.window_s": "The sliding window, in seconds, the failure share is measured over.",
    "circuit_breaker.cooldown_s": "How long the breaker first stays open, in seconds; then one real request "
                                  "goes through as a probe.",
    "circuit_breaker.max_cooldown_s": "The longest open period, in seconds: open periods double up to this "
                                      "while probes keep failing.",
    # ---------------------------------------------------------------------------------------- console
    "console": "The web console: catalog pages, the playground, request log, spend, keys and settings pages.",
    "console.enabled": "`false` removes every console route (`/models`, `/console/...`, `/static/...`): they "
                       "answer 404.",
    "console.public_catalog": "Catalog pages readable without signing in; `false` sends a browser without a "
                              "session to the sign-in page (API clients and badges then need a key).",
    "console.session_hours": "How long a console sign-in lasts, in hours (at most 168, a week).",
    # ------------------------------------------------------------------------------------- governance
    "governance": "Projects, keys, budgets and rate limits: how their definitions and spend are kept in step.",
    "governance.alert_webhook": "A URL each budget alert (a threshold crossed) is POSTed to as a JSON event.",
    "governance.flush_interval_s": "How often settled spend is written to the store, in seconds (budgets "
                                   "survive a restart from it).",
    "governance.poll_interval_s": "How often each worker checks the store for changed definitions, in seconds "
                                  "(at most 1); with `redis:` it is the fallback while change announcements are "
                                  "down.",
    "governance.unpriced": "A route whose price is unknown, for a caller under a hard budget: `refuse` it, or "
                           "`allow` it at a recorded cost of 0.",
    # ------------------------------------------------------------------------------------- guardrails
    "guardrails": "What the detectors (`pii`, `secrets`, `prompt_injection`) do to requests and answers: the "
                  "operator's floor, which project entries may only tighten.",
    **{f"guardrails.{name}": f"The {name} detector: {what}." for name, what in _DETECTORS.items()},
    **{f"guardrails.{name}.action": "`off`, `monitor` (recorded, counted, named in `x-interlock-guardrails`), "
                                    "`redact` (each value replaced by a typed placeholder before the vendor sees "
                                    "it) or `block` (400 `content_blocked`, no vendor called)." for name in _DETECTORS},
    **{f"guardrails.{name}.output": "Scan the model's answers too (text, reasoning, tool-call arguments; a "
                                    "stream is held back 64 characters)." for name in _DETECTORS},
    **{f"guardrails.{name}.restore": "With `action: redact`: put the redacted values back into the answer the "
                                     "caller gets (the vendor still never sees them)." for name in _DETECTORS},
    **{f"guardrails.{name}.fail_mode": "When the detector cannot run: `closed` answers 503 "
                                       "`guardrail_unavailable`, `open` lets the request through marked "
                                       "`unchecked`." for name in (*_DETECTORS, "prompt_injection")},
    "guardrails.prompt_injection": "The prompt-injection detector: weighted rules over normalised text, and a "
                                   "learned classifier beside them.",
    "guardrails.prompt_injection.action": "`off`, `monitor` (recorded, counted, named in "
                                          "`x-interlock-guardrails`) or `block` (400 `content_blocked`, no vendor "
                                          "called).",
    "guardrails.prompt_injection.threshold": "The score (0 to 1) from which a user turn is flagged as an "
                                             "injection; lower flags more.",
    "guardrails.prompt_injection.indirect_threshold": "The score (0 to 1) from which a tool result or other "
                                                      "data in the conversation is flagged as an indirect "
                                                      "injection.",
    "guardrails.prompt_injection.classifier": "`on`: the learned classifier scores beside the rules (needs the "
                                              "`classifier` extra and the model package); `off`: rules only.",
    "guardrails.phone_region": "The region (two-letter code: `US`, `GB`, `DE`) whose conventions read phone "
                               "numbers written without a country code.",
    "guardrails.patterns": "Your own patterns, found by the `pii` detector as entities of their own.",
    "guardrails.patterns[].name": "The entity type the pattern finds, in capitals, digits and `_` "
                                  "(`EMPLOYEE_ID`); its placeholders are `[EMPLOYEE_ID_1]`, ...",
    "guardrails.patterns[].regex": "The regular expression (Python syntax) a value matches.",
    "guardrails.patterns[].validator": "A checksum a match must pass: `luhn` (card numbers), `mod97` (IBANs) "
                                       "or `none`.",
    "guardrails.patterns[].context": "Words one of which (any case) must occur near a match for it to count; "
                                     "empty: every match counts.",
    "guardrails.patterns[].context_window": "How near, in characters before or after the match, a `context` "
                                            "word must be.",
    "guardrails.ner": "Names and places for the `pii` detector: Presidio's analyzer with a spaCy pipeline you "
                      "install (`interlock[presidio]`); checked at start.",
    "guardrails.ner.model": "The spaCy pipeline: a package name (`en_core_web_lg`) or a directory.",
    "guardrails.ner.entities": "The entity types to find: `PERSON`, `LOCATION`, `NRP`, `ORGANIZATION`, "
                               "`DATE_TIME`.",
    "guardrails.ner.score_threshold": "The lowest analyzer score (0 to 1) that counts as a finding.",
    "guardrails.ner.language": "The language code of the texts and the pipeline.",
    "guardrails.projects": "Per project id, detector settings (`action`, `fail_mode`, thresholds, `output`, "
                           "`restore`) that may only tighten the floor; a looser one fails the start.",
    # ---------------------------------------------------------------------------------------- logging
    "logging": "The request log: one record per request, written in batches to the store.",
    "logging.enabled": "`false` turns the request log off (the same as `level: off`).",
    "logging.level": "`off` (no records), `metadata` (every field but the content) or `full` (also the request "
                     "body and the answer); a project may set its own.",
    "logging.retention_days": "Records older than this many days are deleted (hourly); spend totals are kept. "
                              "Absent: records are kept.",
    "logging.zero_data_retention": "Keep no prompt or answer content anywhere, for every request, whatever the "
                                   "level says.",
    "logging.flush_interval": "How often waiting records are written, in seconds (at most 1: a hard kill loses "
                              "at most this much).",
    "logging.batch_size": "Records written at once; a batch is also written as soon as this many wait.",
    # -------------------------------------------------------------------------------------------- mcp
    "mcp": "The MCP gateway: upstream MCP servers, the tool packs that expose their tools to a project, and "
           "MCP tools in `/v1/responses`.",
    "mcp.servers": "Upstream MCP servers by name (the admin API may add more).",
    f"{_SERVER}": "One upstream server: `url` (an HTTP server) or `command` (a stdio server), exactly one.",
    f"{_SERVER}.url": "The server's URL, `http://` or `https://` with no credentials in it (use `headers`).",
    f"{_SERVER}.transport": "An HTTP server's transport: `streamable_http` or the legacy `sse`; a `command` "
                            "server's is `stdio`.",
    f"{_SERVER}.command": "A stdio server: the program and its arguments, started as a child process.",
    f"{_SERVER}.env": "A stdio server: environment variables of the child process (`${VAR}` expanded).",
    f"{_SERVER}.cwd": "A stdio server: the child process's working directory.",
    f"{_SERVER}.headers": "An HTTP server: headers sent with every request, the same for every user (`${VAR}` "
                          "expanded).",
    f"{_SERVER}.timeout_s": "The longest one tool call may take, from sending it to its result, in seconds "
                            "(at most 3600).",
    f"{_SERVER}.connect_timeout_s": "The longest connecting, `initialize` and `tools/list` may take, in seconds "
                                    "(at most 300).",
    f"{_SERVER}.per_user": "Each registered user's own credential (stored through the admin API) is passed to "
                           "the server.",
    f"{_SERVER}.per_user.type": "`api_key`: the user's key goes in `header` (or, stdio, in `env`); `oauth`: the "
                                "user's access token goes in `Authorization`, refreshed at `token_url`.",
    f"{_SERVER}.per_user.header": "`api_key`: the header that carries the user's key.",
    f"{_SERVER}.per_user.prefix": "`api_key`: the text before the key in `header`.",
    f"{_SERVER}.per_user.env": "`api_key`: the environment variable that carries the user's key to a stdio "
                               "server (required there).",
    f"{_SERVER}.per_user.token_url": "`oauth`: the token endpoint that refreshes a user's access token.",
    f"{_SERVER}.per_user.client_id": "`oauth`: interlock's client id at the token endpoint.",
    f"{_SERVER}.per_user.client_secret": "`oauth`: interlock's client secret at the token endpoint (sent as a "
                                         "form field), best as a `${VAR}` reference.",
    f"{_SERVER}.per_user.scope": "`oauth`: the scope asked for when a token is refreshed.",
    "mcp.tool_packs": "Tool packs by id: a set of upstream tools served to one project as an MCP server of its "
                      "own (`/api/v1/tool-packs/<id>/...`).",
    "mcp.tool_packs.<name>": "One tool pack.",
    "mcp.tool_packs.<name>.project": "The project the pack belongs to: only its keys register users and issue "
                                     "access keys for it.",
    "mcp.tool_packs.<name>.tools": "The tools the pack serves, in order: `server/tool` or `server/*` (every tool "
                                   "of the server).",
    "mcp.tool_packs.<name>.rename": "`server/tool` → the name the pack exposes it under.",
    "mcp.tool_packs.<name>.describe": "`server/tool` → the description the pack exposes instead of the "
                                      "server's.",
    "mcp.tool_packs.<name>.description": "The pack's own description.",
    "mcp.stateless": "`true`: no MCP sessions, so any worker or replica answers any request; `auto`: true when "
                     "`server.workers` > 1.",
    "mcp.access_key_max_ttl_s": "The longest lifetime, in seconds, an MCP access key may be issued with (at "
                                "least 60).",
    "mcp.max_tool_rounds": "`/v1/responses` with MCP tools: the most model rounds the gateway runs for one "
                           "request.",
    "mcp.allowed_server_urls": "`/v1/responses`: URL prefixes of external MCP servers a request may name "
                               "(besides this gateway's tool packs).",
    # --------------------------------------------------------------------------------------- policies
    "policies": "Routing policies by name: a caller reaches one by naming it as the `model`.",
    "policies.<name>": "One policy: its targets, the strategy that orders them, retries, deadline and filters.",
    "policies.<name>.description": "Free text for readers of the file.",
    "policies.<name>.targets": "The models the policy may route to, in order: catalog ids, `vendor/model` or "
                               "aliases, each a name or `{model, weight}`.",
    "policies.<name>.targets[].model": "The target's model: a catalog id, `vendor/model` or an alias.",
    "policies.<name>.targets[].weight": "The target's weight in the `weighted` strategy's draw.",
    "policies.<name>.strategy": "How targets are ordered: `priority` (as listed), `weighted` (random by "
                                "weight), `cost`, `latency`, `throughput`, `quality`, `balanced`, or "
                                "`difficulty` (weak or strong tier by the prompt's difficulty score).",
    "policies.<name>.balance": "The `balanced` strategy's weights of cost, latency and quality (normalised; "
                               "absent: equal).",
    "policies.<name>.balance.cost": "The weight of the expected cost in `balanced`.",
    "policies.<name>.balance.latency": "The weight of the live time to first token in `balanced`.",
    "policies.<name>.balance.quality": "The weight of the quality score in `balanced`.",
    "policies.<name>.quality": "What `quality` and `balanced` rank by: benchmark weights and your own scores.",
    "policies.<name>.quality.weights": "Benchmark or eval name → its weight in the quality score.",
    "policies.<name>.quality.weights.<name>": "The weight of this catalog benchmark or of your own eval (named "
                                              "in `scores`).",
    "policies.<name>.quality.scores": "Your own eval scores per target, merged over the catalog's benchmarks.",
    "policies.<name>.quality.scores.<name>": "One target's scores: eval name → score.",
    "policies.<name>.quality.scores.<name>.<name>": "The target's score on this eval (normalised over the "
                                                    "candidates; a missing score gets the median).",
    "policies.<name>.expected_output_tokens": "The output tokens a cost estimate assumes (the `cost` and "
                                              "`balanced` strategies).",
    "policies.<name>.tiers": "The `difficulty` strategy's two tiers of targets (instead of `targets`): "
                             "`weak` and `strong`.",
    "policies.<name>.tiers.weak": "The targets for requests that score below the threshold, as `targets` lists "
                                  "them.",
    "policies.<name>.tiers.weak[].model": "A weak-tier target's model: a catalog id, `vendor/model` or an alias.",
    "policies.<name>.tiers.weak[].weight": "The target's weight when `tier_strategy` is `weighted`.",
    "policies.<name>.tiers.strong": "The targets for requests that score at or above the threshold.",
    "policies.<name>.tiers.strong[].model": "A strong-tier target's model: a catalog id, `vendor/model` or an "
                                            "alias.",
    "policies.<name>.tiers.strong[].weight": "The target's weight when `tier_strategy` is `weighted`.",
    "policies.<name>.tier_strategy": "How the targets within the chosen tier are ordered: any strategy but "
                                     "`difficulty`.",
    "policies.<name>.difficulty": "When a request is hard enough for the strong tier: one of `threshold` or "
                                  "`strong_share`, and failover between tiers.",
    "policies.<name>.difficulty.threshold": "The difficulty score (0 to 1) at or above which a request goes to "
                                            "the strong tier.",
    "policies.<name>.difficulty.strong_share": "The share of requests (0 to 1) to send to the strong tier: the "
                                               "threshold is calibrated on the scorer's training prompts "
                                               "(`interlock policies calibrate` calibrates on your traffic).",
    "policies.<name>.difficulty.fallback_across_tiers": "When every target of the chosen tier fails or is "
                                                        "filtered out, try the other tier.",
    "policies.<name>.retry": "How hard one target is tried before the next: tries and backoff.",
    "policies.<name>.retry.attempts": "Tries of the same target for a retryable failure (1: no retry).",
    "policies.<name>.retry.backoff_s": "The first wait between tries, in seconds (exponential, with jitter).",
    "policies.<name>.retry.max_backoff_s": "The longest wait between tries, in seconds.",
    "policies.<name>.retry.max_retry_after_s": "A 429 whose `Retry-After` is longer than this many seconds moves "
                                               "to the next target instead of waiting.",
    "policies.<name>.timeout_s": "The deadline of the whole request, every attempt included, in seconds.",
    "policies.<name>.filters": "Routes the policy never uses, whatever the strategy.",
    "policies.<name>.filters.zdr": "Only zero-data-retention routes.",
    "policies.<name>.filters.vendors": "Only these vendors (empty: any).",
    "policies.<name>.filters.exclude_vendors": "Never these vendors.",
    "policies.<name>.filters.capabilities": "Only routes with every one of these capabilities, whatever the "
                                            "request needs.",
    "policies.<name>.filters.max_price": "Only routes at most this expensive, in USD per 1M tokens.",
    "policies.<name>.filters.max_price.input": "The highest input rate allowed, in USD per 1M tokens.",
    "policies.<name>.filters.max_price.output": "The highest output rate allowed, in USD per 1M tokens.",
    # ------------------------------------------------------------------------------------------ redis
    "redis": "A Redis server (this mapping, or just its URL) shared by workers and replicas: rate-limit and "
             "budget counters, routing's live statistics, change announcements, the `redis` cache backend.",
    "redis.url": "The server: `redis://`, `rediss://` (TLS) or `unix://`.",
    "redis.key_prefix": "The prefix of every key interlock writes (several gateways may share one server).",
    "redis.sync_interval_s": "How often routing's live statistics are shared through Redis, in seconds.",
    # ---------------------------------------------------------------------------------------- routing
    "routing": "Routing settings beyond the policies.",
    "routing.prefix_affinity": "Requests that share a long prompt prefix prefer the route that served it, so "
                               "the vendor's prompt cache hits; it only reorders routes allowed anyway (per "
                               "worker).",
    "routing.prefix_affinity.enabled": "Prefer the route that last served a request's prompt prefix.",
    "routing.prefix_affinity.ttl_s": "How long a route stays preferred after serving a prefix, in seconds (the "
                                     "vendors' cache lifetime).",
    "routing.prefix_affinity.vendor_ttl_s": "A different lifetime per vendor id, whose cache lives longer or "
                                            "shorter.",
    "routing.prefix_affinity.vendor_ttl_s.<name>": "How long this vendor's routes stay preferred, in seconds.",
    "routing.prefix_affinity.min_prefix_tokens": "Prefixes shorter than this many (estimated) tokens are not "
                                                 "pinned: vendors cache from about 1,024.",
    "routing.prefix_affinity.max_entries": "Prefixes remembered per worker (least recently used leave first).",
    # ----------------------------------------------------------------------------------------- server
    "server": "The HTTP server: where it listens, its processes, limits and timeouts, and the vendors' default "
              "timeouts.",
    "server.host": "The address to listen on (`0.0.0.0`: every interface); `--host` wins.",
    "server.port": "The TCP port to listen on; `--port` wins.",
    "server.workers": "Worker processes serving on the one port; `--workers` wins. More than one needs `redis:` "
                      "when budgets or rate limits are defined.",
    "server.engine": "The HTTP server: `native` (interlock's HTTP/1.1 server on llhttp) or `granian`; "
                     "`--engine` wins.",
    "server.max_body_bytes": "The largest request body accepted, in bytes; a larger one is refused with 413.",
    "server.state_dir": "Where the gateway keeps its state: the SQLite database, the server secret, the admin "
                        "key's digest, the request log's spill file, metric snapshots. A relative path is "
                        "relative to the config file.",
    "server.head_timeout": "A request's head (request line and headers) must arrive within this many seconds "
                           "(native engine: else 408; Granian takes at most 60).",
    "server.keepalive_timeout": "Native engine: an idle keep-alive connection is closed after this many seconds.",
    "server.body_timeout": "The longest gap between two pieces of a request body, in seconds, before it is "
                           "refused with 408.",
    "server.drain_s": "Native engine, on SIGTERM: seconds of serving with `/readyz` failing before the listener "
                      "closes (a load balancer's check interval times the failures it needs).",
    "server.grace_s": "Native engine, on SIGTERM: seconds requests in flight (streams included) get to finish "
                      "once the listener is closed.",
    "server.trusted_proxies": "Load balancers and proxies (IP addresses or CIDR networks) whose "
                              "`X-Forwarded-For` is believed: for a connection from one of them, the client "
                              "address (the request log's `client_ip`, the console's sign-in throttle) is the "
                              "right-most `X-Forwarded-For` entry not in these networks. Empty: the connection's "
                              "peer address, whatever the header says.",
    "server.timeouts": "Every vendor's timeouts, in seconds (a vendor's own `timeouts` win); one that passes is "
                       "a 504 `upstream_timeout` naming it.",
    "server.timeouts.connect": "Connecting to the vendor (TCP and TLS).",
    "server.timeouts.first_byte": "From the request sent to the answer's first bytes (reasoning models may think "
                                  "a while).",
    "server.timeouts.idle": "The longest silence between two pieces of a streamed answer.",
    "server.timeouts.total": "The whole exchange with the vendor, from connecting to the answer's end.",
    # -------------------------------------------------------------------------------------- simulator
    "simulator": "The simulator: a vendor that answers any catalog model with simulated text, usage, latency "
                 "and faults (tests, demos, load tests).",
    "simulator.enabled": "Run the simulator: a catalog model no live vendor serves gets a simulated answer, and "
                         "`simulator/<model>` names it directly.",
    "simulator.time_scale": "Multiplies every simulated delay; `0` answers at once.",
    "simulator.allow_fault_headers": "Honour the `x-interlock-simulator-fault` and `-latency` request headers.",
    "simulator.seed": "Seeds the latency and fault draws (content is seeded by the request); absent: random.",
    "simulator.cache_ttl_s": "How long a simulated prompt prefix stays cached, in seconds (OpenAI and Gemini "
                             "wires; Anthropic's markers say 5m or 1h); `0`: no caching.",
    "simulator.cache_max_entries": "Prompt prefixes the simulated cache remembers (oldest evicted).",
    "simulator.faults": "Model id or glob pattern (`openai/*`) → a fault to inject: the header's grammar "
                        "(`error=503;rate=0.1`) or a mapping.",
    "simulator.latency": "Model id or glob pattern → the time to first token and tokens per second to simulate "
                         "(`ttft_p50`, `ttft_p95`, `tps_p50`, `tps_p95`).",
    # ------------------------------------------------------------------------------------------ store
    "store": "A PostgreSQL database for definitions (projects, keys, budgets, limits), the request log and spend, "
             "stored Responses, console sessions, the audit log and MCP users, shared by replicas. Absent: "
             "SQLite in `server.state_dir`.",
    # -------------------------------------------------------------------------------------- telemetry
    "telemetry": "Traces (OTLP) and Prometheus metrics.",
    "telemetry.otlp_endpoint": "An OTLP/HTTP collector to send traces to (`/v1/traces` is added); absent: no "
                               "traces.",
    "telemetry.service_name": "The `service.name` the traces carry.",
    "telemetry.headers": "Headers sent with every trace export (a collector's credentials).",
    "telemetry.metrics": "Serve Prometheus metrics at `GET /metrics`.",
    "telemetry.sample_ratio": "The share of requests traced (0 to 1) when the caller sends no `traceparent`.",
    # ---------------------------------------------------------------------------------------- vendors
    "vendors": "The vendors interlock calls, by id: a built-in id configures that vendor (one not listed still "
               "runs when its key is in the environment); another id declares a vendor of your own.",
    "vendors.<name>": "One vendor: a built-in one's settings, or a vendor of your own (`type` and `base_url`).",
    "vendors.<name>.type": "The API a vendor of your own speaks: `openai`, `anthropic`, `gemini`, `vertex`, "
                           "`bedrock` or `cohere` (a built-in vendor's, if given, must match).",
    "vendors.<name>.name": "A vendor of your own: its display name (a built-in vendor keeps its own).",
    "vendors.<name>.base_url": "The vendor's API base URL (`http://` or `https://`).",
    "vendors.<name>.api_key": "The vendor's credential, best as a `${VAR}` reference; never logged.",
    "vendors.<name>.headers": "Extra headers sent with every request to the vendor (`anthropic-beta`, a team "
                              "tag); a value with CR, LF or NUL fails the start.",
    "vendors.<name>.headers.<name>": "The value of this header.",
    "vendors.<name>.enabled": "`false` turns the vendor off: its routes are not used.",
    "vendors.<name>.regions": "Where this vendor instance runs, as region names (`eu-central-1`, `westeurope`) or a "
                              "jurisdiction (`eu`), for data residency; a route with none is never admitted by a "
                              "project's or key's `regions`.",
    "vendors.<name>.like": "Makes this vendor an instance of a built-in one (its auth, headers and catalog routes) "
                           "under its own id, e.g. one per region; its base URL is never the built-in's variable.",
    "regions": "Data residency: how region names group into jurisdictions.",
    "regions.jurisdictions": "Regions of your own (or moved) per jurisdiction, added to the built-in table of AWS, "
                             "Azure and Google Cloud regions.",
    "regions.jurisdictions.<name>": "The region names in this jurisdiction (`eu`, `us`, `uk`, ... or one of your "
                                    "own).",
    "vendors.<name>.timeouts": "This vendor's timeouts, each key over `server.timeouts`.",
    "vendors.<name>.timeouts.connect": "Connecting to this vendor (TCP and TLS), in seconds.",
    "vendors.<name>.timeouts.first_byte": "From the request sent to the answer's first bytes, in seconds.",
    "vendors.<name>.timeouts.idle": "The longest silence between two pieces of a streamed answer, in seconds.",
    "vendors.<name>.timeouts.total": "The whole exchange with this vendor, in seconds.",
    "vendors.<name>.api_version": "Type `openai` (Azure): the `api-version` query parameter; with it, requests "
                                  "go to Azure's deployment URLs (the built-in `azure` sends `2024-10-21`).",
    "vendors.<name>.deployments": "Type `openai` (Azure): the vendor's model id → the deployment that serves it "
                                  "(a model not listed is its own deployment).",
    "vendors.<name>.deployments.<name>": "The deployment name for this model id.",
    "vendors.<name>.anthropic_version": "Types `anthropic` and `vertex`: the Anthropic API version sent "
                                        "(`anthropic-version` header; a body field on Vertex AI).",
    "vendors.<name>.region": "Type `bedrock`: the AWS region, which sets the URL (default: `$AWS_REGION`, "
                             "`$AWS_DEFAULT_REGION`, else the profile's).",
    "vendors.<name>.aws_access_key_id": "Type `bedrock`: a static access key id (default: "
                                        "`$AWS_ACCESS_KEY_ID`); not with `profile`.",
    "vendors.<name>.aws_secret_access_key": "Type `bedrock`: the static key's secret (default: "
                                            "`$AWS_SECRET_ACCESS_KEY`).",
    "vendors.<name>.aws_session_token": "Type `bedrock`: a session token for temporary keys (default: "
                                        "`$AWS_SESSION_TOKEN`).",
    "vendors.<name>.profile": "Type `bedrock`: an AWS profile botocore reads (shared config, SSO, assume-role; "
                              "needs `interlock[aws]`).",
    "vendors.<name>.project": "Type `vertex`: the Google Cloud project (default: `$GOOGLE_CLOUD_PROJECT`, "
                              "`$VERTEX_PROJECT`, else the credentials file's).",
    "vendors.<name>.location": "Type `vertex`: the Google Cloud location, which sets the URL (default: "
                               "`$GOOGLE_CLOUD_LOCATION`, `$VERTEX_LOCATION`, else `us-central1`; `global` "
                               "works).",
    "vendors.<name>.credentials_file": "Type `vertex`: a service-account JSON file (default: "
                                       "`$GOOGLE_APPLICATION_CREDENTIALS`, else application default credentials "
                                       "with `interlock[gcp]`).",
}
