//! In-flight capacity: items a provider keeps in progress until their purge completes
//! ([`crate::InFlightCapacity`], CloudFront's 3,000 paths and 15 wildcard paths per
//! distribution).
//!
//! A batch is admitted only when its items fit in what is free; its share is held until the
//! engine sees the purge complete (or stops watching it), then freed for the next batch. The
//! two allowances are separate semaphores, always taken in the same order (items, then
//! wildcards) and released only by watchers that never wait on them, so admission cannot
//! deadlock. Waiting is `tokio`'s, so the paused test clock drives it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::limits::InFlightCapacity;

/// One purger's in-flight allowances.
#[derive(Debug)]
pub(super) struct InFlight {
    capacity: InFlightCapacity,
    items: Arc<Semaphore>,
    wildcards: Arc<Semaphore>,
}

/// A batch's share of the capacity; freed when dropped.
#[derive(Debug)]
pub(super) struct Held {
    _items: Option<OwnedSemaphorePermit>,
    _wildcards: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    pub(super) fn new(capacity: InFlightCapacity) -> Self {
        InFlight {
            capacity,
            items: Arc::new(Semaphore::new(capacity.items)),
            wildcards: Arc::new(Semaphore::new(capacity.wildcards)),
        }
    }

    /// Waits until `items` non-wildcard items and `wildcards` wildcards fit, and holds them;
    /// `None` if cancelled first. A batch larger than the whole allowance (the planner never
    /// makes one) takes the whole allowance rather than wait forever.
    pub(super) async fn admit(
        &self,
        items: usize,
        wildcards: usize,
        cancel: &CancellationToken,
    ) -> Option<Held> {
        let items = take(&self.items, items.min(self.capacity.items), cancel).await?;
        let wildcards = take(
            &self.wildcards,
            wildcards.min(self.capacity.wildcards),
            cancel,
        )
        .await?;
        Some(Held {
            _items: items,
            _wildcards: wildcards,
        })
    }
}

/// `Some(None)` for nothing to take, `Some(Some(permit))` once taken, `None` if cancelled.
async fn take(
    semaphore: &Arc<Semaphore>,
    n: usize,
    cancel: &CancellationToken,
) -> Option<Option<OwnedSemaphorePermit>> {
    if n == 0 {
        return Some(None);
    }
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        permit = semaphore.clone().acquire_many_owned(n) => permit.ok().map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn admits_only_what_fits_and_frees_on_drop() {
        let f = Arc::new(InFlight::new(InFlightCapacity {
            items: 10,
            wildcards: 2,
        }));
        let cancel = CancellationToken::new();
        let a = f.admit(8, 0, &cancel).await.unwrap();
        let w = f.admit(0, 2, &cancel).await.unwrap();
        let g = f.clone();
        let c = cancel.clone();
        let waiting = tokio::spawn(async move { g.admit(3, 0, &c).await.is_some() });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            !waiting.is_finished(),
            "3 more items do not fit beside 8 of 10"
        );
        drop(a);
        assert!(waiting.await.unwrap());
        drop(w);
        // Too large for the whole allowance: takes all of it instead of waiting forever.
        let all = f.admit(50, 9, &cancel).await.unwrap();
        cancel.cancel();
        assert!(
            f.admit(1, 0, &cancel).await.is_none(),
            "cancelled while full"
        );
        drop(all);
    }
}
