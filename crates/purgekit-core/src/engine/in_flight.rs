//! In-flight capacity: items a provider keeps in progress until their purge completes
//! ([`crate::InFlightCapacity`], CloudFront's 3,000 paths and 15 wildcard paths per
//! distribution).
//!
//! A batch is admitted only when its items fit in what is free; its share is held until the
//! engine sees the purge complete (or stops watching it), then freed for the next batch. Waiting
//! is `tokio`'s, so the paused test clock drives it.
//!
//! In one process (no [`RateStore`]) the two allowances are per-purger semaphores, always taken
//! in the same order (items, then wildcards) and released only by watchers that never wait on
//! them, so admission cannot deadlock.
//!
//! When the account's limiter keeps its state in a [`RateStore`] (a journal shared by several
//! processes), each share is a [`CapacityHold`] in the account's [`RateState`], claimed in one
//! atomic update that counts every live hold of every process: the processes together never
//! hold more than the capacity. A batch that does not fit looks again after a back-off
//! ([`POLL_FIRST`] doubling to [`POLL_MAX`], or when the first hold in its way lapses). A hold
//! is removed when its batch is seen complete, refused, or no longer watched, and renewed every
//! [`RENEW_EVERY`] while held. A process killed meanwhile leaves its holds behind — its accepted
//! purges are still in progress at the provider — and they lapse [`HOLD_LIFETIME`] after their
//! last renewal, so they neither vanish at once nor leak. A resumed run's accepted batch that it
//! waits for takes its hold over (same id: run, provider, batch), so it is freed when seen
//! complete, not at its lapse.
//!
//! Admission waits no later than the run's deadline ([`super::exchange::Sender::deadline`]):
//! past it (or once it has come) the batch is not sent and fails with [`Error::Deadline`].
//! Capacity is freed by polling completion, so a provider with in-flight capacity must have a
//! status call ([`crate::CompletionModel::Polled`]); [`super::ProviderPurger`] refuses the
//! other combination when built.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::clock;
use super::rate::{CapacityHold, Clocks, RateState, Shared, wall_nanos};
use crate::error::Error;
use crate::limits::InFlightCapacity;

/// How long a hold in a [`super::RateStore`] lasts after its holder last renewed it: how long a
/// killed process's accepted purges keep their capacity. Five minutes covers a CloudFront
/// invalidation's usual time in progress (60–300 s by secondary sources; AWS publishes no bound,
/// its CLI's waiter gives up after 10 minutes); one still in progress after it may see the next
/// batch refused (`TooManyInvalidationsInProgress`), which the engine retries as a rate
/// refusal.
pub(crate) const HOLD_LIFETIME: Duration = Duration::from_secs(300);

/// How often a live holder renews its holds: a tenth of [`HOLD_LIFETIME`], so several failed
/// renewals in a row (a store briefly unreachable) do not let a live hold lapse.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(30);

/// The first pause before looking at a full shared allowance again; it doubles up to
/// [`POLL_MAX`].
pub(crate) const POLL_FIRST: Duration = Duration::from_millis(50);

/// The longest pause between two looks at a full shared allowance: a share freed by another
/// process is seen within it.
pub(crate) const POLL_MAX: Duration = Duration::from_secs(1);

/// One purger's in-flight allowances.
#[derive(Debug)]
pub(super) struct InFlight {
    capacity: InFlightCapacity,
    items: Arc<Semaphore>,
    wildcards: Arc<Semaphore>,
}

/// A batch's share of the capacity. Freed by [`Held::release`]; when dropped instead, freed in
/// the background.
#[derive(Debug)]
pub(super) struct Held(Option<Share>);

#[derive(Debug)]
enum Share {
    /// Permits of this purger's semaphores.
    Local {
        _items: Option<OwnedSemaphorePermit>,
        _wildcards: Option<OwnedSemaphorePermit>,
    },
    /// A hold in the store, and the task renewing it.
    Stored {
        shared: Shared,
        id: String,
        renewal: JoinHandle<()>,
    },
}

impl Held {
    /// Frees the share now (in the store, before returning).
    pub(super) async fn release(mut self) {
        if let Some(share) = self.0.take() {
            share.release().await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(share) = self.0.take() {
            match share {
                Share::Local { .. } => {}
                Share::Stored { .. } => {
                    // Without a runtime (the process is ending) the hold lapses instead.
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        runtime.spawn(share.release());
                    }
                }
            }
        }
    }
}

