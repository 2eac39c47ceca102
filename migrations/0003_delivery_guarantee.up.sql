-- How each job delivers what it writes, and how often it checkpoints.
-- EXACTLY_ONCE: writes to Kafka go in transactions committed on checkpoints, and every
-- reader of a stream reads committed records only. AT_LEAST_ONCE: writes are visible at
-- once, and a failure may write again what followed the last checkpoint.
-- checkpoint_interval_ms NULL: the runtime's default.
ALTER TABLE pipelines
  ADD COLUMN delivery_guarantee     text    NOT NULL DEFAULT 'EXACTLY_ONCE'
    CHECK (delivery_guarantee IN ('EXACTLY_ONCE', 'AT_LEAST_ONCE')),
  ADD COLUMN checkpoint_interval_ms integer CHECK (checkpoint_interval_ms BETWEEN 1000 AND 600000);

ALTER TABLE connections
  ADD COLUMN delivery_guarantee     text    NOT NULL DEFAULT 'EXACTLY_ONCE'
    CHECK (delivery_guarantee IN ('EXACTLY_ONCE', 'AT_LEAST_ONCE')),
  ADD COLUMN checkpoint_interval_ms integer CHECK (checkpoint_interval_ms BETWEEN 1000 AND 600000);

-- A Kafka sink's guarantee was its `sink.delivery-guarantee` property: it moves to the column.
UPDATE connections
  SET delivery_guarantee = CASE WHEN properties->>'sink.delivery-guarantee' = 'exactly-once' THEN 'EXACTLY_ONCE' ELSE 'AT_LEAST_ONCE' END,
      properties = properties - 'sink.delivery-guarantee'
  WHERE connector = 'kafka' AND type = 'SINK';

-- A JDBC sink is exactly-once only by upserting on the stream's primary key.
UPDATE connections c
  SET delivery_guarantee = 'AT_LEAST_ONCE'
  FROM streams s
  WHERE c.stream_id = s.id AND c.connector = 'jdbc' AND jsonb_array_length(s.primary_key) = 0;
