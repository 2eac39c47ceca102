UPDATE connections
  SET properties = properties || jsonb_build_object('sink.delivery-guarantee',
        CASE delivery_guarantee WHEN 'EXACTLY_ONCE' THEN 'exactly-once' ELSE 'at-least-once' END)
  WHERE connector = 'kafka' AND type = 'SINK';

ALTER TABLE pipelines DROP COLUMN delivery_guarantee, DROP COLUMN checkpoint_interval_ms;
ALTER TABLE connections DROP COLUMN delivery_guarantee, DROP COLUMN checkpoint_interval_ms;
