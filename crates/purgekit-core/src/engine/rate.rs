//! Rate limiting per account, shared by every purger in the process that uses the account.
//!
//! Two budgets, both from [`RateLimit`]:
//! - requests, as a **sliding window**: a request may start only when the one `amount` requests
//!   before it started at least `per` (plus the safety margin) ago. Any interval of length `per`
//!   then holds at most `amount` requests, so a server counting in fixed windows, however they
//!   are aligned, never sees too many;
//! - items, as **debt**: a request of `k` items costs `k × per / amount`, and the next request
//!   carrying items starts only once that debt is paid (a 100-item request at 60 per minute
//!   makes the next one wait 100 s). Requests without items (status polls) do not pay it.
//!
//! Requests pass one FIFO gate per account, so they start in arrival order and the instant
//! recorded for each is the instant it really started. A rate-limit rejection
//! ([`AccountLimiter::penalize`]) closes the gate for everyone until the provider's wait is over,
//! but for no longer than the longest declared rate window ([`AccountLimiter::penalty_cap`]): a
//! `Retry-After: 99999999` binds the batch that got it, not the whole account.
//!
//! No wait passes the caller's deadline: a request that could not start before it is not
//! started ([`Paced::Deadline`]). All waiting is `tokio::time`, so the paused test clock drives
//! it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::clock;
use super::policy::SafetyMargin;
use crate::limits::{Budget, RateLimit};

/// The rate limiters of a process, one per account (provider kind + account identity).
///
/// Every [`crate::ProviderPurger`] uses [`RateRegistry::global`] unless given another with
/// [`crate::ProviderPurger::with_rate_registry`] (tests and benchmarks isolate themselves so).
/// The first purger to use an account fixes its limits, concurrency and margin.
#[derive(Debug, Default)]
pub struct RateRegistry {
    accounts: Mutex<HashMap<(String, String), Arc<AccountLimiter>>>,
}

impl RateRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        RateRegistry::default()
    }

    /// The process-wide registry.
    pub fn global() -> Arc<RateRegistry> {
        static GLOBAL: OnceLock<Arc<RateRegistry>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(RateRegistry::new())).clone()
    }

    /// The limiter of (`kind`, `account`), created with these settings if it is new.
    pub(crate) fn limiter(
        &self,
        kind: &str,
        account: &str,
        rate: RateLimit,
        max_in_flight: usize,
        margin: SafetyMargin,
    ) -> Arc<AccountLimiter> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .entry((kind.to_owned(), account.to_owned()))
            .or_insert_with(|| Arc::new(AccountLimiter::new(rate, max_in_flight, margin)))
            .clone()
    }
}

/// How long a rate-limit rejection closes an account whose provider declares no rate window.
pub(crate) const DEFAULT_PENALTY_CAP: Duration = Duration::from_secs(60);

/// Why a wait for the account ended without a go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paced {
    /// The purge was cancelled.
    Cancelled,
    /// The request could not start before the deadline; it could at `ready` (if known).
    Deadline {
        /// When the account would let it start.
        ready: Option<Instant>,
    },
}

/// One account's budgets, concurrency limit and back-off state.
#[derive(Debug)]
pub(crate) struct AccountLimiter {
    rate: RateLimit,
    margin: SafetyMargin,
    in_flight: Arc<Semaphore>,
    gate: AsyncMutex<Schedule>,
    blocked_until: Mutex<Option<Instant>>,
}

/// What has been sent: start instants of the last `amount` requests, and when the item debt
/// is paid.
#[derive(Debug, Default)]
struct Schedule {
    started: VecDeque<Instant>,
    debt_paid_at: Option<Instant>,
}

impl AccountLimiter {
    pub(crate) fn new(rate: RateLimit, max_in_flight: usize, margin: SafetyMargin) -> Self {
        AccountLimiter {
            rate,
            margin,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            gate: AsyncMutex::new(Schedule::default()),
            blocked_until: Mutex::new(None),
        }
    }

