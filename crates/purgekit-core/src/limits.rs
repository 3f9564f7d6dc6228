//! What a provider can do and how much of it, as data: one planner and one engine read these.

use std::time::Duration;

use serde::Serialize;

use crate::request::{OptionKind, TargetKind};

/// `amount` units per `per` (a sliding window for requests, a refilling bucket for items).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Units allowed per window.
    pub amount: u32,
    /// The window.
    #[serde(with = "secs")]
    pub per: Duration,
}

impl Budget {
    /// `amount` per `per`.
    pub const fn new(amount: u32, per: Duration) -> Self {
        Budget { amount, per }
    }

    /// `amount` per minute.
    pub const fn per_minute(amount: u32) -> Self {
        Budget::new(amount, Duration::from_secs(60))
    }
}

/// Rate limits the provider enforces per account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Requests per window (Level 3: 10 per minute per key).
    pub requests: Option<Budget>,
    /// Items (paths, patterns, tags, URLs) per window (Limelight: 60 per minute, as debt).
    pub items: Option<Budget>,
}

impl RateLimit {
    /// The least time requests carrying `batch_items` items (in sending order) take under
    /// this limit, from the first request sent to the last: a request budget lets `amount`
    /// requests go per window, so `n` requests take `(n - 1) / amount` windows; an item budget
    /// is debt (each item costs `per / amount`), so every request but the last must be paid
    /// off first. The larger of the two; zero without a limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use purgekit_core::{Budget, RateLimit};
    /// let level3 = RateLimit { requests: Some(Budget::per_minute(10)), items: None };
    /// assert_eq!(level3.least_time(&[1000; 25]), Duration::from_secs(120));
    /// let limelight = RateLimit { requests: None, items: Some(Budget::per_minute(60)) };
    /// assert_eq!(limelight.least_time(&[100; 50]), Duration::from_secs(49 * 100));
    /// ```
    pub fn least_time(&self, batch_items: &[usize]) -> Duration {
        let requests = self
            .requests
            .filter(|b| b.amount > 0)
            .map_or(Duration::ZERO, |b| {
                let windows = batch_items.len().saturating_sub(1) / b.amount as usize;
                b.per
                    .saturating_mul(u32::try_from(windows).unwrap_or(u32::MAX))
            });
        let items = self
            .items
            .filter(|b| b.amount > 0)
            .map_or(Duration::ZERO, |b| {
                let paid: usize = batch_items[..batch_items.len().saturating_sub(1)]
                    .iter()
                    .sum();
                b.per
                    .checked_div(b.amount)
                    .unwrap_or(Duration::ZERO)
                    .saturating_mul(u32::try_from(paid).unwrap_or(u32::MAX))
            });
        requests.max(items)
    }
}

/// What a [`TokenBucket`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketUnit {
    /// Each request takes one token.
    Requests,
    /// Each request takes one token per item it carries.
    Items,
}

/// A token bucket (Akamai's limits): it holds at most `burst` tokens and starts full, and gains
/// `refill.amount` tokens every `refill.per`, continuously. A request takes its cost (one
/// token, or one per item, by `unit`) and waits until the bucket holds that much. A bucket with
/// `scopes` only concerns batches of those scopes ([`crate::Batch::scope`]; several when one
/// budget covers several calls, e.g. Cloudflare's tag, host, prefix and everything purges);
/// status polls carry no items and no scope, so they take only from unscoped request buckets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenBucket {
    /// What it counts.
    pub unit: BucketUnit,
    /// The batch scopes it applies to; empty for every request.
    pub scopes: Vec<String>,
    /// The most tokens it holds (also the largest cost it can ever grant).
    pub burst: u32,
    /// The refill rate.
    pub refill: Budget,
}

impl TokenBucket {
    /// Whether a request of batch scope `scope` (`None`: a status poll) takes from it.
    pub fn applies_to(&self, scope: Option<&str>) -> bool {
        self.scopes.is_empty() || scope.is_some_and(|s| self.scopes.iter().any(|b| b == s))
    }
}

