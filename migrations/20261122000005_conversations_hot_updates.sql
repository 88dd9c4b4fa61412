-- Every message updates its conversation (last_seq, last_message_at, flow state). When an updated
-- column is indexed, PostgreSQL cannot do a HOT (heap-only) update: each update adds entries to
-- every index and leaves a dead version behind, and under load lookups by id wade through
-- thousands of dead versions (measured: 1,500 live rows, 88,000 dead, 13 ms per lookup).
--
-- So no index may contain a column that changes per message. The inbox list sorts by
-- last_message_at within a tenant and status, which PostgreSQL does with a top-N sort over the
-- tenant's rows found by the (tenant_id, status) index.
DROP INDEX conversations_tenant_recent;
CREATE INDEX conversations_tenant_status ON conversations (tenant_id, status);

-- Room on each page for new row versions, so HOT updates stay on the page and are pruned
-- without waiting for vacuum; and vacuum after a fixed number of dead rows.
ALTER TABLE conversations SET (
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_cost_delay = 0
);
