-- Each account's rate schedule (purgekit_core::RateState as JSON), shared by every process
-- using the journal: a request's start is claimed in one transaction that reads and writes it.
CREATE TABLE rate_states (
    account    TEXT   PRIMARY KEY,        -- provider kind / account identity
    state      TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL
);
