-- Notices to a business about its own account ("your monthly AI quota is used up"): listed and
-- acknowledged through the API and, when the tenant has a notification webhook
-- (tenants.settings.notifications.webhook_url), posted to it by a `notice_webhook` job.
--
-- A notice is raised at most once per (kind, period): `period` is the dedupe key of the
-- occurrence (for a monthly quota, the month `YYYY-MM`), so every message that finds the quota
-- used up may try to raise it and only the first one does (INSERT … ON CONFLICT DO NOTHING on
-- `tenant_notices_once`).
CREATE TABLE tenant_notices (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind ~ '^[a-z0-9_]{1,64}$'),
    period           text NOT NULL CHECK (length(period) BETWEEN 1 AND 64),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body             text NOT NULL CHECK (length(body) <= 2000),
    -- Structured facts behind the text (the quota, the month, when it resets), for programs.
    detail           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Set once, by the first acknowledgement.
    acknowledged_at  timestamptz,
    -- When the notification webhook accepted it (NULL: no webhook, or not yet).
    delivered_at     timestamptz,
    CONSTRAINT tenant_notices_once UNIQUE (tenant_id, kind, period)
);
-- Listing is newest first per tenant, keyset-paginated on (created_at, id).
CREATE INDEX tenant_notices_recent ON tenant_notices (tenant_id, created_at DESC, id DESC);
ALTER TABLE tenant_notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_notices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_notices USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());
GRANT SELECT, INSERT, UPDATE ON tenant_notices TO switchboard_app;

-- `notice_webhook` is the first job kind claimed through the leased path (`jobs::claim`: claim,
-- commit, call, complete), and that claim runs on every iteration of every worker loop. Walking `jobs_ready` it would step
-- over every queued agent turn to find the rare leased job (2.3 ms with 5,000 turns queued,
-- growing with the backlog). Agent turns are only ever claimed by their transactional handler
-- (which leases the turns it defers itself), so the leased claim says `kind <> 'agent_turn'`
-- and walks this index, which queued agent turns never enter (0.02 ms). Turns pay only the
-- predicate check on insert.
CREATE INDEX jobs_ready_leased ON jobs (id) WHERE status = 'queued' AND kind <> 'agent_turn';
