-- A tenant's own wording for the default prompt templates: for all its flows (flow_key '') or
-- for one flow key. The agent applies tenant-wide overrides, then the flow's, on top of the
-- defaults in prompts/ (and a flow's inline texts win over both).
CREATE TABLE prompt_overrides (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    flow_key    text NOT NULL DEFAULT '',
    name        text NOT NULL CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    source      text NOT NULL CHECK (length(source) <= 20000),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, flow_key, name)
);
ALTER TABLE prompt_overrides ENABLE ROW LEVEL SECURITY;
ALTER TABLE prompt_overrides FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON prompt_overrides USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON prompt_overrides TO switchboard_app;
