-- Tenant safety: how many objects an account may hold and how many subscriptions it may
-- keep open, per tier. Object counts bound what one request can make the gateway walk;
-- subscription counts bound what one key or account can make the gateway hold.
ALTER TABLE tiers
  ADD COLUMN max_streams                    integer NOT NULL DEFAULT 50  CHECK (max_streams >= 0),
  ADD COLUMN max_pipelines                  integer NOT NULL DEFAULT 50  CHECK (max_pipelines >= 0),
  ADD COLUMN max_connections                integer NOT NULL DEFAULT 50  CHECK (max_connections >= 0),
  ADD COLUMN max_subscriptions_per_key      integer NOT NULL DEFAULT 50  CHECK (max_subscriptions_per_key >= 0),
  ADD COLUMN max_subscriptions_per_account  integer NOT NULL DEFAULT 100 CHECK (max_subscriptions_per_account >= 0);

UPDATE tiers SET max_streams = 50, max_pipelines = 50, max_connections = 50,
                 max_subscriptions_per_key = 50, max_subscriptions_per_account = 100
  WHERE name = 'FREE';
UPDATE tiers SET max_streams = 500, max_pipelines = 500, max_connections = 500,
                 max_subscriptions_per_key = 500, max_subscriptions_per_account = 2000
  WHERE name = 'PAID';
