-- The jobs table is a queue: every job is inserted, updated once or twice and deleted within
-- milliseconds, so dead tuples pile up far faster than the default autovacuum thresholds (20% of
-- the table) notice, and every claim then wades through dead index entries. Vacuum it after a
-- fixed number of dead rows instead, without cost-based throttling.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000
);
