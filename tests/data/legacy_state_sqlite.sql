-- A state database made by interlock before the state layer (c161864): ledger (PRAGMA user_version 4),
-- governance (governance_schema 1-2), a stored response; two records, a project, budget spend.
-- Made with that revision's SQLiteStore/SQLiteLog, SQLiteGovStore and SQLiteResponses, then sqlite3 .dump.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta VALUES('master_key_digest','legacy-digest');
CREATE TABLE requests (
    id                 TEXT PRIMARY KEY,
    received_at        REAL NOT NULL,
    duration_ms        REAL,
    ttft_ms            REAL,
    inbound            TEXT NOT NULL,
    requested_model    TEXT,
    model              TEXT,
    vendor             TEXT,
    vendor_model       TEXT,
    stream             INTEGER NOT NULL,
    status             INTEGER NOT NULL,
    error_type         TEXT,
    error_message      TEXT,
    input_tokens       INTEGER,
    cache_read_tokens  INTEGER,
    cache_write_tokens INTEGER,
    output_tokens      INTEGER,
    reasoning_tokens   INTEGER,
    cost_picousd       INTEGER,
    cost_estimated     INTEGER NOT NULL DEFAULT 0,
    simulated          INTEGER NOT NULL DEFAULT 0,
    explanation        TEXT
, first_byte_at REAL, done_at REAL, output_tps REAL, project TEXT, key_id TEXT, end_user TEXT, tags TEXT, cache_hit INTEGER NOT NULL DEFAULT 0, attempts TEXT, guardrails TEXT, routing_trace TEXT, content_level TEXT, request_content TEXT, response_content TEXT, detail TEXT);
INSERT INTO requests VALUES('req_legacy_1',1750000000.0,NULL,NULL,'openai.chat',NULL,'openai/gpt-4.1-mini','openai',NULL,0,200,NULL,NULL,10,NULL,NULL,5,NULL,42000,0,0,NULL,NULL,NULL,NULL,'legacy','key_l',NULL,'["t1"]',0,NULL,NULL,NULL,NULL,NULL,NULL,'[2,null,null,null,null,null,null,null,null,null,null,0,0,0,null,null,null,null,"metadata"]');
INSERT INTO requests VALUES('req_legacy_2',1750000060.0,NULL,NULL,'openai.chat',NULL,'openai/gpt-4.1-mini','openai',NULL,0,502,NULL,NULL,3,NULL,NULL,0,NULL,1000,0,0,NULL,NULL,NULL,NULL,'legacy','key_l',NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,NULL,'[2,null,null,null,null,null,null,null,null,null,null,0,0,0,null,null,null,null,"metadata"]');
CREATE TABLE spend_daily (
    day TEXT NOT NULL, project TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL, vendor TEXT NOT NULL,
    tag TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0, cache_read_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, cost_picousd INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, project, key_id, model, vendor, tag)
) WITHOUT ROWID;
INSERT INTO spend_daily VALUES('2025-06-15','legacy','key_l','openai/gpt-4.1-mini','openai','*',2,1,13,0,5,43000);
INSERT INTO spend_daily VALUES('2025-06-15','legacy','key_l','openai/gpt-4.1-mini','openai','t1',1,0,10,0,5,42000);
CREATE TABLE spend_dims (
    day TEXT NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0, cache_read_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, cost_picousd INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, dim, value)
) WITHOUT ROWID;
INSERT INTO spend_dims VALUES('2025-06-15','*','*',2,1,13,0,5,43000);
INSERT INTO spend_dims VALUES('2025-06-15','key_id','key_l',2,1,13,0,5,43000);
INSERT INTO spend_dims VALUES('2025-06-15','model','openai/gpt-4.1-mini',2,1,13,0,5,43000);
INSERT INTO spend_dims VALUES('2025-06-15','project','legacy',2,1,13,0,5,43000);
INSERT INTO spend_dims VALUES('2025-06-15','tag','t1',1,0,10,0,5,42000);
INSERT INTO spend_dims VALUES('2025-06-15','vendor','openai',2,1,13,0,5,43000);
CREATE TABLE responses (
    id                   TEXT PRIMARY KEY,
    created_at           REAL NOT NULL,
    model                TEXT,
    owner                TEXT,
    previous_response_id TEXT,
    response             BLOB NOT NULL,
    input_items          BLOB NOT NULL,
    conversation         BLOB NOT NULL,
    project              TEXT
);
INSERT INTO responses VALUES('resp_legacy',1750000000.0,'m',NULL,NULL,X'7b226964223a22726573705f6c6567616379227d',X'5b7b22726f6c65223a2275736572222c22636f6e74656e74223a226869227d5d',X'5b7b22726f6c65223a2275736572222c22636f6e74656e74223a226869227d5d','legacy');
CREATE TABLE governance_schema (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL);
INSERT INTO governance_schema VALUES(1,1796399714.2443220615);
INSERT INTO governance_schema VALUES(2,1796399714.2445421219);
CREATE TABLE gov_projects (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, log_level TEXT, allowed_models TEXT NOT NULL DEFAULT '[]',
    allowed_vendors TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL
, zero_data_retention INTEGER NOT NULL DEFAULT 0);
INSERT INTO gov_projects VALUES('legacy','Legacy',NULL,'[]','[]',1750000000.0,0);
CREATE TABLE gov_keys (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL, prefix TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
    projects TEXT NOT NULL DEFAULT '[]', allowed_models TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL,
    expires_at REAL, revoked_at REAL, replaced_by TEXT
);
CREATE TABLE gov_budgets (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, subject TEXT NOT NULL, amount_micro INTEGER NOT NULL,
    period TEXT NOT NULL, mode TEXT NOT NULL, thresholds TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE gov_limits (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, subject TEXT NOT NULL, rpm INTEGER, tpm INTEGER, concurrent INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE gov_spend (
    budget_id TEXT NOT NULL, counter TEXT NOT NULL, period TEXT NOT NULL, spent_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (budget_id, counter, period)
);
INSERT INTO gov_spend VALUES('bud_l','','2025-06',5);
CREATE TABLE gov_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO gov_version VALUES(1,2);
CREATE INDEX requests_received ON requests (received_at);
CREATE INDEX spend_tag_day ON spend_daily (tag, day);
CREATE INDEX requests_project ON requests (project, received_at);
CREATE INDEX requests_key ON requests (key_id, received_at);
CREATE INDEX responses_created ON responses (created_at);
CREATE INDEX gov_keys_project ON gov_keys (project);
COMMIT;
PRAGMA user_version = 4;
