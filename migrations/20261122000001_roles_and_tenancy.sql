-- Roles, the tenant setting, and the tenancy tables.
--
-- The server runs every tenant query as `switchboard_app`, a role that owns nothing and is not a
-- superuser, inside a transaction that has done `set_config('app.tenant_id', <id>, true)`. Every
-- tenant-owned table has row-level security FORCEd with a policy on that setting, so a query that
-- forgets its `WHERE tenant_id = ...` still sees only the current tenant's rows.
--
-- Roles are cluster-wide while migrations run once per database, and tests migrate many databases
-- in parallel: creating the role must tolerate a concurrent creator.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard_app') THEN
        CREATE ROLE switchboard_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO switchboard_app;

-- The tenant of the current transaction, or NULL when none is set (then every policy hides all rows).
CREATE FUNCTION sb_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

GRANT EXECUTE ON FUNCTION sb_tenant() TO switchboard_app;

-- A business using the deployment.
CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- IANA zone used for dates the customer types ("tomorrow") and for availability.
    timezone    text NOT NULL DEFAULT 'UTC',
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (id = sb_tenant()) WITH CHECK (id = sb_tenant());

-- API keys. Only a SHA-256 of the key is stored; the key itself is shown once, at creation.
-- A key with tenant_id NULL is a platform admin key (scope 'admin'); admin keys are looked up and
-- used through the system pool only, never through the runtime role.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    tenant_id     uuid REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL,
    -- First characters of the key, to tell keys apart in listings.
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    scopes        text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    CHECK (tenant_id IS NOT NULL OR 'admin' = ANY (scopes))
);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- Human agents who log in to the console. Passwords are argon2id PHC strings.
CREATE TABLE agents (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email          text NOT NULL CHECK (email = lower(email)),
    display_name   text NOT NULL,
    password_hash  text NOT NULL,
    role           text NOT NULL DEFAULT 'agent' CHECK (role IN ('admin', 'agent')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
);
ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE agents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agents USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- A channel the business talks on. `public_key` routes unauthenticated traffic (the web-chat
-- widget, provider webhooks) to its tenant; it is an identifier, not a secret. Provider tokens live
-- in `secrets`, encrypted (XChaCha20-Poly1305) with a key from the environment.
CREATE TABLE channels (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('webchat', 'whatsapp_cloud', 'twilio', 'telegram', 'email')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    public_key  text NOT NULL UNIQUE,
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    secrets     bytea,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
ALTER TABLE channels ENABLE ROW LEVEL SECURITY;
ALTER TABLE channels FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON channels USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());