impl Share {
    async fn release(self) {
        if let Share::Stored {
            shared: (store, key),
            id,
            renewal,
        } = self
        {
            renewal.abort();
            let removed = store
                .update(&key, &mut |state| state.holds.retain(|h| h.id != id))
                .await;
            if let Err(e) = removed {
                tracing::warn!(
                    "rate store: in-flight hold {id} not released ({e}); it lapses {} s after \
                     its last renewal",
                    HOLD_LIFETIME.as_secs()
                );
            }
        }
    }
}

/// Both clocks now, the wall one (nanoseconds since the Unix epoch) as holds are kept: the wall
/// clock at this process's first reading plus the `tokio` clock since, so holds age on `tokio`
/// time (the paused test clock drives their lapse) and agree with other processes' as far as
/// their wall clocks do.
fn hold_clocks() -> Clocks {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (at, wall) = *ANCHOR.get_or_init(|| (Instant::now(), wall_nanos()));
    let now = Instant::now();
    Clocks {
        now,
        wall: Clocks { now: at, wall }.wall(now),
    }
}

/// The id of batch `index` of `run` on provider `name`: what its hold is known by.
pub(super) fn hold_id(run: impl std::fmt::Display, name: &str, index: usize) -> String {
    format!("{run}/{name}/{index}")
}

/// What one look at the shared allowances said.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// Held now.
    Held,
    /// Does not fit: `allowance` is full; the first hold in the way lapses at `lapses` (wall
    /// nanoseconds).
    Full {
        allowance: &'static str,
        lapses: Option<u64>,
    },
}

/// Claims `want` (items, wildcards) under `capacity` for hold `id` in `state` at `now`, dropping
/// lapsed holds. A hold of the same id (the batch sent again after its process stopped) is
/// replaced, not counted.
fn claim(
    state: &mut RateState,
    capacity: InFlightCapacity,
    id: &str,
    want: (usize, usize),
    now: u64,
) -> Claim {
    state.holds.retain(|h| h.expires_at > now);
    let others = || state.holds.iter().filter(|h| h.id != id);
    let used = others().fold((0u64, 0u64), |(i, w), h| (i + h.items, w + h.wildcards));
    let want = (want.0 as u64, want.1 as u64);
    let full = if want.0 > 0 && used.0 + want.0 > capacity.items as u64 {
        Some((
            "items",
            others().filter(|h| h.items > 0).map(|h| h.expires_at).min(),
        ))
    } else if want.1 > 0 && used.1 + want.1 > capacity.wildcards as u64 {
        Some((
            "wildcards",
            others()
                .filter(|h| h.wildcards > 0)
                .map(|h| h.expires_at)
                .min(),
        ))
    } else {
        None
    };
    if let Some((allowance, lapses)) = full {
        return Claim::Full { allowance, lapses };
    }
    state.holds.retain(|h| h.id != id);
    state.holds.push(CapacityHold {
        id: id.to_owned(),
        items: want.0,
        wildcards: want.1,
        expires_at: now.saturating_add(HOLD_LIFETIME.as_nanos() as u64),
    });
    Claim::Held
}

/// Keeps hold `id` alive: renews it every [`RENEW_EVERY`] while it is in the store.
fn renew(shared: Shared, id: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (store, key) = shared;
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let now = hold_clocks().wall;
            let mut present = false;
            let renewed = store
                .update(&key, &mut |state| {
                    if let Some(h) = state.holds.iter_mut().find(|h| h.id == id) {
                        h.expires_at = now.saturating_add(HOLD_LIFETIME.as_nanos() as u64);
                        present = true;
                    }
                })
                .await;
            match renewed {
                Err(e) => tracing::warn!("rate store: in-flight hold {id} not renewed: {e}"),
                // Lapsed (renewals failed for a whole lifetime) or released: nothing to keep.
                Ok(()) if !present => return,
                Ok(()) => {}
            }
        }
    })
}

impl InFlight {
    pub(super) fn new(capacity: InFlightCapacity) -> Self {
        InFlight {
            capacity,
            items: Arc::new(Semaphore::new(capacity.items)),
            wildcards: Arc::new(Semaphore::new(capacity.wildcards)),
        }
    }

