ALTER TABLE pipelines DROP COLUMN initial_snapshot;
ALTER TABLE connections DROP COLUMN initial_snapshot;
DROP TABLE job_snapshots;
