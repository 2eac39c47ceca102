ALTER TABLE pipelines DROP COLUMN state_generation, DROP COLUMN start_positions, DROP COLUMN state_started_at;
ALTER TABLE connections DROP COLUMN state_generation, DROP COLUMN start_positions, DROP COLUMN state_started_at;