/// Everything the planner and the engine need to schedule a provider's requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Most items in one request.
    pub max_items: usize,
    /// Most items in one request of a given batch scope, in place of [`Limits::max_items`] for
    /// that scope (with [`Limits::group_by_scope`]): a provider whose calls differ per kind of
    /// item (Fastly: one URL per single-URL purge, 256 surrogate keys per batch purge; a
    /// service-wide purge alone). A scope not listed gets [`Limits::max_items`].
    pub max_items_per_scope: Vec<(String, usize)>,
    /// Most body bytes in one request, counting [`crate::Provider::body_overhead`].
    pub max_body_bytes: Option<usize>,
    /// A wildcard item must be the only item of its request.
    pub wildcard_alone: bool,
    /// Items of different scopes never share a request (Level 3: one per network identifier),
    /// unless [`Limits::shared_scope`] lets them share one at a parent scope.
    pub group_by_scope: bool,
    /// Scopes that may share one request at a parent scope (Level 3: the network identifiers
    /// of the access group, in one access-group-scope request); `None`: scopes never share.
    /// Used with [`Limits::group_by_scope`].
    pub shared_scope: Option<SharedScope>,
    /// Rate limits per account.
    pub rate: RateLimit,
    /// Token buckets per account, on top of [`Limits::rate`] (each must allow a request).
    pub buckets: Vec<TokenBucket>,
    /// Most items the provider keeps queued per account (Limelight: 1000).
    pub max_queued_items: Option<usize>,
    /// Most requests in flight at once per account.
    pub max_in_flight: usize,
    /// Most bytes of a response body the engine reads ([`DEFAULT_MAX_RESPONSE_BYTES`] unless the
    /// provider documents larger answers); past it the attempt fails, unretried, with
    /// "response larger than N bytes".
    pub max_response_bytes: usize,
    /// Capacity the provider holds for accepted purges until they complete (CloudFront: 3,000
    /// paths and 15 wildcard paths in progress per distribution). The engine admits a batch only
    /// when its items fit, polls completion to free the capacity, and never sends past it; a wait
    /// for capacity ends at the run's deadline. Only for providers with a status call
    /// ([`crate::CompletionModel::Polled`]): [`crate::ProviderPurger`] refuses the others.
    pub in_flight_capacity: Option<InFlightCapacity>,
    /// What the provider bills for, when it bills per purged item (CloudFront: paths, a
    /// wildcard counting as one). `plan` shows the units a purge would cost.
    pub billing: Option<Billing>,
}

/// Items a provider keeps in progress at once, released only when their purge completes.
///
/// Wildcard and other items are counted apart (each with its own allowance), and the planner
/// never mixes them in one batch, so each kind is admitted as soon as its own allowance frees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InFlightCapacity {
    /// Most non-wildcard items in progress at once.
    pub items: usize,
    /// Most wildcard items in progress at once.
    pub wildcards: usize,
}

/// A provider's billing unit: every planned item (after duplicates merge) costs one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Billing {
    /// The unit, plural (`paths`).
    pub unit: &'static str,
    /// The provider's terms, for humans (free allowance, price).
    pub terms: &'static str,
}

/// Scopes that may share one request under a parent scope: the planner puts items of several
/// scopes in one batch when they fit together, and that batch's [`crate::Batch::scope`] is
/// `parent`; a batch whose items all have one scope keeps that scope, as without sharing.
///
/// [`Limits::max_items`] counts every scope's items; each scope of a shared batch gets its own
/// handle ([`crate::Provider::decode_shared`]), and each is polled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedScope {
    /// The scope of a request whose items span several scopes (never an item's own scope).
    pub parent: String,
    /// With [`Limits::wildcard_alone`]: a wildcard must be the only item of its scope within a
    /// shared request, and may share the request with other scopes (Level 3: the Lumen
    /// document's Example 4, one wildcard path per property). `false`: a wildcard stays alone
    /// in its request.
    pub wildcard_alone_in_scope: bool,
    /// Body bytes a shared request's envelope adds to [`crate::Provider::body_overhead`]
    /// (Level 3: `<properties></properties>` instead of `<paths></paths>`, 10).
    pub request_overhead: usize,
    /// Body bytes each scope of a shared request adds besides its items and its scope's own
    /// length in bytes (Level 3: `<property><name></name><paths></paths></property>`, 49,
    /// plus the network identifier). Batch sizes, and [`Limits::max_body_bytes`], count these.
    pub scope_overhead: usize,
}

