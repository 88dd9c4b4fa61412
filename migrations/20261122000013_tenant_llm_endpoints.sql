-- A tenant's own OpenAI-compatible LLM endpoint (its OpenAI, Azure-style proxy, Ollama, vLLM or
-- llama.cpp server), used instead of the server's `[llm]` for that tenant's conversations. At most
-- one per tenant; no row = the server's LLM (when one is configured). Whether the tenant uses an
-- LLM at all, and its monthly quota, stay in `tenants.settings.llm`.
--
-- `api_key` is sealed with the server's secrets key (XChaCha20-Poly1305, nonce in front), like
-- channel secrets and the webhook secret; NULL = no key (local servers). It is write-only: the API
-- says whether one is stored, never what it is. `timeout_ms` NULL = the server's per-attempt
-- timeout. The URL carries no credentials, query or fragment (the API refuses them), so showing it
-- back is safe.
CREATE TABLE tenant_llm_endpoints (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    base_url    text NOT NULL CHECK (base_url ~ '^https?://' AND length(base_url) <= 2000),
    model       text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    api_key     bytea,
    timeout_ms  integer CHECK (timeout_ms BETWEEN 100 AND 120000),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenant_llm_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_llm_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_llm_endpoints USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_llm_endpoints TO switchboard_app;
