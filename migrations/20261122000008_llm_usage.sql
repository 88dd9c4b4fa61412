-- LLM usage per tenant and conversation: one row per call the agent made (or skipped because
-- the tenant's monthly quota was used up). Quotas count the `ok` rows of the current UTC month,
-- through the (tenant_id, at) index. Cost is in millionths of a US dollar from the server's
-- price table (0 for models it has no price for).
CREATE TABLE llm_usage (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id    uuid,
    at                 timestamptz NOT NULL DEFAULT now(),
    purpose            text NOT NULL,
    model              text NOT NULL,
    outcome            text NOT NULL CHECK (outcome IN ('ok', 'failed', 'quota_exceeded')),
    prompt_tokens      integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens  integer NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cost_micros        bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    error              text
);
CREATE INDEX llm_usage_tenant_at ON llm_usage (tenant_id, at);
ALTER TABLE llm_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON llm_usage USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());
GRANT SELECT, INSERT ON llm_usage TO switchboard_app;
GRANT USAGE, SELECT ON SEQUENCE llm_usage_id_seq TO switchboard_app;
