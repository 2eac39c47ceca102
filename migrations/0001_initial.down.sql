DROP TABLE job_transitions;
DROP TABLE pipeline_streams;
DROP TABLE pipelines;
DROP TABLE connections;
DROP TABLE streams;
DROP TABLE api_keys;
DROP TABLE accounts;
DROP TABLE tiers;
