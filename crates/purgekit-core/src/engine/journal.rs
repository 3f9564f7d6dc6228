//! The journal seam: what the engine tells a durable run log ([`RunLog`]) as a purge goes, and
//! what it reads back from one to resume an interrupted run ([`RunRecord`]). Core holds no
//! storage: `purgekit-journal` implements [`RunLog`] over SQLite and PostgreSQL.
//!
//! The order is the guarantee: a provider's plan is written ([`RunLog::planned`]) before any of
//! its batches is sent, and each attempt is recorded as `sending` ([`RunLog::sending`]) before
//! its request leaves, so after a crash every batch is either known unsent, known accepted (with
//! its handles), known failed, or was being sent (and is sent again on resume).

use std::sync::Arc;

use async_trait::async_trait;

use super::rows;
use super::schedule::{BatchOutcome, SentPart};
use super::wait::Completion;
use crate::error::Result;
use crate::plan::{FollowGroup, ProviderPlan};
use crate::provider::{Accepted, RunId};
use crate::report::Report;
use crate::request::PurgeRequest;

/// Where one batch of a run stands in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchRecord {
    /// Not sent yet.
    Queued,
    /// An attempt was being sent when the run stopped: the provider may or may not have it.
    /// Resume sends it again.
    Sending,
    /// Accepted by the provider: never sent again; waited for when the request waits.
    Accepted {
        /// One part per handle (see [`crate::Provider::decode_shared`]).
        parts: Vec<RecordedPart>,
        /// Per slot, its part's index; empty when there is one part.
        slots: Vec<u32>,
        /// HTTP attempts it took.
        attempts: u32,
    },
    /// Accepted and seen complete.
    Completed {
        /// As for [`BatchRecord::Accepted`].
        parts: Vec<RecordedPart>,
        /// As for [`BatchRecord::Accepted`].
        slots: Vec<u32>,
        /// HTTP attempts it took.
        attempts: u32,
    },
    /// Failed for good (refused, or its purge failed at the provider): never sent again.
    Failed {
        /// The row's error text.
        error: String,
        /// HTTP attempts it took.
        attempts: u32,
    },
    /// Its targets are queued in one batch of another unfinished run on the same account with
    /// the same options: not sent here; the engine waits for that batch ([`RunLog::follow`])
    /// and takes its outcome, or sends it itself when that run stopped before sending it.
    Follows,
}

impl BatchRecord {
    /// Whether this run does not send the batch (now).
    pub fn is_sent(&self) -> bool {
        !matches!(self, BatchRecord::Queued | BatchRecord::Sending)
    }
}

/// One handle of an accepted batch, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedPart {
    /// The provider's handle.
    pub handle: String,
    /// The provider's warnings for its rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl RecordedPart {
    fn of(accepted: &Accepted) -> Self {
        RecordedPart {
            handle: accepted.handle.as_str().to_owned(),
            warnings: accepted.warnings.clone(),
        }
    }

    /// The part as the engine holds an accepted answer (no poll hint: it was given long ago).
    pub fn accepted(&self) -> Accepted {
        Accepted {
            handle: crate::provider::Handle(self.handle.clone()),
            poll_after: None,
            warnings: self.warnings.clone(),
        }
    }
}

/// A provider's part of a run as the journal holds it: the run's id (each batch's
/// [`crate::BatchId`] is made of it, so a resumed batch carries the same idempotency key) and
/// where each batch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run.
    pub id: RunId,
    /// One record per batch of the plan, in plan order.
    pub batches: Vec<BatchRecord>,
    /// Batch notes for the rows, one per batch (empty: none), e.g. that a target follows
    /// another run's batch.
    pub notes: Vec<Option<String>>,
    /// The plan to send instead of the one given to [`RunLog::planned`], when some of its
    /// targets follow other runs' batches (made by the [`Replan`] given; `batches` is this
    /// plan's).
    pub plan: Option<ProviderPlan>,
}

/// Plans again with some targets taken out of the packing, each group following one batch of
/// another run ([`crate::plan_following`] for the plan given to [`RunLog::planned`]).
pub type Replan<'a> = dyn Fn(&[FollowGroup]) -> Result<ProviderPlan> + Send + Sync + 'a;

