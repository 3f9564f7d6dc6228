//! Invalidations and the capacity they hold: per distribution, paths and wildcard paths in
//! progress (until their completion time), CallerReference idempotency, and the highest
//! in-progress counts ever reached.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::wire::InvalidationBatch;

/// One invalidation.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub id: String,
    pub batch: InvalidationBatch,
    pub created: Instant,
    pub create_time: String,
    pub wildcards: usize,
}

impl Record {
    pub fn paths(&self) -> usize {
        self.batch.paths.len() - self.wildcards
    }
}

/// What a create did.
pub(super) enum Created {
    /// A new invalidation (index into the records).
    New(usize),
    /// The same reference and paths as an earlier one: that one.
    Again(usize),
}

/// Why a create was refused.
pub(super) enum Refused {
    /// Past the in-progress allowance.
    Capacity { paths: usize, wildcards: usize },
    /// The reference was used with other paths.
    ReferenceReused,
}

#[derive(Debug, Default)]
pub(super) struct Ledger {
    pub records: Vec<Record>,
    by_reference: HashMap<String, usize>,
    /// The highest (paths, wildcards) in progress at once.
    pub max_in_progress: (usize, usize),
    /// Creates refused with TooManyInvalidationsInProgress.
    pub capacity_refusals: usize,
}

impl Ledger {
    /// (paths, wildcards) in progress at `now`.
    pub fn in_progress(&self, now: Instant, completes_after: Duration) -> (usize, usize) {
        self.records
            .iter()
            .filter(|r| now < r.created + completes_after)
            .fold((0, 0), |(p, w), r| (p + r.paths(), w + r.wildcards))
    }

    pub fn create(
        &mut self,
        batch: InvalidationBatch,
        now: Instant,
        completes_after: Duration,
        limits: (usize, usize),
        make: impl FnOnce(usize) -> (String, String),
    ) -> Result<Created, Refused> {
        if let Some(&i) = self.by_reference.get(&batch.caller_reference) {
            return if self.records[i].batch.paths == batch.paths {
                Ok(Created::Again(i))
            } else {
                Err(Refused::ReferenceReused)
            };
        }
        let wildcards = batch.paths.iter().filter(|p| p.ends_with('*')).count();
        let paths = batch.paths.len() - wildcards;
        let (busy_paths, busy_wildcards) = self.in_progress(now, completes_after);
        if busy_paths + paths > limits.0 || busy_wildcards + wildcards > limits.1 {
            self.capacity_refusals += 1;
            return Err(Refused::Capacity {
                paths: busy_paths,
                wildcards: busy_wildcards,
            });
        }
        let index = self.records.len();
        let (id, create_time) = make(index);
        self.by_reference
            .insert(batch.caller_reference.clone(), index);
        self.records.push(Record {
            id,
            batch,
            created: now,
            create_time,
            wildcards,
        });
        let (p, w) = (busy_paths + paths, busy_wildcards + wildcards);
        self.max_in_progress = (self.max_in_progress.0.max(p), self.max_in_progress.1.max(w));
        Ok(Created::New(index))
    }
}
