//! [`RunJournal`]: the [`RunLog`] the engine writes one run's plans and batch transitions to.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use purgekit_core::{
    BatchRecord, Batches, Error, ProviderPlan, PurgeRequest, RecordedPart, Result, RunId, RunLog,
    RunRecord, Text,
};

use crate::Journal;
use crate::codec;
use crate::journal::{get, now_ms, parse_run_id};

/// How often a batch following another run's waits for it is looked at.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Another run's batch that one of this run's follows.
#[derive(Debug, Clone)]
struct Followed {
    run: RunId,
    provider: String,
    batch: usize,
}

/// A batch's new state and what comes with it.
struct Transition<'a> {
    state: &'a str,
    attempts: u32,
    /// The handles (JSON), when accepted.
    parts: Option<String>,
    /// Per slot its part, for a shared-scope batch.
    slots: Option<Vec<u8>>,
    /// The row's error, when failed.
    error: Option<&'a str>,
}

impl<'a> Transition<'a> {
    fn to(state: &'a str, attempts: u32) -> Self {
        Transition {
            state,
            attempts,
            parts: None,
            slots: None,
            error: None,
        }
    }
}

/// One run's log in a [`Journal`].
pub(crate) struct RunJournal {
    journal: Journal,
    run: RunId,
    id: String,
    /// (provider, batch) → the other run's batch it follows.
    follows: Mutex<HashMap<(String, usize), Followed>>,
}

impl RunJournal {
    pub(crate) fn new(journal: Journal, run: RunId) -> Self {
        RunJournal {
            journal,
            run,
            id: run.to_string(),
            follows: Mutex::new(HashMap::new()),
        }
    }

    /// The batches of `plan` whose targets, in order, are exactly those of a batch not yet
    /// settled (queued, or waiting for its turn) in another live unfinished run on the same
    /// account with the same options.
    async fn queued_elsewhere(
        &self,
        plan: &ProviderPlan,
        account: &str,
        options: &str,
        request: &PurgeRequest,
    ) -> Result<Vec<Option<Followed>>> {
        let mut found = vec![None; plan.batches().len()];
        let others = sqlx::query(
            "SELECT p.run_id, p.provider, p.plan, r.target_count FROM run_plans p \
             JOIN runs r ON r.id = p.run_id WHERE r.state = 'running' AND p.kind = $1 \
             AND p.account = $2 AND p.options_key = $3 AND p.run_id <> $4 \
             ORDER BY r.started_ms",
        )
        .bind(&plan.kind)
        .bind(account)
        .bind(options)
        .bind(&self.id)
        .fetch_all(self.journal.pool())
        .await
        .map_err(|e| self.journal.error(e))?;
        if others.is_empty() {
            return Ok(found);
        }
        // This plan's batches by their targets' text.
        let mut mine: HashMap<Vec<Text>, usize> = HashMap::new();
        for (index, batch) in plan.batches().iter().enumerate() {
            let texts = batch
                .targets
                .iter()
                .map(|&t| request.targets()[t as usize].shared_text())
                .collect();
            mine.entry(texts).or_insert(index);
        }
        for row in others {
            let run = parse_run_id(&get::<String>(&row, 0)?)?;
            let provider: String = get(&row, 1)?;
            if !self.journal.is_live(run).await? {
                continue;
            }
            let blob: Vec<u8> = get(&row, 2)?;
            let count = get::<i64>(&row, 3)? as usize;
            let theirs = codec::decode_plan(&blob, &provider, &plan.kind, count)?;
            let left = self.journal.unsettled(run, &provider).await?;
            let texts = self.journal.target_texts(run).await?;
            for (batch, planned) in theirs.batches().iter().enumerate() {
                if !left.contains(&batch) {
                    continue;
                }
                let key: Vec<Text> = planned
                    .targets
                    .iter()
                    .map(|&t| texts.get(t as usize).cloned().unwrap_or_default())
                    .collect();
                if let Some(&index) = mine.get(&key)
                    && found[index].is_none()
                {
                    found[index] = Some(Followed {
                        run,
                        provider: provider.clone(),
                        batch,
                    });
                }
            }
        }
        Ok(found)
    }

    /// Writes batch `batch`'s state (one statement: it is one durable commit).
    async fn set(&self, provider: &str, batch: usize, to: Transition<'_>) -> Result<()> {
        let Transition {
            state,
            attempts,
            parts,
            slots,
            error,
        } = to;
        sqlx::query(
            "INSERT INTO batch_states (run_id, provider, idx, state, attempts, parts, slots, \
             error, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (run_id, provider, idx) DO UPDATE SET state = excluded.state, \
             attempts = excluded.attempts, parts = COALESCE(excluded.parts, batch_states.parts), \
             slots = COALESCE(excluded.slots, batch_states.slots), error = excluded.error, \
             updated_ms = excluded.updated_ms",
        )
        .bind(&self.id)
        .bind(provider)
        .bind(batch as i64)
        .bind(state)
        .bind(i64::from(attempts))
        .bind(parts)
        .bind(slots)
        .bind(error)
        .bind(now_ms())
        .execute(self.journal.pool())
        .await
        .map_err(|e| self.journal.error(e))?;
        Ok(())
    }
}

