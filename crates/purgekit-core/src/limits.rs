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

/// Everything the planner and the engine need to schedule a provider's requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Most items in one request.
    pub max_items: usize,
    /// Most body bytes in one request, counting [`crate::Provider::body_overhead`].
    pub max_body_bytes: Option<usize>,
    /// A wildcard item must be the only item of its request.
    pub wildcard_alone: bool,
    /// Items of different scopes never share a request (Level 3: one per network identifier).
    pub group_by_scope: bool,
    /// Rate limits per account.
    pub rate: RateLimit,
    /// Most items the provider keeps queued per account (Limelight: 1000).
    pub max_queued_items: Option<usize>,
    /// Most requests in flight at once per account.
    pub max_in_flight: usize,
    /// Most bytes of a response body the engine reads ([`DEFAULT_MAX_RESPONSE_BYTES`] unless the
    /// provider documents larger answers); past it the attempt fails, unretried, with
    /// "response larger than N bytes".
    pub max_response_bytes: usize,
}

/// The response body cap of [`Limits::default`]: 1 MiB, far above any documented answer of the
/// supported providers (a few kilobytes).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_items: 1,
            max_body_bytes: None,
            wildcard_alone: false,
            group_by_scope: false,
            rate: RateLimit::default(),
            max_queued_items: None,
            max_in_flight: 1,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
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
