-- A job's attempt limit was the column default (8), so the server's `jobs.max_attempts` setting
-- had no effect. The column is now an optional per-job override: NULL means the server's setting,
-- applied when an attempt fails (so a changed setting also governs jobs already queued). Queued
-- jobs still carrying the old default take the setting.
ALTER TABLE jobs
    ALTER COLUMN max_attempts DROP DEFAULT,
    ALTER COLUMN max_attempts DROP NOT NULL,
    ADD CONSTRAINT jobs_max_attempts_positive CHECK (max_attempts IS NULL OR max_attempts >= 1);
UPDATE jobs SET max_attempts = NULL WHERE max_attempts = 8 AND status <> 'dead';
