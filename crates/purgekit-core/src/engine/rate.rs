//! Rate limiting per account, shared by every purger in the process that uses the account.
//!
//! Two budgets, both from [`RateLimit`]:
//! - requests, as a **sliding window**: a request may start only when the one `amount` requests
//!   before it started at least `per` (plus the safety margin) ago. Any interval of length `per`
//!   then holds at most `amount` requests, so a server counting in fixed windows, however they
//!   are aligned, never sees too many;
//! - items, as **debt**: a request of `k` items costs `k × per / amount`, and the next request
//!   carrying items starts only once that debt is paid (a 100-item request at 60 per minute
//!   makes the next one wait 100 s). Requests without items (status polls) do not pay it;
//! - [`TokenBucket`]s (from [`crate::Limits::buckets`]), each kept as a **GCRA** (the virtual
//!   scheduling form of a token bucket): a bucket of `burst` tokens refilled at `amount` per
//!   `per` has one token's time `T = per / amount`; it keeps the instant `tat` at which it would
//!   be full again, and a request of cost `c` may start at `max(tat, now) + c·T − burst·T`, then
//!   moves `tat` to `max(tat, now) + c·T`. Kept in integer nanoseconds, so schedules are exact.
//!   A bucket with a scope is taken from only by batches of that scope.
//!
//! The server charges a request somewhere between its start and its answer, not at the start
//! the schedule recorded: a request held up on its way (a busy machine, a slow proxy, a server
//! queueing it) is charged late, and the next one, sent on time, would find the server's
//! budget still spent. So once a request is answered ([`AccountLimiter::answered`]) each budget
//! counts it as charged at the answer at the latest. An answer within the safety margin of its
//! start changes nothing (the margin covers it, and nothing is written to a store); a later one
//! moves the request's place in the window to the answer less the margin (the request `amount`
//! later then starts no earlier than the answer plus `per`), and the item debt is paid no
//! earlier than `answered + k × per / amount`. A bucket's `tat` is always at least
//! `answered + c·T` (a full bucket's refill starts no earlier than the server's). Without this
//! a request held up by more than the margin gets the next one refused.
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use tokio::sync::{Mutex as AsyncMutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::clock;
use super::policy::SafetyMargin;
use crate::limits::{BucketUnit, Budget, RateLimit, TokenBucket};

/// The rate limiters of a process, one per account (provider kind + account identity).
///
/// Every [`crate::ProviderPurger`] uses [`RateRegistry::global`] unless given another with
/// [`crate::ProviderPurger::with_rate_registry`] (tests and benchmarks isolate themselves so).
/// The first purger to use an account fixes its limits, concurrency and margin.
#[derive(Debug, Default)]
pub struct RateRegistry {
    accounts: Mutex<HashMap<(String, String), Arc<AccountLimiter>>>,
    /// Where each account's schedule is kept beyond this process, if anywhere.
    store: Option<Arc<dyn RateStore>>,
}

impl RateRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        RateRegistry::default()
    }

    /// An empty registry whose accounts keep their schedules in `store`, shared with every
    /// process using it: each request's start is claimed there atomically.
    pub fn with_store(store: Arc<dyn RateStore>) -> Self {
        RateRegistry {
            store: Some(store),
            ..RateRegistry::default()
        }
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
        buckets: &[TokenBucket],
        max_in_flight: usize,
        margin: SafetyMargin,
    ) -> Arc<AccountLimiter> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .entry((kind.to_owned(), account.to_owned()))
            .or_insert_with(|| {
                let mut limiter =
                    AccountLimiter::new(rate, max_in_flight, margin).with_buckets(buckets);
                if let Some(store) = &self.store {
                    limiter.shared = Some((store.clone(), format!("{kind}/{account}")));
                }
                Arc::new(limiter)
            })
            .clone()
    }
}

/// How far ahead a claim in a [`RateStore`] is first made: a durable commit's time.
const INITIAL_LEAD: Duration = Duration::from_millis(20);

/// The most a claim is made ahead (a store slower than this still works, its starts later than
/// recorded by the difference).
const MAX_LEAD: Duration = Duration::from_secs(1);

/// How long a rate-limit rejection closes an account whose provider declares no rate window.
pub(crate) const DEFAULT_PENALTY_CAP: Duration = Duration::from_secs(60);

