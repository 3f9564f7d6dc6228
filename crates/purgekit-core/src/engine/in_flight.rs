//! In-flight capacity: items a provider keeps in progress until their purge completes
//! ([`crate::InFlightCapacity`], CloudFront's 3,000 paths and 15 wildcard paths per
//! distribution).
//!
//! A batch is admitted only when its items fit in what is free; its share is held until the
//! engine sees the purge complete (or stops watching it), then freed for the next batch. The
//! two allowances are separate semaphores, always taken in the same order (items, then
//! wildcards) and released only by watchers that never wait on them, so admission cannot
//! deadlock. Waiting is `tokio`'s, so the paused test clock drives it.
//!
//! Admission waits no later than the run's deadline ([`super::exchange::Sender::deadline`]):
//! past it (or once it has come) the batch is not sent and fails with [`Error::Deadline`].
//! Capacity is freed by polling completion, so a provider with in-flight capacity must have a
//! status call ([`crate::CompletionModel::Polled`]); [`super::ProviderPurger`] refuses the
//! other combination when built.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
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

    /// Waits until `items` non-wildcard items and `wildcards` wildcards fit, and holds them.
    /// Fails with [`Error::Cancelled`] if cancelled first, and with [`Error::Deadline`] if they
    /// do not fit before `deadline` (a wait is not started once it has come). A batch larger
    /// than the whole allowance (the planner never makes one) takes the whole allowance rather
    /// than wait forever.
    pub(super) async fn admit(
        &self,
        items: usize,
        wildcards: usize,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<Held, Error> {
        let want = (
            items.min(self.capacity.items),
            wildcards.min(self.capacity.wildcards),
        );
        let past = |what: &str| {
            Error::deadline(format!(
                "not sent: waiting for in-flight capacity ({} items, {} wildcards; the {what} \
                 allowance is full) would go past the run's deadline",
                want.0, want.1
            ))
        };
        let items = take(&self.items, want.0, cancel, deadline)
            .await
            .map_err(|e| e.unwrap_or_else(|| past("items")))?;
        let wildcards = take(&self.wildcards, want.1, cancel, deadline)
            .await
            .map_err(|e| e.unwrap_or_else(|| past("wildcards")))?;
        Ok(Held {
            _items: items,
            _wildcards: wildcards,
        })
    }
}

/// Takes `n` permits (nothing for 0). Fails with `Some(Error::Cancelled)` if cancelled, and
/// with `None` at the deadline: no wait is started once it has come.
async fn take(
    semaphore: &Arc<Semaphore>,
    n: usize,
    cancel: &CancellationToken,
    deadline: Instant,
) -> Result<Option<OwnedSemaphorePermit>, Option<Error>> {
    if cancel.is_cancelled() {
        return Err(Some(Error::Cancelled));
    }
    if n == 0 {
        return Ok(None);
    }
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    if let Ok(permit) = semaphore.clone().try_acquire_many_owned(n) {
        return Ok(Some(permit));
    }
    if Instant::now() >= deadline {
        return Err(None);
    }
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Some(Error::Cancelled)),
        permit = semaphore.clone().acquire_many_owned(n) => {
            permit.map(Some).map_err(|_| Some(Error::Cancelled))
        }
        _ = tokio::time::sleep_until(deadline) => Err(None),
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
        let never = Instant::now() + Duration::from_secs(3600);
        let a = f.admit(8, 0, &cancel, never).await.unwrap();
        let w = f.admit(0, 2, &cancel, never).await.unwrap();
        let g = f.clone();
        let c = cancel.clone();
        let waiting = tokio::spawn(async move { g.admit(3, 0, &c, never).await.is_ok() });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            !waiting.is_finished(),
            "3 more items do not fit beside 8 of 10"
        );
        drop(a);
        assert!(waiting.await.unwrap());
        drop(w);
        // Too large for the whole allowance: takes all of it instead of waiting forever.
        let all = f.admit(50, 9, &cancel, never).await.unwrap();
        // Full: waits until the deadline, then fails saying so.
        let started = Instant::now();
        let soon = started + Duration::from_secs(7);
        let err = f.admit(1, 0, &cancel, soon).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        assert!(
            matches!(&err, Error::Deadline { .. })
                && err.to_string().contains("not sent")
                && err.to_string().contains("past the run's deadline"),
            "{err}"
        );
        // The deadline has come: no wait is started.
        let err = f.admit(1, 0, &cancel, started).await.unwrap_err();
        assert!(matches!(err, Error::Deadline { .. }));
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        cancel.cancel();
        assert!(
            matches!(f.admit(1, 0, &cancel, never).await, Err(Error::Cancelled)),
            "cancelled while full"
        );
        drop(all);
    }
}