    /// A place among the account's requests in flight, waiting at most until `deadline`.
    pub(crate) async fn in_flight(
        &self,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, Paced> {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(Paced::Cancelled),
            permit = self.in_flight.clone().acquire_owned() => permit.map_err(|_| Paced::Cancelled),
            _ = tokio::time::sleep_until(deadline) => Err(Paced::Deadline { ready: None }),
        }
    }

    /// Waits until a request carrying `items` items may start under the budgets, and records
    /// it as started now. Nothing is recorded when cancelled first, or when the request could
    /// not start by `deadline` (then it does not wait at all, and says when it could start).
    pub(crate) async fn pace(
        &self,
        items: usize,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<(), Paced> {
        let mut schedule = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Paced::Cancelled),
            schedule = self.gate.lock() => schedule,
            _ = tokio::time::sleep_until(deadline) => return Err(Paced::Deadline { ready: None }),
        };
        loop {
            let now = Instant::now();
            let ready = self.ready_at(&schedule, items);
            let Some(at) = ready.filter(|at| *at > now) else {
                self.record(&mut schedule, now, items);
                return Ok(());
            };
            if at > deadline {
                return Err(Paced::Deadline { ready: Some(at) });
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Paced::Cancelled),
                _ = tokio::time::sleep_until(at) => {}
            }
        }
    }

    /// The provider refused for rate: nobody on this account starts a request for `wait`, or
    /// for [`AccountLimiter::penalty_cap`] if that is shorter.
    pub(crate) fn penalize(&self, wait: Duration) {
        let until = clock::after(Instant::now(), wait.min(self.penalty_cap()));
        let mut blocked = self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
        *blocked = Some(blocked.map_or(until, |b| b.max(until)));
    }

    /// The longest an account stays closed after one rejection: the longest declared window
    /// (a rejection means the window is full; it is empty again after one window), else
    /// [`DEFAULT_PENALTY_CAP`]. The batch that was refused still waits the provider's full
    /// `Retry-After` (under its deadline).
    pub(crate) fn penalty_cap(&self) -> Duration {
        [self.rate.requests, self.rate.items]
            .into_iter()
            .flatten()
            .map(|b| b.per.saturating_add(self.margin.for_span(b.per)))
            .max()
            .unwrap_or(DEFAULT_PENALTY_CAP)
    }

    /// The window to wait out after a rate-limit rejection that gave no `Retry-After`.
    pub(crate) fn rejection_wait(&self) -> Option<Duration> {
        match (self.rate.requests, self.rate.items) {
            (Some(requests), _) => Some(requests.per),
            (None, Some(items)) => Some(debt(items, 1)),
            (None, None) => None,
        }
    }

    fn ready_at(&self, schedule: &Schedule, items: usize) -> Option<Instant> {
        let mut ready = *self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = self.rate.requests.filter(|b| b.amount > 0) {
            let amount = b.amount as usize;
            if schedule.started.len() >= amount {
                let window_start = schedule.started[schedule.started.len() - amount];
                let at = clock::after(
                    window_start,
                    b.per.saturating_add(self.margin.for_span(b.per)),
                );
                ready = Some(ready.map_or(at, |r| r.max(at)));
            }
        }
        if items > 0
            && self.rate.items.is_some()
            && let Some(at) = schedule.debt_paid_at
        {
            ready = Some(ready.map_or(at, |r| r.max(at)));
        }
        ready
    }

    fn record(&self, schedule: &mut Schedule, now: Instant, items: usize) {
        if let Some(b) = self.rate.requests.filter(|b| b.amount > 0) {
            schedule.started.push_back(now);
            while schedule.started.len() > b.amount as usize {
                schedule.started.pop_front();
            }
        }
        if let Some(b) = self.rate.items.filter(|b| b.amount > 0)
            && items > 0
        {
            let cost = debt(b, items);
            schedule.debt_paid_at = Some(clock::after(
                now,
                cost.saturating_add(self.margin.for_span(cost)),
            ));
        }
    }
}

