-- Where a job's state lives and where it starts without any.
-- state_generation: the job's state folder; a new generation starts with no state
--   (activation with restore NONE). Checkpoints and savepoints of one generation carry
--   over deactivations and updates.
-- start_positions: where each input stream (by id) is read from when the generation
--   starts without state, resolved at activation (LATEST is the offset it had then), so
--   a restart before the first checkpoint starts from the same place.
-- state_started_at: when the generation was first activated; NULL: never, so a start
--   position may still be chosen without discarding anything.
ALTER TABLE pipelines
  ADD COLUMN state_generation integer     NOT NULL DEFAULT 1 CHECK (state_generation >= 1),
  ADD COLUMN start_positions  jsonb       NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN state_started_at timestamptz;

ALTER TABLE connections
  ADD COLUMN state_generation integer     NOT NULL DEFAULT 1 CHECK (state_generation >= 1),
  ADD COLUMN start_positions  jsonb       NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN state_started_at timestamptz;

-- Jobs activated before this migration have run.
UPDATE pipelines SET state_started_at = created_at WHERE desired_state = 'ACTIVE' OR actual_state <> 'STOPPED';
UPDATE connections SET state_started_at = created_at WHERE desired_state = 'ACTIVE' OR actual_state <> 'STOPPED';