    /// Waits until `items` non-wildcard items and `wildcards` wildcards fit, and holds them:
    /// in `shared` (the account's store) as hold `id` when given, else in this purger.
    /// Fails with [`Error::Cancelled`] if cancelled first, and with [`Error::Deadline`] if they
    /// do not fit before `deadline` (a wait is not started once it has come); a store that
    /// cannot be read or written fails it with the store's error. A batch larger than the
    /// whole allowance (the planner never makes one) takes the whole allowance rather than wait
    /// forever.
    pub(super) async fn admit(
        &self,
        items: usize,
        wildcards: usize,
        shared: Option<(&Shared, String)>,
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
        if let Some((shared, id)) = shared {
            return self
                .claim_shared(shared, id, want, cancel, deadline)
                .await
                .map_err(|stop| match stop {
                    Ok(allowance) => past(allowance),
                    Err(error) => error,
                });
        }
        let items = take(&self.items, want.0, cancel, deadline)
            .await
            .map_err(|e| e.unwrap_or_else(|| past("items")))?;
        let wildcards = take(&self.wildcards, want.1, cancel, deadline)
            .await
            .map_err(|e| e.unwrap_or_else(|| past("wildcards")))?;
        Ok(Held(Some(Share::Local {
            _items: items,
            _wildcards: wildcards,
        })))
    }

