-- A service's attempts at a run that failed (`purgekit serve` backs off, then gives up), and
-- why it gave up: then every batch not settled is failed with this error, and a provider never
-- planned reports every target failed with it.
ALTER TABLE runs ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN error TEXT;