impl SharedScope {
    /// Body bytes scope `scope` adds to a shared request besides its items.
    pub fn scope_bytes(&self, scope: &str) -> usize {
        self.scope_overhead + scope.len()
    }
}

/// The response body cap of [`Limits::default`]: 1 MiB, far above any documented answer of the
/// supported providers (a few kilobytes).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

impl Limits {
    /// Most items in one request of batch scope `scope`: its entry in
    /// [`Limits::max_items_per_scope`] when scopes are grouped, else [`Limits::max_items`].
    ///
    /// ```
    /// use purgekit_core::Limits;
    /// let limits = Limits {
    ///     max_items: 256,
    ///     max_items_per_scope: vec![("url".into(), 1)],
    ///     group_by_scope: true,
    ///     ..Limits::default()
    /// };
    /// assert_eq!((limits.max_items_for("url"), limits.max_items_for("keys")), (1, 256));
    /// ```
    pub fn max_items_for(&self, scope: &str) -> usize {
        if !self.group_by_scope {
            return self.max_items;
        }
        self.max_items_per_scope
            .iter()
            .find(|(s, _)| s == scope)
            .map_or(self.max_items, |&(_, n)| n)
    }

    /// The least time requests of these `(scope, items)` (in sending order) take under the
    /// rate limit ([`RateLimit::least_time`]) and every token bucket (it starts full with
    /// `burst` tokens; what the requests of its scope cost beyond that comes at its refill
    /// rate): the largest of them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use purgekit_core::{Budget, BucketUnit, Limits, TokenBucket};
    /// let limits = Limits {
    ///     buckets: vec![TokenBucket {
    ///         unit: BucketUnit::Items,
    ///         scopes: vec![],
    ///         burst: 100,
    ///         refill: Budget::new(10, Duration::from_secs(1)),
    ///     }],
    ///     ..Limits::default()
    /// };
    /// assert_eq!(limits.least_time(&[("", 100), ("", 50)]), Duration::from_secs(5));
    /// ```
    pub fn least_time(&self, batches: &[(&str, usize)]) -> Duration {
        let sizes: Vec<usize> = batches.iter().map(|&(_, items)| items).collect();
        let mut least = self.rate.least_time(&sizes);
        for bucket in &self.buckets {
            let cost: u64 = batches
                .iter()
                .filter(|(scope, _)| bucket.applies_to(Some(scope)))
                .map(|&(_, items)| match bucket.unit {
                    BucketUnit::Requests => 1,
                    BucketUnit::Items => items as u64,
                })
                .sum();
            let short = cost.saturating_sub(u64::from(bucket.burst));
            if short > 0 && bucket.refill.amount > 0 {
                let refill = bucket
                    .refill
                    .per
                    .mul_f64(short as f64 / f64::from(bucket.refill.amount));
                least = least.max(refill);
            }
        }
        least
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_items: 1,
            max_items_per_scope: Vec::new(),
            max_body_bytes: None,
            wildcard_alone: false,
            group_by_scope: false,
            shared_scope: None,
            rate: RateLimit::default(),
            buckets: Vec::new(),
            max_queued_items: None,
            max_in_flight: 1,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            in_flight_capacity: None,
            billing: None,
        }
    }
}

/// The target kinds and options a provider supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Target kinds it can purge.
    pub targets: Vec<TargetKind>,
    /// Options it honours natively.
    pub options: Vec<OptionKind>,
}

impl Capabilities {
    /// Whether `kind` targets can be purged.
    pub fn supports_target(&self, kind: TargetKind) -> bool {
        self.targets.contains(&kind)
    }

    /// Whether `option` is honoured natively.
    pub fn supports_option(&self, option: OptionKind) -> bool {
        self.options.contains(&option)
    }

    /// What any of `all` supports (the capabilities of a fan-out).
    pub fn union<'a>(all: impl IntoIterator<Item = &'a Capabilities>) -> Capabilities {
        let mut out = Capabilities {
            targets: Vec::new(),
            options: Vec::new(),
        };
        for c in all {
            out.targets.extend(&c.targets);
            out.options.extend(&c.options);
        }
        out.targets.sort();
        out.targets.dedup();
        out.options.sort();
        out.options.dedup();
        out
    }
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}