    /// [`InFlight::admit`] through the store. Fails with `Ok(allowance)` at the deadline,
    /// naming the allowance that was full.
    async fn claim_shared(
        &self,
        shared: &Shared,
        id: String,
        want: (usize, usize),
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<Held, Result<&'static str, Error>> {
        let (store, key) = shared;
        let mut pause = POLL_FIRST;
        loop {
            if cancel.is_cancelled() {
                return Err(Err(Error::Cancelled));
            }
            let clocks = hold_clocks();
            let mut claimed = None;
            store
                .update(key, &mut |state| {
                    claimed = Some(claim(state, self.capacity, &id, want, clocks.wall));
                })
                .await
                .map_err(Err)?;
            let (allowance, lapses) = match claimed {
                Some(Claim::Held) => {
                    let renewal = renew(shared.clone(), id.clone());
                    return Ok(Held(Some(Share::Stored {
                        shared: shared.clone(),
                        id,
                        renewal,
                    })));
                }
                Some(Claim::Full { allowance, lapses }) => (allowance, lapses),
                None => {
                    return Err(Err(Error::Journal {
                        message: "the rate store did not apply the update".to_owned(),
                    }));
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(Ok(allowance));
            }
            let mut wake = clock::after(now, pause).min(deadline);
            if let Some(lapses) = lapses {
                wake = wake.min(clocks.instant(lapses));
            }
            pause = (pause * 2).min(POLL_MAX);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Err(Error::Cancelled)),
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Takes over hold `id` in `shared` if it is still there (a resumed run's accepted batch,
    /// held by the process that sent it): renewed from now on, and freed when released.
    pub(super) async fn adopt(shared: &Shared, id: String) -> Option<Held> {
        let (store, key) = shared;
        let now = hold_clocks().wall;
        let mut present = false;
        let adopted = store
            .update(key, &mut |state| {
                state.holds.retain(|h| h.expires_at > now);
                if let Some(h) = state.holds.iter_mut().find(|h| h.id == id) {
                    h.expires_at = now.saturating_add(HOLD_LIFETIME.as_nanos() as u64);
                    present = true;
                }
            })
            .await;
        if let Err(e) = adopted {
            tracing::warn!("rate store: in-flight hold {id} not taken over: {e}");
            return None;
        }
        present.then(|| {
            let renewal = renew(shared.clone(), id.clone());
            Held(Some(Share::Stored {
                shared: shared.clone(),
                id,
                renewal,
            }))
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
        let a = f.admit(8, 0, None, &cancel, never).await.unwrap();
        let w = f.admit(0, 2, None, &cancel, never).await.unwrap();
        let g = f.clone();
        let c = cancel.clone();
        let waiting = tokio::spawn(async move { g.admit(3, 0, None, &c, never).await.is_ok() });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            !waiting.is_finished(),
            "3 more items do not fit beside 8 of 10"
        );
        drop(a);
        assert!(waiting.await.unwrap());
        drop(w);
        // Too large for the whole allowance: takes all of it instead of waiting forever.
        let all = f.admit(50, 9, None, &cancel, never).await.unwrap();
        // Full: waits until the deadline, then fails saying so.
        let started = Instant::now();
        let soon = started + Duration::from_secs(7);
        let err = f.admit(1, 0, None, &cancel, soon).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        assert!(
            matches!(&err, Error::Deadline { .. })
                && err.to_string().contains("not sent")
                && err.to_string().contains("past the run's deadline"),
            "{err}"
        );
        // The deadline has come: no wait is started.
        let err = f.admit(1, 0, None, &cancel, started).await.unwrap_err();
        assert!(matches!(err, Error::Deadline { .. }));
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        cancel.cancel();
        assert!(
            matches!(
                f.admit(1, 0, None, &cancel, never).await,
                Err(Error::Cancelled)
            ),
            "cancelled while full"
        );
        drop(all);
    }
}

/// The store shared by several processes, simulated in one: two purgers' [`InFlight`]s over one
/// in-memory [`super::RateStore`].
#[cfg(test)]
mod shared_tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::engine::RateStore;
    use crate::engine::rate::Memory;

    impl Memory {
        /// Items and wildcards held in the store (lapsed holds included).
        fn held(&self) -> (u64, u64) {
            let states = self.0.lock().unwrap();
            states.get(KEY).map_or((0, 0), |s| {
                s.holds
                    .iter()
                    .fold((0, 0), |(i, w), h| (i + h.items, w + h.wildcards))
            })
        }
    }

    const KEY: &str = "cloudfront/EDIST";
    const CAPACITY: InFlightCapacity = InFlightCapacity {
        items: 10,
        wildcards: 2,
    };

    /// Two processes' allowances over one store.
    fn two() -> (Arc<InFlight>, Arc<InFlight>, Arc<Memory>, Shared) {
        let memory = Arc::new(Memory::default());
        let shared: Shared = (memory.clone(), KEY.to_owned());
        (
            Arc::new(InFlight::new(CAPACITY)),
            Arc::new(InFlight::new(CAPACITY)),
            memory,
            shared,
        )
    }

    fn never() -> Instant {
        Instant::now() + Duration::from_secs(24 * 3600)
    }

    #[tokio::test(start_paused = true)]
    async fn two_processes_never_hold_more_than_the_capacity_together() {
        let (a, b, memory, shared) = two();
        let cancel = CancellationToken::new();
        let first = a
            .admit(8, 0, Some((&shared, "r1/cf/0".into())), &cancel, never())
            .await
            .unwrap();
        let wild = a
            .admit(0, 2, Some((&shared, "r1/cf/1".into())), &cancel, never())
            .await
            .unwrap();
        assert_eq!(memory.held(), (8, 2));
        // The other process: 3 items do not fit beside 8 of 10, one wildcard not beside 2.
        let (b2, s2, c2) = (b.clone(), shared.clone(), cancel.clone());
        let items = tokio::spawn(async move {
            let held = b2
                .admit(3, 0, Some((&s2, "r2/cf/0".into())), &c2, never())
                .await;
            (Instant::now(), held)
        });
        let (b3, s3, c3) = (b.clone(), shared.clone(), cancel.clone());
        let wildcard = tokio::spawn(async move {
            let held = b3
                .admit(0, 1, Some((&s3, "r2/cf/1".into())), &c3, never())
                .await;
            (Instant::now(), held)
        });
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!items.is_finished() && !wildcard.is_finished());
        assert_eq!(memory.held(), (8, 2), "nothing more was held meanwhile");
        first.release().await;
        let (at, held) = items.await.unwrap();
        let held = held.unwrap();
        assert!(
            at - t0 <= Duration::from_secs(11),
            "seen within a poll (at most {POLL_MAX:?}) of the release: {:?}",
            at - t0
        );
        assert_eq!(memory.held(), (3, 2));
        assert!(
            !wildcard.is_finished(),
            "the wildcard allowance is still full"
        );
        drop(wild); // freed in the background, like a watcher that stops
        let (_, other) = wildcard.await.unwrap();
        assert_eq!(memory.held(), (3, 1));
        held.release().await;
        other.unwrap().release().await;
        assert_eq!(memory.held(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn many_batches_of_two_processes_stay_within_the_capacity() {
        let (a, b, memory, shared) = two();
        let in_progress = Arc::new(Mutex::new((0u64, 0u64)));
        let mut tasks = tokio::task::JoinSet::new();
        for (p, f) in [(1, a), (2, b)] {
            for batch in 0..6u64 {
                let (f, shared, memory, in_progress) = (
                    f.clone(),
                    shared.clone(),
                    memory.clone(),
                    in_progress.clone(),
                );
                tasks.spawn(async move {
                    let cancel = CancellationToken::new();
                    let items = 3 + (batch % 3) as usize;
                    let id = format!("r{p}/cf/{batch}");
                    let held = f
                        .admit(items, 0, Some((&shared, id)), &cancel, never())
                        .await
                        .unwrap();
                    {
                        let mut now = in_progress.lock().unwrap();
                        now.0 += items as u64;
                        now.1 = now.1.max(now.0);
                        assert!(memory.held().0 <= 10, "{:?}", memory.held());
                    }
                    tokio::time::sleep(Duration::from_secs(2 + batch)).await;
                    in_progress.lock().unwrap().0 -= items as u64;
                    held.release().await;
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let (now, most) = *in_progress.lock().unwrap();
        assert_eq!(now, 0);
        assert!(most <= 10, "{most} items in progress at once, of 10");
        assert!(most >= 8, "the capacity is used: {most}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_wait_ends_at_the_deadline_as_in_one_process() {
        let (a, b, _memory, shared) = two();
        let cancel = CancellationToken::new();
        let _all = a
            .admit(10, 0, Some((&shared, "r1/cf/0".into())), &cancel, never())
            .await
            .unwrap();
        let started = Instant::now();
        let soon = started + Duration::from_secs(7);
        let err = b
            .admit(1, 0, Some((&shared, "r2/cf/0".into())), &cancel, soon)
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        assert_eq!(
            err.to_string(),
            "not sent: waiting for in-flight capacity (1 items, 0 wildcards; the items \
             allowance is full) would go past the run's deadline",
        );
        // The deadline has come: no wait is started.
        let err = b
            .admit(1, 0, Some((&shared, "r2/cf/0".into())), &cancel, started)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Deadline { .. }));
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        // Cancelled while full.
        let (b2, s2, c2) = (b.clone(), shared.clone(), cancel.clone());
        let waiting = tokio::spawn(async move {
            b2.admit(1, 0, Some((&s2, "r2/cf/1".into())), &c2, never())
                .await
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        cancel.cancel();
        assert!(matches!(waiting.await.unwrap(), Err(Error::Cancelled)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_holders_hold_blocks_until_it_lapses_then_frees() {
        let (_, b, memory, shared) = two();
        // A process claimed the whole allowance, then was killed: nobody renews the hold.
        let claimed_at = Instant::now();
        memory
            .update(KEY, &mut |state| {
                let claimed = claim(state, CAPACITY, "dead/cf/0", (10, 0), hold_clocks().wall);
                assert_eq!(claimed, Claim::Held);
            })
            .await
            .unwrap();
        let cancel = CancellationToken::new();
        let held = b
            .admit(4, 0, Some((&shared, "r2/cf/0".into())), &cancel, never())
            .await
            .unwrap();
        let waited = claimed_at.elapsed();
        assert!(
            waited >= HOLD_LIFETIME && waited <= HOLD_LIFETIME + Duration::from_millis(1),
            "freed when it lapses: {waited:?}"
        );
        assert_eq!(memory.held(), (4, 0), "the lapsed hold is gone");
        // A live holder's hold does not lapse: it is renewed while held.
        let err = b
            .admit(
                7,
                0,
                Some((&shared, "r2/cf/1".into())),
                &cancel,
                Instant::now() + 2 * HOLD_LIFETIME,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Deadline { .. }), "{err}");
        held.release().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_run_takes_over_its_batchs_hold() {
        let (_, b, memory, shared) = two();
        memory
            .update(KEY, &mut |state| {
                claim(state, CAPACITY, "run/cf/0", (10, 0), hold_clocks().wall);
            })
            .await
            .unwrap();
        assert!(InFlight::adopt(&shared, "run/cf/9".into()).await.is_none());
        let adopted = InFlight::adopt(&shared, "run/cf/0".into()).await.unwrap();
        // Renewed from now on, so it outlives its first lapse.
        tokio::time::sleep(HOLD_LIFETIME * 2).await;
        assert_eq!(memory.held(), (10, 0));
        let cancel = CancellationToken::new();
        let soon = Instant::now() + Duration::from_secs(1);
        assert!(
            b.admit(1, 0, Some((&shared, "r2/cf/0".into())), &cancel, soon)
                .await
                .is_err()
        );
        // Seen complete: freed at once.
        adopted.release().await;
        let now = Instant::now();
        b.admit(10, 0, Some((&shared, "r2/cf/0".into())), &cancel, never())
            .await
            .unwrap()
            .release()
            .await;
        assert_eq!(now.elapsed(), Duration::ZERO);
        // A batch sent again after its process stopped while sending it replaces its own hold.
        memory
            .update(KEY, &mut |state| {
                claim(state, CAPACITY, "run/cf/1", (10, 0), hold_clocks().wall);
            })
            .await
            .unwrap();
        let soon = Instant::now() + Duration::from_secs(1);
        let resent = b
            .admit(10, 0, Some((&shared, "run/cf/1".into())), &cancel, soon)
            .await
            .unwrap();
        assert_eq!(memory.held(), (10, 0));
        resent.release().await;
        assert_eq!(memory.held(), (0, 0));
    }
}
