-- Runs submitted to `purgekit serve` by an Idempotency-Key: the same key names the same run.
CREATE TABLE run_keys (
    key    TEXT PRIMARY KEY,              -- the client's Idempotency-Key
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE
);
