-- One purge run: its request (options here, target texts in run_targets), who is driving it
-- (owner, lease) and whether every batch is settled.
CREATE TABLE runs (
    id             TEXT    PRIMARY KEY,   -- the RunId: 32 hex digits, part of every BatchId
    started_ms     BIGINT  NOT NULL,
    updated_ms     BIGINT  NOT NULL,
    state          TEXT    NOT NULL,      -- running | finished
    request        TEXT    NOT NULL,      -- JSON: options, wait_ms, local_dry_run
    target_count   BIGINT  NOT NULL,
    providers      TEXT    NOT NULL,      -- JSON list of the provider names it runs on
    owner          TEXT    NOT NULL,      -- host:pid:token of the process driving it
    lease_until_ms BIGINT  NOT NULL
);
CREATE INDEX runs_by_state ON runs (state, started_ms);

-- The request's target texts, '\n'-separated, in chunks of a few MiB.
CREATE TABLE run_targets (
    run_id TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    chunk  BIGINT NOT NULL,
    texts  BLOB   NOT NULL,
    PRIMARY KEY (run_id, chunk)
);

-- One provider's plan of a run: every batch (scope, sizes, target indices) in one blob, the
-- targets not sent (unsupported, merged duplicates) and the plan's warnings.
CREATE TABLE run_plans (
    run_id      TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    provider    TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    account     TEXT   NOT NULL,
    options_key TEXT   NOT NULL,          -- the options as JSON: dedup compares runs by it
    batch_count BIGINT NOT NULL,
    plan        BLOB   NOT NULL,
    PRIMARY KEY (run_id, provider)
);
CREATE INDEX run_plans_by_account ON run_plans (kind, account);

-- A batch's state once it leaves `queued` (no row: queued).
CREATE TABLE batch_states (
    run_id     TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    provider   TEXT   NOT NULL,
    idx        BIGINT NOT NULL,
    state      TEXT   NOT NULL,           -- sending | accepted | completed | failed
    attempts   BIGINT NOT NULL,
    parts      TEXT,                      -- JSON: handles and their warnings
    slots      BLOB,                      -- per slot its part (u32 little-endian), shared scopes
    error      TEXT,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, provider, idx)
);
