-- A batch made, when its run was planned, of targets queued in a batch of another live run on
-- the same account with the same options: it follows that batch (takes its outcome) instead of
-- sending them again.
CREATE TABLE batch_follows (
    run_id            TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    provider          TEXT   NOT NULL,
    idx               BIGINT NOT NULL,
    followed_run      TEXT   NOT NULL,
    followed_provider TEXT   NOT NULL,
    followed_idx      BIGINT NOT NULL,
    slots             BLOB  NOT NULL,      -- per slot of this batch, its slot there (u32 LE)
    PRIMARY KEY (run_id, provider, idx)
);

-- One row per account (kind/account) planned on: a plan is written in a transaction that
-- first writes this row, so two runs planning on one account at once are serialized and the
-- second sees what the first queued.
CREATE TABLE plan_locks (
    account    TEXT   PRIMARY KEY,
    planned_ms BIGINT NOT NULL
);
