-- A PostgreSQL store made by interlock before the state layer (c161864): ledger and stored responses
-- (interlock_schema 1-5), governance (governance_schema 1-2); two records, a project, budget spend.
-- Made with that revision's PostgresLog, PostgresResponses and PostgresGovStore, then
-- pg_dump --no-owner --no-privileges --inserts.
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
SET default_tablespace = '';
SET default_table_access_method = heap;
CREATE TABLE public.gov_budgets (
    id text NOT NULL,
    scope text NOT NULL,
    subject text NOT NULL,
    amount_micro bigint NOT NULL,
    period text NOT NULL,
    mode text NOT NULL,
    thresholds text NOT NULL,
    created_at double precision NOT NULL
);
CREATE TABLE public.gov_keys (
    id text NOT NULL,
    project text NOT NULL,
    name text NOT NULL,
    prefix text NOT NULL,
    digest text NOT NULL,
    projects text DEFAULT '[]'::text NOT NULL,
    allowed_models text DEFAULT '[]'::text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision,
    revoked_at double precision,
    replaced_by text
);
CREATE TABLE public.gov_limits (
    id text NOT NULL,
    scope text NOT NULL,
    subject text NOT NULL,
    rpm bigint,
    tpm bigint,
    concurrent bigint,
    created_at double precision NOT NULL
);
CREATE TABLE public.gov_projects (
    id text NOT NULL,
    name text NOT NULL,
    log_level text,
    allowed_models text DEFAULT '[]'::text NOT NULL,
    allowed_vendors text DEFAULT '[]'::text NOT NULL,
    created_at double precision NOT NULL,
    zero_data_retention integer DEFAULT 0 NOT NULL
);
CREATE TABLE public.gov_spend (
    budget_id text NOT NULL,
    counter text NOT NULL,
    period text NOT NULL,
    spent_nano bigint DEFAULT 0 NOT NULL
);
CREATE TABLE public.gov_version (
    id integer NOT NULL,
    version bigint NOT NULL,
    CONSTRAINT gov_version_id_check CHECK ((id = 1))
);
CREATE TABLE public.governance_schema (
    version integer NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE public.interlock_schema (
    version integer NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE public.requests (
    id text NOT NULL,
    received_at double precision NOT NULL,
    first_byte_at double precision,
    done_at double precision,
    duration_ms double precision,
    ttft_ms double precision,
    output_tps double precision,
    project text,
    key_id text,
    end_user text,
    tags jsonb,
    inbound text NOT NULL,
    requested_model text,
    model text,
    vendor text,
    vendor_model text,
    stream integer NOT NULL,
    status integer NOT NULL,
    error_type text,
    error_message text,
    input_tokens integer,
    cache_read_tokens integer,
    cache_write_tokens integer,
    output_tokens integer,
    reasoning_tokens integer,
    cost_picousd bigint,
    cost_estimated integer DEFAULT 0 NOT NULL,
    cache_hit integer DEFAULT 0 NOT NULL,
    simulated integer DEFAULT 0 NOT NULL,
    attempts jsonb,
    guardrails jsonb,
    explanation text,
    routing_trace jsonb,
    content_level text,
    request_content jsonb,
    response_content jsonb,
    detail_json json,
    detail text
);
CREATE TABLE public.responses (
    id text NOT NULL,
    created_at double precision NOT NULL,
    model text,
    owner text,
    project text,
    previous_response_id text,
    response text NOT NULL,
    input_items text NOT NULL,
    conversation text NOT NULL
);
CREATE TABLE public.spend_daily (
    day text NOT NULL,
    project text NOT NULL,
    key_id text NOT NULL,
    model text NOT NULL,
    vendor text NOT NULL,
    tag text NOT NULL,
    requests bigint DEFAULT 0 NOT NULL,
    errors bigint DEFAULT 0 NOT NULL,
    input_tokens bigint DEFAULT 0 NOT NULL,
    cache_read_tokens bigint DEFAULT 0 NOT NULL,
    output_tokens bigint DEFAULT 0 NOT NULL,
    cost_picousd bigint DEFAULT 0 NOT NULL
)
WITH (fillfactor='80');
CREATE TABLE public.spend_dims (
    day text NOT NULL,
    dim text NOT NULL,
    value text NOT NULL,
    requests bigint DEFAULT 0 NOT NULL,
    errors bigint DEFAULT 0 NOT NULL,
    input_tokens bigint DEFAULT 0 NOT NULL,
    cache_read_tokens bigint DEFAULT 0 NOT NULL,
    output_tokens bigint DEFAULT 0 NOT NULL,
    cost_picousd bigint DEFAULT 0 NOT NULL
)
WITH (fillfactor='80');
INSERT INTO public.gov_projects VALUES ('legacy', 'Legacy', NULL, '[]', '[]', 1750000000, 0);
INSERT INTO public.gov_spend VALUES ('bud_l', '', '2025-06', 5);
INSERT INTO public.gov_version VALUES (1, 2);
INSERT INTO public.governance_schema VALUES (1, '2026-12-04 15:55:15.112564+00');
INSERT INTO public.governance_schema VALUES (2, '2026-12-04 15:55:15.112564+00');
INSERT INTO public.interlock_schema VALUES (1, '2026-12-04 15:55:15.019505+00');
INSERT INTO public.interlock_schema VALUES (2, '2026-12-04 15:55:15.019505+00');
INSERT INTO public.interlock_schema VALUES (3, '2026-12-04 15:55:15.019505+00');
INSERT INTO public.interlock_schema VALUES (4, '2026-12-04 15:55:15.019505+00');
INSERT INTO public.interlock_schema VALUES (5, '2026-12-04 15:55:15.019505+00');
INSERT INTO public.requests VALUES ('req_legacy_1', 1750000000, NULL, NULL, NULL, NULL, NULL, 'legacy', 'key_l', NULL, '["t1"]', 'openai.chat', NULL, 'openai/gpt-4.1-mini', 'openai', NULL, 0, 200, NULL, NULL, 10, NULL, NULL, 5, NULL, 42000, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '[2,null,null,null,null,null,null,null,null,null,null,0,0,0,null,null,null,null,"metadata"]');
INSERT INTO public.requests VALUES ('req_legacy_2', 1750000060, NULL, NULL, NULL, NULL, NULL, 'legacy', 'key_l', NULL, NULL, 'openai.chat', NULL, 'openai/gpt-4.1-mini', 'openai', NULL, 0, 502, NULL, NULL, 3, NULL, NULL, 0, NULL, 1000, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '[2,null,null,null,null,null,null,null,null,null,null,0,0,0,null,null,null,null,"metadata"]');
INSERT INTO public.responses VALUES ('resp_legacy', 1750000000, 'm', NULL, 'legacy', NULL, '{"id":"resp_legacy"}', '[{"role":"user","content":"hi"}]', '[{"role":"user","content":"hi"}]');
INSERT INTO public.spend_daily VALUES ('2025-06-15', 'legacy', 'key_l', 'openai/gpt-4.1-mini', 'openai', '*', 2, 1, 13, 0, 5, 43000);
INSERT INTO public.spend_daily VALUES ('2025-06-15', 'legacy', 'key_l', 'openai/gpt-4.1-mini', 'openai', 't1', 1, 0, 10, 0, 5, 42000);
INSERT INTO public.spend_dims VALUES ('2025-06-15', '*', '*', 2, 1, 13, 0, 5, 43000);
INSERT INTO public.spend_dims VALUES ('2025-06-15', 'key_id', 'key_l', 2, 1, 13, 0, 5, 43000);
INSERT INTO public.spend_dims VALUES ('2025-06-15', 'model', 'openai/gpt-4.1-mini', 2, 1, 13, 0, 5, 43000);
INSERT INTO public.spend_dims VALUES ('2025-06-15', 'project', 'legacy', 2, 1, 13, 0, 5, 43000);
INSERT INTO public.spend_dims VALUES ('2025-06-15', 'tag', 't1', 1, 0, 10, 0, 5, 42000);
INSERT INTO public.spend_dims VALUES ('2025-06-15', 'vendor', 'openai', 2, 1, 13, 0, 5, 43000);
ALTER TABLE ONLY public.gov_budgets
    ADD CONSTRAINT gov_budgets_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.gov_keys
    ADD CONSTRAINT gov_keys_digest_key UNIQUE (digest);
ALTER TABLE ONLY public.gov_keys
    ADD CONSTRAINT gov_keys_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.gov_limits
    ADD CONSTRAINT gov_limits_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.gov_projects
    ADD CONSTRAINT gov_projects_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.gov_spend
    ADD CONSTRAINT gov_spend_pkey PRIMARY KEY (budget_id, counter, period);
ALTER TABLE ONLY public.gov_version
    ADD CONSTRAINT gov_version_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.governance_schema
    ADD CONSTRAINT governance_schema_pkey PRIMARY KEY (version);
ALTER TABLE ONLY public.interlock_schema
    ADD CONSTRAINT interlock_schema_pkey PRIMARY KEY (version);
ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.responses
    ADD CONSTRAINT responses_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.spend_daily
    ADD CONSTRAINT spend_daily_pkey PRIMARY KEY (day, project, key_id, model, vendor, tag);
ALTER TABLE ONLY public.spend_dims
    ADD CONSTRAINT spend_dims_pkey PRIMARY KEY (day, dim, value);
CREATE INDEX gov_keys_project ON public.gov_keys USING btree (project);
CREATE INDEX requests_key ON public.requests USING btree (key_id, received_at);
CREATE INDEX requests_project ON public.requests USING btree (project, received_at);
CREATE INDEX requests_received ON public.requests USING btree (received_at, id);
CREATE INDEX responses_created ON public.responses USING btree (created_at);
CREATE INDEX spend_tag_day ON public.spend_daily USING btree (tag, day);
