-- A submitted run's work, one unit per provider: "this run's work on this provider account",
-- leased on its own by a service's worker (`purgekit serve`), so workers move between
-- accounts instead of one slow account holding them all. A run with units is finished when
-- its last unit is. Runs started by `purgekit purge` have none: their process drives them
-- whole under the run's own lease.
CREATE TABLE run_units (
    run_id         TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    provider       TEXT   NOT NULL,
    account        TEXT   NOT NULL,      -- kind/account, as rate_states and plan_locks key it
    state          TEXT   NOT NULL,      -- queued (never taken) | running | finished
    owner          TEXT   NOT NULL,      -- host:pid:token of the process driving it, or ''
    lease_until_ms BIGINT NOT NULL,      -- taken by no other worker before (also a backoff)
    failures       BIGINT NOT NULL,      -- failed attempts (the service backs off, gives up)
    error          TEXT,                 -- why it was given up on: its unsettled batches failed
    queued_ms      BIGINT NOT NULL,      -- the run's submission: oldest first
    updated_ms     BIGINT NOT NULL,
    PRIMARY KEY (run_id, provider)
);
CREATE INDEX run_units_free ON run_units (state, account, queued_ms);
