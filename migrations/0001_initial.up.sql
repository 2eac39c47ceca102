-- Tiers: per-tier limits are data, not code.
CREATE TABLE tiers (
  name                     text PRIMARY KEY CHECK (name IN ('FREE', 'PAID')),
  max_active_jobs          integer NOT NULL CHECK (max_active_jobs >= 0),
  max_task_count           integer NOT NULL CHECK (max_task_count >= 0),
  max_concurrent_previews  integer NOT NULL CHECK (max_concurrent_previews >= 0)
);
INSERT INTO tiers (name, max_active_jobs, max_task_count, max_concurrent_previews) VALUES
  ('FREE', 2, 4, 1),
  ('PAID', 50, 200, 5);

CREATE TABLE accounts (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  tier        text NOT NULL REFERENCES tiers (name),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id            uuid PRIMARY KEY,
  account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name          text NOT NULL,
  role          text NOT NULL CHECK (role IN ('ADMIN', 'MEMBER', 'VIEWER')),
  prefix        text NOT NULL,
  key_hash      bytea NOT NULL UNIQUE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
CREATE INDEX api_keys_account_idx ON api_keys (account_id, created_at, id);
CREATE INDEX api_keys_prefix_idx ON api_keys (prefix);

CREATE TABLE streams (
  id           uuid PRIMARY KEY,
  account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name         text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('APPEND', 'CHANGE')),
  fields       jsonb NOT NULL,
  primary_key  jsonb NOT NULL DEFAULT '[]',
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, name)
);
CREATE INDEX streams_account_idx ON streams (account_id, created_at, id);

CREATE TABLE connections (
  id                 uuid PRIMARY KEY,
  account_id         uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name               text NOT NULL,
  connector          text NOT NULL,
  type               text NOT NULL CHECK (type IN ('SOURCE', 'SINK')),
  stream_id          uuid NOT NULL REFERENCES streams (id) ON DELETE RESTRICT,
  properties         jsonb NOT NULL DEFAULT '{}',
  secret_properties  jsonb NOT NULL DEFAULT '{}',
  task_size          text NOT NULL CHECK (task_size IN ('S', 'M', 'L')),
  task_count         integer NOT NULL CHECK (task_count >= 1),
  desired_state      text NOT NULL DEFAULT 'INACTIVE' CHECK (desired_state IN ('ACTIVE', 'INACTIVE')),
  actual_state       text NOT NULL DEFAULT 'STOPPED',
  actual_reason      text,
  spec_version       integer NOT NULL DEFAULT 1,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, name)
);
CREATE INDEX connections_account_idx ON connections (account_id, created_at, id);
CREATE INDEX connections_stream_idx ON connections (stream_id);

CREATE TABLE pipelines (
  id             uuid PRIMARY KEY,
  account_id     uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name           text NOT NULL,
  sql            text NOT NULL,
  task_size      text NOT NULL CHECK (task_size IN ('S', 'M', 'L')),
  task_count     integer NOT NULL CHECK (task_count >= 1),
  desired_state  text NOT NULL DEFAULT 'INACTIVE' CHECK (desired_state IN ('ACTIVE', 'INACTIVE')),
  actual_state   text NOT NULL DEFAULT 'STOPPED',
  actual_reason  text,
  spec_version   integer NOT NULL DEFAULT 1,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, name)
);
CREATE INDEX pipelines_account_idx ON pipelines (account_id, created_at, id);

-- Which streams a pipeline reads (INPUT) and writes (OUTPUT); written with the pipeline.
CREATE TABLE pipeline_streams (
  pipeline_id  uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  stream_id    uuid NOT NULL REFERENCES streams (id) ON DELETE RESTRICT,
  role         text NOT NULL CHECK (role IN ('INPUT', 'OUTPUT')),
  PRIMARY KEY (pipeline_id, stream_id, role)
);
CREATE INDEX pipeline_streams_stream_idx ON pipeline_streams (stream_id);

-- Observed state transitions of pipelines and connections.
CREATE TABLE job_transitions (
  id          bigserial PRIMARY KEY,
  account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  job_kind    text NOT NULL CHECK (job_kind IN ('PIPELINE', 'CONNECTION')),
  job_id      uuid NOT NULL,
  state       text NOT NULL,
  reason      text,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_transitions_job_idx ON job_transitions (job_id, id);