/// Why a wait for the account ended without a go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Paced {
    /// The purge was cancelled.
    Cancelled,
    /// The request could not start before the deadline; it could at `ready` (if known).
    Deadline {
        /// When the account would let it start.
        ready: Option<Instant>,
    },
    /// The shared schedule ([`RateStore`]) could not be read or written.
    Store(crate::Error),
}

/// An account's rate schedule as a [`RateStore`] keeps it, every instant in nanoseconds of
/// wall-clock time since the Unix epoch (processes share no monotonic clock).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateState {
    /// Start instants of the last requests (as many as the request budget's `amount`).
    #[serde(default)]
    pub started: Vec<u64>,
    /// When the item debt is paid.
    #[serde(default)]
    pub debt_paid_at: Option<u64>,
    /// Per token bucket, when it is full again (`None`: full).
    #[serde(default)]
    pub full_at: Vec<Option<u64>>,
    /// Until when a rate-limit rejection closed the account.
    #[serde(default)]
    pub blocked_until: Option<u64>,
    /// The shares of the account's in-flight capacity ([`crate::Limits::in_flight_capacity`])
    /// held by batches in progress, in every process using the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<CapacityHold>,
}

/// One batch's share of an account's in-flight capacity, as a [`RateStore`] keeps it: held from
/// the batch's admission until the engine sees its purge complete (or stops watching it), and
/// renewed meanwhile by the process holding it. A hold whose holder stopped renewing it (a
/// killed process) lapses at `expires_at`, a bounded time after its last renewal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapacityHold {
    /// The batch holding it: its run, provider and index (a resumed run's batch keeps it).
    pub id: String,
    /// Non-wildcard items held.
    pub items: u64,
    /// Wildcard items held.
    pub wildcards: u64,
    /// When it lapses unless renewed, in nanoseconds since the Unix epoch.
    pub expires_at: u64,
}

/// Where accounts' rate schedules live when several processes share them (a journal): each
/// request's start, and each batch's share of a provider's in-flight capacity
/// ([`CapacityHold`]), is claimed through [`RateStore::update`], atomically, so the processes
/// together keep within the provider's limits, and a process started after another was killed
/// starts from what that one spent. Without a store, schedules live in the process
/// ([`RateRegistry::new`]).
#[async_trait]
pub trait RateStore: Send + Sync + std::fmt::Debug {
    /// Atomically: reads the schedule of `account` (default when none is kept), lets `update`
    /// change it, writes it back. No other update of the same account may interleave.
    async fn update(
        &self,
        account: &str,
        update: &mut (dyn for<'s> FnMut(&'s mut RateState) + Send),
    ) -> crate::Result<()>;
}

/// A [`RateStore`] and an account's key in it.
pub(crate) type Shared = (Arc<dyn RateStore>, String);

/// The wall clock, in nanoseconds since the Unix epoch.
pub(super) fn wall_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One reading of both clocks, to carry instants between them.
#[derive(Clone, Copy)]
pub(super) struct Clocks {
    pub(super) now: Instant,
    pub(super) wall: u64,
}

impl Clocks {
    pub(super) fn read() -> Self {
        Clocks {
            now: Instant::now(),
            wall: wall_nanos(),
        }
    }

    pub(super) fn instant(self, wall: u64) -> Instant {
        if wall >= self.wall {
            clock::after(self.now, Duration::from_nanos(wall - self.wall))
        } else {
            self.now
                .checked_sub(Duration::from_nanos(self.wall - wall))
                .unwrap_or(self.now)
        }
    }

    pub(super) fn wall(self, at: Instant) -> u64 {
        if at >= self.now {
            let ahead = u64::try_from((at - self.now).as_nanos()).unwrap_or(u64::MAX);
            self.wall.saturating_add(ahead)
        } else {
            let behind = u64::try_from((self.now - at).as_nanos()).unwrap_or(u64::MAX);
            self.wall.saturating_sub(behind)
        }
    }
}

impl Schedule {
    fn from_state(state: &RateState, clocks: Clocks) -> Self {
        Schedule {
            started: state.started.iter().map(|&t| clocks.instant(t)).collect(),
            debt_paid_at: state.debt_paid_at.map(|t| clocks.instant(t)),
            full_at: state
                .full_at
                .iter()
                .map(|t| t.map(|t| clocks.instant(t)))
                .collect(),
            blocked_until: state.blocked_until.map(|t| clocks.instant(t)),
        }
    }

