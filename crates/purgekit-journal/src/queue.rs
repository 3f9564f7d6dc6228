//! Runs queued for a service (`purgekit serve`): submitted without being run, taken by
//! whichever instance's worker leases them first, oldest first.
//!
//! A queued run is an ordinary unfinished run that nobody holds (no owner, lease expired), so
//! everything else — [`Journal::claim`]'s conditional takeover (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), renewal, [`Journal::finish`], reports — is the journal's own.

use std::collections::BTreeMap;

use purgekit_core::{PurgeRequest, Result, RunId};

use crate::journal::{Claimed, Journal, get, now_ms, parse_run_id};

/// Queued runs on one provider: how many, and since when the oldest waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Runs waiting for a worker.
    pub runs: i64,
    /// When the oldest of them was submitted, in milliseconds since the Unix epoch.
    pub oldest_ms: Option<i64>,
}

impl Journal {
    /// Writes a run of `request` on `providers` without running it: it waits, queued, until a
    /// worker takes it ([`Journal::next_queued`]). With `key`, a run submitted before with the
    /// same key is returned instead of a new one. Returns the run and whether it is new.
    pub async fn submit(
        &self,
        request: &PurgeRequest,
        providers: &[String],
        key: Option<&str>,
    ) -> Result<(RunId, bool)> {
        if let Some(key) = key
            && let Some(run) = self.run_of_key(key).await?
        {
            return Ok((run, false));
        }
        let run = self.start_run(request, providers).await?;
        self.written(run).await?;
        // Given up at once: no owner, no lease, so any worker may take it.
        sqlx::query("UPDATE runs SET owner = '', lease_until_ms = 0 WHERE id = $1")
            .bind(run.to_string())
            .execute(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        let Some(key) = key else {
            return Ok((run, true));
        };
        sqlx::query(
            "INSERT INTO run_keys (key, run_id) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(run.to_string())
        .execute(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        // Two submissions with one key at once: the first one stored wins, the other run goes.
        let winner = self.run_of_key(key).await?.unwrap_or(run);
        if winner != run {
            sqlx::query("DELETE FROM runs WHERE id = $1")
                .bind(run.to_string())
                .execute(self.pool())
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok((winner, winner == run))
    }

    async fn run_of_key(&self, key: &str) -> Result<Option<RunId>> {
        let row = sqlx::query("SELECT run_id FROM run_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        row.map(|row| parse_run_id(&get::<String>(&row, 0)?))
            .transpose()
    }

    /// Takes the oldest queued run (unfinished, its lease run out) for this process, as
    /// [`Journal::claim`] does; `None` when there is none to take.
    pub async fn next_queued(&self) -> Result<Option<Claimed>> {
        let rows = sqlx::query(
            "SELECT id FROM runs WHERE state = 'running' AND lease_until_ms < $1 \
             ORDER BY started_ms LIMIT 16",
        )
        .bind(now_ms())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        for row in rows {
            let id = parse_run_id(&get::<String>(&row, 0)?)?;
            // Another worker may win it between the two statements: try the next one.
            if let Ok(claimed) = self.claim(Some(id)).await {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }

    /// Queued runs (unfinished, held by nobody) by provider.
    pub async fn queue_depth(&self) -> Result<BTreeMap<String, QueueDepth>> {
        let rows = sqlx::query(
            "SELECT providers, started_ms FROM runs WHERE state = 'running' AND lease_until_ms < $1",
        )
        .bind(now_ms())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.error(e))?;
        let mut depth: BTreeMap<String, QueueDepth> = BTreeMap::new();
        for row in rows {
            let providers: Vec<String> =
                serde_json::from_str(&get::<String>(&row, 0)?).map_err(|e| self.error(e))?;
            let started: i64 = get(&row, 1)?;
            for provider in providers {
                let entry = depth.entry(provider).or_default();
                entry.runs += 1;
                entry.oldest_ms = Some(entry.oldest_ms.map_or(started, |o| o.min(started)));
            }
        }
        Ok(depth)
    }

    /// Whether the journal answers (for a readiness probe).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}
