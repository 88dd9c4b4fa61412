-- The durable job queue and per-tenant flows.

-- Jobs. Claimed with FOR UPDATE SKIP LOCKED; a claim leases the job until locked_until, after which
-- another worker may take it over (the first one died). Successful jobs are deleted in the same
-- transaction as their effects, so an effect and its job's completion commit together.
--
-- ordering_key (a conversation id) serialises jobs: a job is claimable only when no job with the
-- same key and a smaller id is still queued or running. The id is a sequence, and ingest inserts a
-- conversation's jobs while holding that conversation's row lock, so ids follow message order.
CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             text NOT NULL,
    payload          jsonb NOT NULL,
    ordering_key     uuid,
    status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 8,
    run_at           timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,
    locked_by        text,
    last_error       text,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_ready ON jobs (id) WHERE status = 'queued';
CREATE INDEX jobs_expired_leases ON jobs (locked_until) WHERE status = 'running';
CREATE INDEX jobs_ordering ON jobs (ordering_key, id) WHERE status IN ('queued', 'running') AND ordering_key IS NOT NULL;
CREATE INDEX jobs_dead ON jobs (tenant_id, id) WHERE status = 'dead';
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, kind, idempotency_key) WHERE idempotency_key IS NOT NULL;
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobs USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- Flows, versioned per tenant. A published version is immutable; a conversation records the
-- (flow_key, version) it started on.
CREATE TABLE flows (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    flow_key    text NOT NULL CHECK (flow_key ~ '^[a-z0-9_]{1,64}$'),
    version     integer NOT NULL CHECK (version > 0),
    status      text NOT NULL CHECK (status IN ('draft', 'published', 'archived')),
    source      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    UNIQUE (tenant_id, flow_key, version)
);
ALTER TABLE flows ENABLE ROW LEVEL SECURITY;
ALTER TABLE flows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON flows USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO switchboard_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO switchboard_app;