/// Whether two plans send the same batches.
fn same_batches(a: &Batches, b: &Batches) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|(a, b)| a.scope == b.scope && a.targets == b.targets)
}

#[async_trait]
impl RunLog for RunJournal {
    async fn planned(
        &self,
        plan: &ProviderPlan,
        account: &str,
        request: &PurgeRequest,
    ) -> Result<RunRecord> {
        // The run and its targets first: nothing of this run is sent before they are durable.
        self.journal.written(self.run).await?;
        let targets = request.targets().len();
        if let Some((stored, record)) = self.journal.load(self.run, &plan.provider, targets).await?
        {
            if !same_batches(stored.batches(), plan.batches()) {
                return Err(Error::config(
                    format!("providers.{}", plan.provider),
                    format!(
                        "run {} was planned into other batches than this config plans now \
                         (its limits or mapping changed): resume it with the config it started \
                         with",
                        self.run
                    ),
                ));
            }
            return Ok(record);
        }
        let blob = codec::encode_plan(plan);
        let options =
            serde_json::to_string(request.options()).map_err(|e| self.journal.error(e))?;
        let follows = self
            .queued_elsewhere(plan, account, &options, request)
            .await?;
        sqlx::query(
            "INSERT INTO run_plans (run_id, provider, kind, account, options_key, batch_count, \
             plan) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&self.id)
        .bind(&plan.provider)
        .bind(&plan.kind)
        .bind(account)
        .bind(options)
        .bind(plan.batches().len() as i64)
        .bind(blob)
        .execute(self.journal.pool())
        .await
        .map_err(|e| self.journal.error(e))?;
        let mut batches = vec![BatchRecord::Queued; plan.batches().len()];
        let mut notes = vec![None; plan.batches().len()];
        let mut following = self.follows.lock().unwrap_or_else(|e| e.into_inner());
        for (index, followed) in follows.into_iter().enumerate() {
            if let Some(followed) = followed {
                batches[index] = BatchRecord::Follows;
                notes[index] = Some(format!(
                    "queued first in run {} (its request {}): purged once, with it",
                    followed.run,
                    followed.batch + 1
                ));
                following.insert((plan.provider.clone(), index), followed);
            }
        }
        Ok(RunRecord {
            id: self.run,
            batches,
            notes,
        })
    }

    async fn sending(&self, provider: &str, batch: usize, attempt: u32) -> Result<()> {
        self.set(provider, batch, Transition::to("sending", attempt))
            .await
    }

    async fn accepted(
        &self,
        provider: &str,
        batch: usize,
        parts: &[RecordedPart],
        slots: &[u32],
        attempts: u32,
    ) -> Result<()> {
        let parts = serde_json::to_string(parts).map_err(|e| self.journal.error(e))?;
        let slots = (!slots.is_empty()).then(|| codec::encode_u32s(slots));
        let to = Transition {
            parts: Some(parts),
            slots,
            ..Transition::to("accepted", attempts)
        };
        self.set(provider, batch, to).await
    }

    async fn failed(&self, provider: &str, batch: usize, error: &str, attempts: u32) -> Result<()> {
        let to = Transition {
            error: Some(error),
            ..Transition::to("failed", attempts)
        };
        self.set(provider, batch, to).await
    }

    async fn follow(&self, provider: &str, batch: usize) -> Result<BatchRecord> {
        let followed = self
            .follows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(provider.to_owned(), batch))
            .cloned();
        let Some(followed) = followed else {
            return Ok(BatchRecord::Queued);
        };
        loop {
            let record = self
                .journal
                .batch_record(followed.run, &followed.provider, followed.batch)
                .await?;
            match &record {
                BatchRecord::Accepted {
                    parts,
                    slots,
                    attempts,
                }
                | BatchRecord::Completed {
                    parts,
                    slots,
                    attempts,
                } => {
                    self.accepted(provider, batch, parts, slots, *attempts)
                        .await?;
                    if matches!(record, BatchRecord::Completed { .. }) {
                        self.completed(provider, batch).await?;
                    }
                    return Ok(record);
                }
                BatchRecord::Failed { error, attempts } => {
                    self.failed(provider, batch, error, *attempts).await?;
                    return Ok(record);
                }
                _ if !self.journal.is_live(followed.run).await? => {
                    return Ok(BatchRecord::Queued);
                }
                _ => tokio::time::sleep(FOLLOW_POLL).await,
            }
        }
    }

    async fn completed(&self, provider: &str, batch: usize) -> Result<()> {
        sqlx::query(
            "UPDATE batch_states SET state = 'completed', updated_ms = $1 \
             WHERE run_id = $2 AND provider = $3 AND idx = $4",
        )
        .bind(now_ms())
        .bind(&self.id)
        .bind(provider)
        .bind(batch as i64)
        .execute(self.journal.pool())
        .await
        .map_err(|e| self.journal.error(e))?;
        Ok(())
    }
}
