ALTER TABLE tiers
  DROP COLUMN max_streams,
  DROP COLUMN max_pipelines,
  DROP COLUMN max_connections,
  DROP COLUMN max_subscriptions_per_key,
  DROP COLUMN max_subscriptions_per_account;
