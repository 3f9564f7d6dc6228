//! [`RunJournal`]: the [`RunLog`] the engine writes one run's plans and batch transitions to.

use async_trait::async_trait;
use purgekit_core::{
    BatchPlan, Error, ProviderPlan, PurgeRequest, RecordedPart, Result, RunId, RunLog, RunRecord,
};

use crate::Journal;
use crate::codec;
use crate::journal::now_ms;

/// One run's log in a [`Journal`].
pub(crate) struct RunJournal {
    journal: Journal,
    run: RunId,
    id: String,
}

impl RunJournal {
    pub(crate) fn new(journal: Journal, run: RunId) -> Self {
        RunJournal {
            journal,
            run,
            id: run.to_string(),
        }
    }

    /// Writes batch `batch`'s state (one statement: it is one durable commit).
    async fn set(
        &self,
        provider: &str,
        batch: usize,
        state: &str,
        attempts: u32,
        parts: Option<String>,
        slots: Option<Vec<u8>>,
        error: Option<&str>,
    ) -> Result<()> {
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
fn same_batches(a: &[BatchPlan], b: &[BatchPlan]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
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
        let targets = request.targets().len();
        if let Some((stored, record)) = self.journal.load(self.run, &plan.provider, targets).await?
        {
            if !same_batches(&stored.batches, &plan.batches) {
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
        sqlx::query(
            "INSERT INTO run_plans (run_id, provider, kind, account, options_key, batch_count, \
             plan) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&self.id)
        .bind(&plan.provider)
        .bind(&plan.kind)
        .bind(account)
        .bind(options)
        .bind(plan.batches.len() as i64)
        .bind(blob)
        .execute(self.journal.pool())
        .await
        .map_err(|e| self.journal.error(e))?;
        Ok(RunRecord {
            id: self.run,
            batches: vec![purgekit_core::BatchRecord::Queued; plan.batches.len()],
            notes: Vec::new(),
        })
    }

    async fn sending(&self, provider: &str, batch: usize, attempt: u32) -> Result<()> {
        self.set(provider, batch, "sending", attempt, None, None, None)
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
        self.set(
            provider,
            batch,
            "accepted",
            attempts,
            Some(parts),
            slots,
            None,
        )
        .await
    }

    async fn failed(&self, provider: &str, batch: usize, error: &str, attempts: u32) -> Result<()> {
        self.set(provider, batch, "failed", attempts, None, None, Some(error))
            .await
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