/// What `items` items cost under an item budget: `items × per / amount`.
fn debt(budget: Budget, items: usize) -> Duration {
    let amount = budget.amount.max(1) as f64;
    Duration::try_from_secs_f64(budget.per.as_secs_f64() * items as f64 / amount)
        .unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: RateLimit) -> AccountLimiter {
        AccountLimiter::new(rate, 1, SafetyMargin::NONE)
    }

    fn never() -> Instant {
        clock::after(Instant::now(), Duration::MAX)
    }

    async fn starts(l: &AccountLimiter, items: &[usize]) -> Vec<f64> {
        let t0 = Instant::now();
        let cancel = CancellationToken::new();
        let mut out = Vec::new();
        for &k in items {
            assert_eq!(l.pace(k, &cancel, never()).await, Ok(()));
            out.push((Instant::now() - t0).as_secs_f64());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn request_window_slides() {
        let l = limiter(RateLimit {
            requests: Some(Budget::new(3, Duration::from_secs(10))),
            items: None,
        });
        assert_eq!(
            starts(&l, &[1; 7]).await,
            [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn item_debt_is_paid_before_the_next_items() {
        let l = limiter(RateLimit {
            requests: None,
            items: Some(Budget::per_minute(60)),
        });
        // 100 items cost 100 s; a status poll (0 items) does not wait for the debt.
        assert_eq!(starts(&l, &[100, 0, 5, 1]).await, [0.0, 0.0, 100.0, 105.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn margin_is_added_to_each_wait() {
        let l = AccountLimiter::new(
            RateLimit {
                requests: Some(Budget::new(1, Duration::from_secs(60))),
                items: None,
            },
            1,
            SafetyMargin::default(),
        );
        assert_eq!(starts(&l, &[1, 1, 1]).await, [0.0, 60.25, 120.5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_penalty_blocks_everyone_and_cancel_stops_waiting() {
        let l = limiter(RateLimit::default());
        l.penalize(Duration::from_secs(7));
        assert_eq!(starts(&l, &[1]).await, [7.0]);
        l.penalize(Duration::from_secs(30));
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert_eq!(l.pace(1, &cancel, never()).await, Err(Paced::Cancelled));
        assert!(l.in_flight(&cancel, never()).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_retry_after_closes_the_account_for_one_window_at_most() {
        let l = limiter(RateLimit {
            requests: Some(Budget::new(10, Duration::from_secs(60))),
            items: None,
        });
        l.penalize(Duration::from_secs(99_999_999));
        assert_eq!(starts(&l, &[1]).await, [60.0]);
        // No declared window: the default cap.
        let l = limiter(RateLimit::default());
        l.penalize(Duration::from_secs(99_999_999));
        assert_eq!(starts(&l, &[1]).await, [DEFAULT_PENALTY_CAP.as_secs_f64()]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_is_not_started() {
        let l = limiter(RateLimit {
            requests: Some(Budget::new(1, Duration::from_secs(60))),
            items: None,
        });
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(30);
        assert_eq!(l.pace(1, &cancel, deadline).await, Ok(()));
        assert_eq!(
            l.pace(1, &cancel, deadline).await,
            Err(Paced::Deadline {
                ready: Some(t0 + Duration::from_secs(60))
            })
        );
        assert_eq!(t0.elapsed(), Duration::ZERO, "it did not wait");
        // Within the deadline it waits.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(l.pace(1, &cancel, later).await, Ok(()));
        assert_eq!(t0.elapsed(), Duration::from_secs(60));
        // A place in flight is waited for until the deadline only.
        let held = l.in_flight(&cancel, never()).await.unwrap();
        let soon = Instant::now() + Duration::from_secs(5);
        assert!(matches!(
            l.in_flight(&cancel, soon).await,
            Err(Paced::Deadline { ready: None })
        ));
        assert_eq!(t0.elapsed(), Duration::from_secs(65));
        drop(held);
    }

    #[test]
    fn the_registry_shares_one_limiter_per_account() {
        let r = RateRegistry::new();
        let a = r.limiter("x", "acct", RateLimit::default(), 1, SafetyMargin::NONE);
        let b = r.limiter("x", "acct", RateLimit::default(), 4, SafetyMargin::NONE);
        let c = r.limiter("y", "acct", RateLimit::default(), 1, SafetyMargin::NONE);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