/// A durable log of purge runs, told by the engine as a purge goes (see the module docs).
///
/// Handed to a purge through [`crate::PurgeContext::journal`]. An `Err` from
/// [`RunLog::planned`] stops that provider's purge before anything is sent; an `Err` from
/// [`RunLog::sending`] fails that batch unsent. The others are logged and the purge goes on:
/// the provider already has the request.
#[async_trait]
pub trait RunLog: Send + Sync {
    /// Provider `plan.provider` (account `account`) has planned `request`: a fresh run writes
    /// the plan; a resumed one checks it against the plan written and returns where each batch
    /// stands. Called before any of the provider's batches is sent.
    ///
    /// Targets already queued in another unfinished run (same account, same options) may be
    /// taken out of the packing with `replan`: the record then carries the new plan
    /// ([`RunRecord::plan`]), whose batches of followed targets are [`BatchRecord::Follows`].
    async fn planned(
        &self,
        plan: &ProviderPlan,
        account: &str,
        request: &PurgeRequest,
        replan: &Replan<'_>,
    ) -> Result<RunRecord>;

    /// Attempt `attempt` of batch `batch` is about to be sent.
    async fn sending(&self, provider: &str, batch: usize, attempt: u32) -> Result<()>;

    /// Batch `batch` was accepted.
    async fn accepted(
        &self,
        provider: &str,
        batch: usize,
        parts: &[RecordedPart],
        slots: &[u32],
        attempts: u32,
    ) -> Result<()>;

    /// Batch `batch` failed for good, with the row's error text.
    async fn failed(&self, provider: &str, batch: usize, error: &str, attempts: u32) -> Result<()>;

    /// Every part of batch `batch` was seen complete.
    async fn completed(&self, provider: &str, batch: usize) -> Result<()>;

    /// Waits until the other run's batch that batch `batch` follows ([`BatchRecord::Follows`])
    /// is accepted, completed or failed, and returns that (already journaled as this batch's
    /// own); [`BatchRecord::Queued`] when that run stopped before sending it: the engine then
    /// sends the batch itself. By default, [`BatchRecord::Queued`].
    async fn follow(&self, provider: &str, batch: usize) -> Result<BatchRecord> {
        let _ = (provider, batch);
        Ok(BatchRecord::Queued)
    }
}

/// A shared [`RunLog`].
pub type SharedRunLog = Arc<dyn RunLog>;

/// The parts of an accepted answer as journaled.
pub(super) fn recorded(parts: &[Accepted]) -> Vec<RecordedPart> {
    parts.iter().map(RecordedPart::of).collect()
}

/// The outcome a journaled batch stands for, when it needs no sending.
pub(super) fn outcome(record: &BatchRecord) -> Option<BatchOutcome> {
    let sent =
        |parts: &[RecordedPart], slots: &[u32], attempts: u32, done: bool| BatchOutcome::Sent {
            parts: parts
                .iter()
                .map(|p| SentPart {
                    accepted: p.accepted(),
                    completion: done.then_some(Completion::Completed),
                })
                .collect(),
            slots: slots.to_vec(),
            attempts,
        };
    match record {
        BatchRecord::Queued | BatchRecord::Sending | BatchRecord::Follows => None,
        BatchRecord::Accepted {
            parts,
            slots,
            attempts,
        } => Some(sent(parts, slots, *attempts, false)),
        BatchRecord::Completed {
            parts,
            slots,
            attempts,
        } => Some(sent(parts, slots, *attempts, true)),
        BatchRecord::Failed { error, attempts } => Some(BatchOutcome::Recorded {
            error: Arc::from(error.as_str()),
            attempts: *attempts,
        }),
    }
}

/// The text a row gets for a batch never sent in a run that stopped.
pub const NOT_SENT: &str =
    "not sent: the run stopped before this batch was sent (`purgekit resume` sends it)";

/// The report of a journaled run, from its plan, its request and where each batch stands:
/// what `purgekit report` prints. A batch not yet sent is a failed row saying so ([`NOT_SENT`]).
pub fn report_of(plan: &ProviderPlan, request: &PurgeRequest, record: &RunRecord) -> Report {
    let outcomes: Vec<BatchOutcome> = record
        .batches
        .iter()
        .map(|r| {
            outcome(r).unwrap_or_else(|| BatchOutcome::Recorded {
                error: Arc::from(NOT_SENT),
                attempts: 0,
            })
        })
        .collect();
    Report::new(
        rows::Rows::new(
            plan.clone(),
            request.clone(),
            outcomes,
            &record.notes,
            request.options().dry_run,
        )
        .collect(),
    )
}