    /// Writes the schedule into `state`, leaving its capacity holds as they are.
    fn write_to(&self, state: &mut RateState, clocks: Clocks) {
        state.started = self.started.iter().map(|&t| clocks.wall(t)).collect();
        state.debt_paid_at = self.debt_paid_at.map(|t| clocks.wall(t));
        state.full_at = self
            .full_at
            .iter()
            .map(|t| t.map(|t| clocks.wall(t)))
            .collect();
        state.blocked_until = self.blocked_until.map(|t| clocks.wall(t));
    }
}

/// A request's start as the schedule recorded it, for [`AccountLimiter::answered`] to find it
/// again: an instant of this process, or the wall-clock nanoseconds written to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Started {
    /// Recorded in this process's schedule.
    Here(Instant),
    /// Recorded in the [`RateStore`], as written there.
    Shared(u64),
}

/// What one look at the schedule said.
enum Step {
    /// Recorded as started now.
    Started,
    /// Not before this instant.
    Wait(Instant),
}

/// One account's budgets, concurrency limit and back-off state.
#[derive(Debug)]
pub(crate) struct AccountLimiter {
    rate: RateLimit,
    buckets: Vec<TokenBucket>,
    margin: SafetyMargin,
    in_flight: Arc<Semaphore>,
    /// The account's turn: requests wait for the schedule one at a time, in arrival order.
    gate: AsyncMutex<()>,
    /// The schedule kept in this process (unused when the account is shared through a store).
    /// Not held across a wait, so an answer is counted while the next request waits.
    schedule: Mutex<Schedule>,
    blocked_until: Mutex<Option<Instant>>,
    /// The store the schedule is kept in beyond this process, and the account's key there.
    shared: Option<Shared>,
    /// How far ahead a claim in the store is made (see [`AccountLimiter::pace`]).
    lead: Mutex<Duration>,
}

/// What has been sent: start instants of the last `amount` requests, when the item debt
/// is paid, and each token bucket's `tat` (when it is full again; `None`: full).
#[derive(Debug, Default)]
struct Schedule {
    started: VecDeque<Instant>,
    debt_paid_at: Option<Instant>,
    full_at: Vec<Option<Instant>>,
    /// A rejection's closing, as another process sharing the schedule recorded it.
    blocked_until: Option<Instant>,
}

/// What one request asks of the limiter: its items and its batch's scope (`None` for a status
/// poll, which carries neither).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cost<'a> {
    pub(crate) items: usize,
    pub(crate) scope: Option<&'a str>,
}

impl Cost<'_> {
    /// A request with no items and no scope (a status poll).
    pub(crate) const NONE: Cost<'static> = Cost {
        items: 0,
        scope: None,
    };

    /// The tokens it takes from `bucket` (0 when the bucket is for another scope).
    fn tokens(&self, bucket: &TokenBucket) -> u64 {
        if !bucket.applies_to(self.scope) {
            return 0;
        }
        match bucket.unit {
            BucketUnit::Requests => 1,
            BucketUnit::Items => self.items as u64,
        }
    }
}

