-- Per-row costs on the ingest and turn paths, found with `perf` on PostgreSQL during the ingest
-- benchmark (docs/performance.md, fourth session).

-- 1. Row-level security: `tenant_id = sb_tenant()` was evaluated for every row a statement read or
--    wrote, each time reading the setting and parsing a uuid. Wrapped in a sub-select, the tenant
--    is an init plan: computed once per statement, then compared as a constant. Same policies.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT tablename FROM pg_policies
        WHERE schemaname = current_schema() AND policyname = 'tenant_isolation'
    LOOP
        IF t.tablename = 'tenants' THEN
            EXECUTE 'ALTER POLICY tenant_isolation ON tenants '
                'USING (id = (SELECT sb_tenant())) WITH CHECK (id = (SELECT sb_tenant()))';
        ELSE
            EXECUTE format('ALTER POLICY tenant_isolation ON %I '
                'USING (tenant_id = (SELECT sb_tenant())) '
                'WITH CHECK (tenant_id = (SELECT sb_tenant()))', t.tablename);
        END IF;
    END LOOP;
END
$$;

-- 2. jobs → tenants was a foreign key checked row by row (a KEY SHARE lock on the tenant's row for
--    every queued job: a sixth of an ingest batch's insert). What it gave, removing a deleted
--    tenant's jobs, a statement-level trigger keeps. Jobs are only ever queued by the server for
--    a tenant it has just read.
ALTER TABLE jobs DROP CONSTRAINT jobs_tenant_id_fkey;

CREATE FUNCTION sb_delete_jobs_of_deleted_tenants() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM jobs j USING gone WHERE j.tenant_id = gone.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_delete_jobs
    AFTER DELETE ON tenants
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION sb_delete_jobs_of_deleted_tenants();

-- 3. Statistics: the janitor analyzes the growing tables as they grow, and at the default target
--    each ANALYZE of `messages` or `jobs` sampled 30,000 rows and took ~180 ms of CPU (a tenth of
--    PostgreSQL's time during the ingest benchmark). Every lookup on these two tables is an
--    equality on a unique or partial index, which a 3,000-row sample estimates just as well
--    (~15 ms). Wide columns nobody filters on (bodies, JSON content, payloads, errors) keep none.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT a.attrelid::regclass AS tbl, a.attname,
               a.attname IN ('body', 'content', 'payload', 'provider_message_id', 'delivery_error',
                             'last_error', 'locked_by') AS wide
        FROM pg_attribute a
        WHERE a.attrelid IN ('messages'::regclass, 'jobs'::regclass)
          AND a.attnum > 0 AND NOT a.attisdropped
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s',
                       c.tbl, c.attname, CASE WHEN c.wide THEN 0 ELSE 10 END);
    END LOOP;
END
$$;
ALTER TABLE conversations
    ALTER COLUMN flow_state SET STATISTICS 0,
    ALTER COLUMN routing SET STATISTICS 0;
ALTER TABLE contacts
    ALTER COLUMN attributes SET STATISTICS 0;
