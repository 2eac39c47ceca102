-- Savepoints a job keeps: taken on demand (snapshotPipeline, snapshotConnection) and when
-- it is deactivated. A row is written once the savepoint is complete; its files are the
-- runtime's (`location`) and go when the retention drops the row or the job is deleted.
-- state_generation / spec_version: what the job was running when it was taken.
CREATE TABLE job_snapshots (
  id               uuid PRIMARY KEY,
  account_id       uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  job_kind         text NOT NULL CHECK (job_kind IN ('PIPELINE', 'CONNECTION')),
  job_id           uuid NOT NULL,
  trigger          text NOT NULL CHECK (trigger IN ('ON_DEMAND', 'DEACTIVATION')),
  state_generation integer NOT NULL,
  spec_version     integer NOT NULL,
  location         text NOT NULL,
  size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
  pinned           boolean NOT NULL DEFAULT false,
  taken_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_snapshots_job_idx ON job_snapshots (job_id, taken_at DESC);

-- The snapshot a state generation starts from (activation with fromSnapshot): restored
-- until the generation has a checkpoint of its own. NULL: it starts from its start positions.
ALTER TABLE pipelines ADD COLUMN initial_snapshot text;
ALTER TABLE connections ADD COLUMN initial_snapshot text;