/// The refill time of `tokens` tokens of `bucket` (`tokens × per / amount`), in whole
/// nanoseconds rounded up, so a schedule never runs ahead of the bucket.
fn refill_time(bucket: &TokenBucket, tokens: u64) -> Duration {
    let amount = u128::from(bucket.refill.amount.max(1));
    let nanos = (bucket.refill.per.as_nanos() * u128::from(tokens)).div_ceil(amount);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl AccountLimiter {
    pub(crate) fn new(rate: RateLimit, max_in_flight: usize, margin: SafetyMargin) -> Self {
        AccountLimiter {
            rate,
            buckets: Vec::new(),
            margin,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            gate: AsyncMutex::new(()),
            schedule: Mutex::new(Schedule::default()),
            blocked_until: Mutex::new(None),
            shared: None,
            lead: Mutex::new(INITIAL_LEAD),
        }
    }

    /// The same limiter, also keeping `buckets`.
    pub(crate) fn with_buckets(mut self, buckets: &[TokenBucket]) -> Self {
        self.buckets = buckets.to_vec();
        self
    }

    /// The store the account's state is shared through, and its key there, if any.
    pub(crate) fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
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

    /// Waits until a request of `cost` may start under the budgets and buckets, and records
    /// it as started now; the answer is to be reported with what this returns
    /// ([`AccountLimiter::answered`]). Nothing is recorded when cancelled first, or when the
    /// request could not start by `deadline` (then it does not wait at all, and says when it
    /// could start).
    pub(crate) async fn pace(
        &self,
        cost: Cost<'_>,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<Started, Paced> {
        let turn = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Paced::Cancelled),
            turn = self.gate.lock() => turn,
            _ = tokio::time::sleep_until(deadline) => return Err(Paced::Deadline { ready: None }),
        };
        loop {
            let at = match &self.shared {
                None => {
                    let now = Instant::now();
                    match self.step(&mut self.local(), cost, now) {
                        Step::Started => return Ok(Started::Here(now)),
                        Step::Wait(at) => at,
                    }
                }
                Some((store, key)) => {
                    // The shared schedule, claimed atomically: read, step, written back. The
                    // claim is for a start `lead` ahead, the time a claim takes to commit, and
                    // the request then waits for that instant: the start recorded is the start
                    // made, however long the store took (within the safety margin).
                    let clocks = Clocks::read();
                    let lead = *self.lead.lock().unwrap_or_else(|e| e.into_inner());
                    let start = clock::after(clocks.now, lead);
                    let mut step = None;
                    let updated = store
                        .update(key, &mut |state| {
                            let mut shared = Schedule::from_state(state, clocks);
                            step = Some(self.step(&mut shared, cost, start));
                            let local =
                                *self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
                            shared.blocked_until = shared.blocked_until.max(local);
                            shared.write_to(state, clocks);
                        })
                        .await;
                    // The lead follows the time claims take: half again the last one, or a
                    // decaying memory of slower ones.
                    let took = clocks.now.elapsed();
                    {
                        let mut lead = self.lead.lock().unwrap_or_else(|e| e.into_inner());
                        *lead = (took * 3 / 2)
                            .max(*lead * 4 / 5)
                            .clamp(INITIAL_LEAD, MAX_LEAD);
                    }
                    match (updated, step) {
                        (Ok(()), Some(Step::Started)) => {
                            // Recorded in the store: the next request of this process may claim
                            // its start while this one waits for its own.
                            drop(turn);
                            tokio::time::sleep_until(start).await;
                            return Ok(Started::Shared(clocks.wall(start)));
                        }
                        (Ok(()), Some(Step::Wait(at))) => at,
                        (Err(e), _) => return Err(Paced::Store(e)),
                        (Ok(()), None) => {
                            return Err(Paced::Store(crate::Error::Journal {
                                message: "the rate store did not apply the update".to_owned(),
                            }));
                        }
                    }
                }
            };
            if at > deadline {
                return Err(Paced::Deadline { ready: Some(at) });
            }
            // A claim in a store is made a lead ahead: wake that much early, so the start
            // claimed is `at` itself.
            let wake = match &self.shared {
                Some(_) => {
                    let lead = *self.lead.lock().unwrap_or_else(|e| e.into_inner());
                    at.checked_sub(lead).unwrap_or(at)
                }
                None => at,
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Paced::Cancelled),
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// One look at `schedule` at `now`: records a request of `cost` as started now if it may
    /// start, else says when it may.
    fn step(&self, schedule: &mut Schedule, cost: Cost<'_>, now: Instant) -> Step {
        let ready = self.ready_at(schedule, cost.items);
        let ready = match (ready, self.bucket_ready_at(schedule, cost, now)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match ready.filter(|at| *at > now) {
            Some(at) => Step::Wait(at),
            None => {
                self.record(schedule, now, cost.items);
                self.take_tokens(schedule, cost, now);
                Step::Started
            }
        }
    }

    /// The request of `cost`, recorded as `started`, has been answered now: the server charged
    /// it no later than this, so each budget counts it as charged now at the latest (see the
    /// module docs). An answer within the margins changes nothing, and writes nothing to a
    /// store.
    pub(crate) async fn answered(&self, cost: Cost<'_>, started: Started) {
        match (&self.shared, started) {
            (Some((store, key)), Started::Shared(wall)) => {
                let clocks = Clocks::read();
                let started = clocks.instant(wall);
                if !self.moved_by(cost, started, clocks.now) {
                    return;
                }
                let updated = store
                    .update(key, &mut |state| {
                        let mut shared = Schedule::from_state(state, clocks);
                        self.charged_by(&mut shared, cost, started, clocks.now);
                        shared.write_to(state, clocks);
                    })
                    .await;
                if let Err(e) = updated {
                    tracing::warn!("rate store: {e}");
                }
            }
            (None, Started::Here(started)) => {
                let now = Instant::now();
                if self.moved_by(cost, started, now) {
                    self.charged_by(&mut self.local(), cost, started, now);
                }
            }
            // A start from another schedule: nothing of it to move.
            _ => {}
        }
    }

    /// Whether the answer at `now` to a request of `cost` started at `started` moves anything
    /// in the schedule: it takes bucket tokens (whose refill always counts from the answer), or
    /// it may have been charged later than the margin of its request window or item debt covers.
    fn moved_by(&self, cost: Cost<'_>, started: Instant, now: Instant) -> bool {
        if self.buckets.iter().any(|b| cost.tokens(b) > 0) {
            return true;
        }
        let took = now.saturating_duration_since(started);
        let window = self
            .rate
            .requests
            .filter(|b| b.amount > 0)
            .is_some_and(|b| took > self.margin.for_span(b.per));
        let debt = self
            .item_cost(cost.items)
            .is_some_and(|c| took > self.margin.for_span(c));
        window || debt
    }

    /// The schedule kept in this process.
    fn local(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`AccountLimiter::answered`] on `schedule`: the request recorded as started at
    /// `started` was charged by `now`.
    fn charged_by(&self, schedule: &mut Schedule, cost: Cost<'_>, started: Instant, now: Instant) {
        if let Some(b) = self.rate.requests.filter(|b| b.amount > 0) {
            // Counted from the answer less the margin the window's wait adds: the request
            // `amount` later starts no earlier than the answer plus `per`.
            let at = now.checked_sub(self.margin.for_span(b.per)).unwrap_or(now);
            if let Some(entry) = schedule.started.iter_mut().find(|t| **t == started) {
                *entry = (*entry).max(at);
                schedule.started.make_contiguous().sort();
            }
        }
        if let Some(debt) = self.item_cost(cost.items) {
            // Paid no earlier than the answer plus the items' cost (the margin was for a start).
            let paid = clock::after(now, debt);
            schedule.debt_paid_at = Some(schedule.debt_paid_at.map_or(paid, |t| t.max(paid)));
        }
        schedule.full_at.resize(self.buckets.len(), None);
        for (i, bucket) in self.buckets.iter().enumerate() {
            let tokens = cost.tokens(bucket);
            if tokens > 0 {
                let latest = clock::after(now, refill_time(bucket, tokens));
                schedule.full_at[i] = Some(schedule.full_at[i].map_or(latest, |t| t.max(latest)));
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
            // A bucket refills a token in `per / amount`: wait the slowest bucket's token.
            (None, None) => self.buckets.iter().map(|b| refill_time(b, 1)).max(),
        }
    }

    fn ready_at(&self, schedule: &Schedule, items: usize) -> Option<Instant> {
        let local = *self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
        let mut ready = local.max(schedule.blocked_until);
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

    /// When every bucket holds `cost`'s tokens (plus the margin on the wait), if any must be
    /// waited for.
    fn bucket_ready_at(
        &self,
        schedule: &Schedule,
        cost: Cost<'_>,
        now: Instant,
    ) -> Option<Instant> {
        let mut ready: Option<Instant> = None;
        for (i, bucket) in self.buckets.iter().enumerate() {
            let tokens = cost.tokens(bucket);
            if tokens == 0 {
                continue;
            }
            let base = schedule
                .full_at
                .get(i)
                .copied()
                .flatten()
                .map_or(now, |t| t.max(now));
            let at = clock::after(base, refill_time(bucket, tokens))
                .checked_sub(refill_time(bucket, u64::from(bucket.burst)))
                .unwrap_or(now);
            if at > now {
                let wait = at - now;
                let at = clock::after(at, self.margin.for_span(wait));
                ready = Some(ready.map_or(at, |r| r.max(at)));
            }
        }
        ready
    }

    fn take_tokens(&self, schedule: &mut Schedule, cost: Cost<'_>, now: Instant) {
        schedule.full_at.resize(self.buckets.len(), None);
        for (i, bucket) in self.buckets.iter().enumerate() {
            let tokens = cost.tokens(bucket);
            if tokens == 0 {
                continue;
            }
            let base = schedule.full_at[i].map_or(now, |t| t.max(now));
            schedule.full_at[i] = Some(clock::after(base, refill_time(bucket, tokens)));
        }
    }

    fn record(&self, schedule: &mut Schedule, now: Instant, items: usize) {
        if let Some(b) = self.rate.requests.filter(|b| b.amount > 0) {
            schedule.started.push_back(now);
            while schedule.started.len() > b.amount as usize {
                schedule.started.pop_front();
            }
        }
        if let Some(cost) = self.item_cost(items) {
            schedule.debt_paid_at = Some(clock::after(
                now,
                cost.saturating_add(self.margin.for_span(cost)),
            ));
        }
    }

    /// The item debt a request of `items` items runs up (`None`: no item budget, or no items).
    fn item_cost(&self, items: usize) -> Option<Duration> {
        let b = self.rate.items.filter(|b| b.amount > 0 && items > 0)?;
        Some(debt(b, items))
    }
}

/// A [`RateStore`] in memory, each update under one lock as a journal's transaction: processes
/// sharing a store, simulated in one.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct Memory(pub(super) Mutex<HashMap<String, RateState>>);

#[cfg(test)]
#[async_trait]
impl RateStore for Memory {
    async fn update(
        &self,
        account: &str,
        update: &mut (dyn for<'s> FnMut(&'s mut RateState) + Send),
    ) -> crate::Result<()> {
        let mut states = self.0.lock().unwrap();
        update(states.entry(account.to_owned()).or_default());
        Ok(())
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
            let cost = Cost {
                items: k,
                scope: None,
            };
            assert!(l.pace(cost, &cancel, never()).await.is_ok());
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
        assert_eq!(
            l.pace(Cost::NONE, &cancel, never()).await,
            Err(Paced::Cancelled)
        );
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
        const ONE: Cost<'static> = Cost {
            items: 1,
            scope: None,
        };
        let l = limiter(RateLimit {
            requests: Some(Budget::new(1, Duration::from_secs(60))),
            items: None,
        });
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(30);
        assert!(l.pace(ONE, &cancel, deadline).await.is_ok());
        assert_eq!(
            l.pace(ONE, &cancel, deadline).await,
            Err(Paced::Deadline {
                ready: Some(t0 + Duration::from_secs(60))
            })
        );
        assert_eq!(t0.elapsed(), Duration::ZERO, "it did not wait");
        // Within the deadline it waits.
        let later = t0 + Duration::from_secs(61);
        assert!(l.pace(ONE, &cancel, later).await.is_ok());
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
        let a = r.limiter(
            "x",
            "acct",
            RateLimit::default(),
            &[],
            1,
            SafetyMargin::NONE,
        );
        let b = r.limiter(
            "x",
            "acct",
            RateLimit::default(),
            &[],
            4,
            SafetyMargin::NONE,
        );
        let c = r.limiter(
            "y",
            "acct",
            RateLimit::default(),
            &[],
            1,
            SafetyMargin::NONE,
        );
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    fn bucket(unit: BucketUnit, scope: Option<&str>, burst: u32, refill: Budget) -> TokenBucket {
        TokenBucket {
            unit,
            scopes: scope.map(str::to_owned).into_iter().collect(),
            burst,
            refill,
        }
    }

    /// Start offsets (s) of requests of the given (items, scope), paced one after another.
    async fn scoped_starts(l: &AccountLimiter, costs: &[(usize, Option<&str>)]) -> Vec<f64> {
        let t0 = Instant::now();
        let cancel = CancellationToken::new();
        let mut out = Vec::new();
        for &(items, scope) in costs {
            assert!(
                l.pace(Cost { items, scope }, &cancel, never())
                    .await
                    .is_ok()
            );
            out.push((Instant::now() - t0).as_secs_f64());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_bucket_allows_its_burst_then_its_refill_rate() {
        // 3 tokens, 1 per 2 s: three at once, then one every 2 s.
        let l = limiter(RateLimit::default()).with_buckets(&[bucket(
            BucketUnit::Requests,
            None,
            3,
            Budget::new(1, Duration::from_secs(2)),
        )]);
        assert_eq!(
            scoped_starts(&l, &[(0, None); 6]).await,
            [0.0, 0.0, 0.0, 2.0, 4.0, 6.0]
        );
        // Idle time refills, but never past the burst.
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(
            scoped_starts(&l, &[(0, None); 4]).await,
            [0.0, 0.0, 0.0, 2.0]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_over_several_scopes_is_one_budget() {
        // Cloudflare's request bucket: tag and host purges share 2 tokens, 1 a second; file
        // purges and polls take none of it.
        let l = limiter(RateLimit::default()).with_buckets(&[TokenBucket {
            unit: BucketUnit::Requests,
            scopes: vec!["tags".into(), "hosts".into()],
            burst: 2,
            refill: Budget::new(1, Duration::from_secs(1)),
        }]);
        assert_eq!(
            scoped_starts(
                &l,
                &[
                    (30, Some("tags")),
                    (1, Some("hosts")),
                    (30, Some("files")),
                    (0, None),
                    (30, Some("tags")),
                    (1, Some("hosts")),
                ]
            )
            .await,
            [0.0, 0.0, 0.0, 0.0, 1.0, 2.0]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_bucket_charges_per_item_and_only_its_scope() {
        // Akamai's URL bucket: 10,000 burst, 200 a second; a tag bucket beside it.
        let l = limiter(RateLimit::default()).with_buckets(&[
            bucket(
                BucketUnit::Items,
                Some("url"),
                10_000,
                Budget::new(200, Duration::from_secs(1)),
            ),
            bucket(
                BucketUnit::Items,
                Some("tag"),
                5_000,
                Budget::per_minute(500),
            ),
        ]);
        assert_eq!(
            scoped_starts(
                &l,
                &[
                    (6_000, Some("url")),
                    (4_000, Some("url")),  // the bucket is empty now
                    (1_000, Some("url")),  // 1,000 URLs refill in 5 s
                    (5_000, Some("tag")),  // another bucket: no wait
                    (500, Some("tag")),    // 500 tags refill in 60 s
                    (0, None),             // a poll takes from neither
                    (10_000, Some("url")), // full again since 55 s: no wait
                    (1, Some("url")),      // one URL: 5 ms
                ]
            )
            .await,
            [0.0, 0.0, 5.0, 5.0, 65.0, 65.0, 65.0, 65.005]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_bucket_must_allow_the_request() {
        // Requests: 2 burst, 1 a second; URLs: 100 burst, 10 a second.
        let l = limiter(RateLimit::default()).with_buckets(&[
            bucket(
                BucketUnit::Requests,
                None,
                2,
                Budget::new(1, Duration::from_secs(1)),
            ),
            bucket(
                BucketUnit::Items,
                Some("url"),
                100,
                Budget::new(10, Duration::from_secs(1)),
            ),
        ]);
        assert_eq!(
            scoped_starts(
                &l,
                &[
                    (1, Some("url")),
                    (1, Some("url")),
                    (50, Some("url")),
                    (100, Some("url"))
                ]
            )
            .await,
            // The third waits a request token (1 s); the fourth the 50 URLs the third took.
            [0.0, 0.0, 1.0, 6.0]
        );
        assert_eq!(l.rejection_wait(), Some(Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_moves_a_full_buckets_refill_to_the_answer() {
        // 10 tokens, 1 per second. A 10-token request paced at 0 and answered at 3 s may have
        // been charged at 3 s: the bucket is full again at 13 s, not 10 s.
        let l = limiter(RateLimit::default()).with_buckets(&[bucket(
            BucketUnit::Items,
            None,
            10,
            Budget::new(1, Duration::from_secs(1)),
        )]);
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let cost = Cost {
            items: 10,
            scope: None,
        };
        let first = l.pace(cost, &cancel, never()).await.unwrap();
        tokio::time::advance(Duration::from_secs(3)).await;
        l.answered(cost, first).await;
        let second = l.pace(cost, &cancel, never()).await.unwrap();
        assert_eq!((Instant::now() - t0).as_secs_f64(), 13.0);
        // A draining bucket is not moved: its own schedule is later already.
        l.answered(
            Cost {
                items: 1,
                scope: None,
            },
            second,
        )
        .await;
        let one = Cost {
            items: 1,
            scope: None,
        };
        assert!(l.pace(one, &cancel, never()).await.is_ok());
        assert_eq!((Instant::now() - t0).as_secs_f64(), 14.0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_moves_the_request_s_start_and_the_item_debt_to_the_answer() {
        // 2 requests per 10 s, 1 item per second: two 5-item requests, then two polls (no
        // items). The first, started at 0, is answered at 3 s: the second waits for its debt
        // from that answer (8 s, not 5 s), and the third, a poll, for the window counted from
        // it (13 s, not 10 s).
        let l = limiter(RateLimit {
            requests: Some(Budget::new(2, Duration::from_secs(10))),
            items: Some(Budget::per_minute(60)),
        });
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let five = Cost {
            items: 5,
            scope: None,
        };
        let first = l.pace(five, &cancel, never()).await.unwrap();
        tokio::time::advance(Duration::from_secs(3)).await;
        l.answered(five, first).await;
        let second = l.pace(five, &cancel, never()).await.unwrap();
        assert_eq!(second, Started::Here(t0 + Duration::from_secs(8)));
        l.answered(five, second).await;
        let third = l.pace(Cost::NONE, &cancel, never()).await.unwrap();
        assert_eq!(third, Started::Here(t0 + Duration::from_secs(13)));
        // An answer for a start the window no longer holds moves nothing there.
        l.answered(Cost::NONE, first).await;
        let fourth = l.pace(Cost::NONE, &cancel, never()).await.unwrap();
        assert_eq!(fourth, Started::Here(t0 + Duration::from_secs(18)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_within_the_margin_changes_nothing() {
        // 1 request per 10 s, margin 0.2 s. Answered 0.2 s after its start, the first request
        // keeps its place (the second starts at 10.2 s); answered 0.5 s after, the second counts
        // from 0.3 s after its start (the answer less the margin): the third at 20.7 s.
        let l = AccountLimiter::new(
            RateLimit {
                requests: Some(Budget::new(1, Duration::from_secs(10))),
                items: None,
            },
            1,
            SafetyMargin::default(),
        );
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let at = |s: f64| Started::Here(t0 + Duration::from_secs_f64(s));
        let first = l.pace(Cost::NONE, &cancel, never()).await.unwrap();
        tokio::time::advance(Duration::from_millis(200)).await;
        l.answered(Cost::NONE, first).await;
        let second = l.pace(Cost::NONE, &cancel, never()).await.unwrap();
        assert_eq!(second, at(10.2));
        tokio::time::advance(Duration::from_millis(500)).await;
        l.answered(Cost::NONE, second).await;
        let third = l.pace(Cost::NONE, &cancel, never()).await.unwrap();
        assert_eq!(third, at(20.7));

        // In a store, such an answer writes nothing.
        let store = Arc::new(Memory::default());
        let mut l = AccountLimiter::new(
            RateLimit {
                requests: Some(Budget::new(1, Duration::from_secs(10))),
                items: Some(Budget::per_minute(60)),
            },
            1,
            SafetyMargin::default(),
        );
        l.shared = Some((store.clone(), "k".to_owned()));
        let one = Cost {
            items: 1,
            scope: None,
        };
        let started = l.pace(one, &cancel, never()).await.unwrap();
        let before = store.0.lock().unwrap()["k"].clone();
        store.0.lock().unwrap().clear();
        l.answered(one, started).await;
        assert!(store.0.lock().unwrap().is_empty(), "written: {before:?}");
    }

    #[tokio::test]
    async fn an_answer_moves_the_start_and_the_debt_in_a_shared_store() {
        let store = Arc::new(Memory::default());
        let mut l = limiter(RateLimit {
            requests: Some(Budget::new(10, Duration::from_secs(60))),
            items: Some(Budget::per_minute(60)),
        });
        l.shared = Some((store.clone(), "k".to_owned()));
        let cost = Cost {
            items: 2,
            scope: None,
        };
        let state = || store.0.lock().unwrap()["k"].clone();
        let started = l
            .pace(cost, &CancellationToken::new(), never())
            .await
            .unwrap();
        let Started::Shared(wall) = started else {
            panic!("{started:?}");
        };
        assert_eq!(state().started, [wall]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        l.answered(cost, started).await;
        let after = state();
        let [answered] = after.started[..] else {
            panic!("{after:?}");
        };
        assert!(answered > wall, "{after:?}");
        // 2 items at 1 s each, from the answer.
        assert_eq!(after.debt_paid_at, Some(answered + 2_000_000_000));
    }

    #[tokio::test(start_paused = true)]
    async fn the_margin_is_added_to_bucket_waits_only() {
        let l =
            AccountLimiter::new(RateLimit::default(), 1, SafetyMargin::default()).with_buckets(&[
                bucket(
                    BucketUnit::Requests,
                    None,
                    1,
                    Budget::new(1, Duration::from_secs(10)),
                ),
            ]);
        // 2 % of the 10 s wait, capped at 250 ms.
        assert_eq!(scoped_starts(&l, &[(0, None); 3]).await, [0.0, 10.2, 20.4]);
    }
}
