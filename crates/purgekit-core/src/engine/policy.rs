//! The engine's knobs: the run's deadline, retries, polling, rate-limit safety margin,
//! per-attempt timeout.

use std::time::Duration;

use crate::limits::RateLimit;

/// How the engine sends, retries and waits. [`EngineConfig::default`] suits the real CDNs.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The longest one run may take, from its start: a purge with its retries, rate-limit waits
    /// and waiting for completion, or one [`crate::Purger::status`] query. Every wait is bounded
    /// by it, and a wait that would end past it is not started: the batch fails ("not sent …
    /// past the deadline") or, when already accepted, stays accepted with the reason.
    pub deadline: Duration,
    /// Retries of a batch (and of status polls).
    pub retry: RetryPolicy,
    /// Status polling while waiting for completion.
    pub poll: PollPolicy,
    /// Extra spacing kept between requests on top of the provider's rate limits.
    pub margin: SafetyMargin,
    /// Replaces the provider's declared [`RateLimit`] (e.g. a contract with higher limits).
    pub rate: Option<RateLimit>,
    /// Longest one HTTP exchange may take, end to end; past it the attempt is a transient
    /// failure. The transport's own connect/read timeouts apply too.
    pub attempt_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            deadline: EngineConfig::DEFAULT_DEADLINE,
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            margin: SafetyMargin::default(),
            rate: None,
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

impl EngineConfig {
    /// [`EngineConfig::deadline`] by default: 15 minutes (a 10-minute wait for completion and
    /// the sending before it).
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15 * 60);
}

/// Retries with capped exponential backoff and jitter, for retryable errors only
/// ([`crate::Error::is_retryable`]). A provider's `Retry-After` ([`crate::Error::retry_after`])
/// replaces the backoff and is honoured in full by the batch that got it, unless it ends past
/// [`RetryPolicy::deadline`] or the run's [`EngineConfig::deadline`], in which case the batch
/// fails at once with that error and the reason. The account's other requests wait behind a
/// rate-limit rejection for at most the provider's declared rate window.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Most attempts per batch, the first included (1 disables retries).
    pub max_attempts: u32,
    /// The backoff before the second attempt; doubled for each later one.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// Fraction of each backoff drawn at random, 0.0 (none) to 1.0: a backoff `b` becomes a
    /// uniform draw from `[b × (1 − jitter), b]`.
    pub jitter: f64,
    /// Time a batch may spend retrying, from its first attempt: no attempt starts after it.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(120),
            jitter: 0.5,
            deadline: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// One attempt per batch and no retries: for callers that retry themselves, and for tests
    /// that need to see how one response is classified.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The backoff after failed attempt `attempt` (from 1), before jitter: `initial × 2^(attempt−1)`,
    /// capped at `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        exponential(self.initial_backoff, self.max_backoff, attempt)
    }

    /// [`RetryPolicy::backoff`] with jitter applied (`draw` is a uniform sample in `[0, 1)`).
    pub fn jittered(&self, attempt: u32, draw: f64) -> Duration {
        let base = self.backoff(attempt);
        base.mul_f64(1.0 - unit(self.jitter) * unit(draw))
    }
}

/// Polling for completion: after the provider's hint when it gives one (Adobe's
/// `estimatedSeconds`, a status's `pingAfterSeconds`), capped exponential otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    /// The first poll's delay when the provider gives no hint; doubled for each later one.
    pub initial: Duration,
    /// The longest delay between polls.
    pub max: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(30),
        }
    }
}

impl PollPolicy {
    /// The delay before poll `poll` (from 1) when the provider gives no hint.
    pub fn delay(&self, poll: u32) -> Duration {
        exponential(self.initial, self.max, poll)
    }
}

/// Spacing added to every rate-limit wait so that latency jitter between us and the provider
/// never turns an on-time request into a rejected one: `min(max, fraction × span)`, where the
/// span is the request window (`per`) or the item debt being paid off.
///
/// The default, 2 % capped at 250 ms, costs 0.4 % on Level 3's 60 s window and on a 100-item
/// Limelight request, and 2 % on short (compressed) windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyMargin {
    /// Fraction of the span.
    pub fraction: f64,
    /// The cap.
    pub max: Duration,
}

impl Default for SafetyMargin {
    fn default() -> Self {
        SafetyMargin {
            fraction: 0.02,
            max: Duration::from_millis(250),
        }
    }
}

impl SafetyMargin {
    /// No margin at all (exact schedules; only safe with no latency jitter).
    pub const NONE: SafetyMargin = SafetyMargin {
        fraction: 0.0,
        max: Duration::ZERO,
    };

    /// The margin for a wait spanning `span`.
    pub fn for_span(&self, span: Duration) -> Duration {
        span.mul_f64(unit(self.fraction)).min(self.max)
    }
}

/// `x` clamped to `[0, 1]`, NaN as 0.
fn unit(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

fn exponential(initial: Duration, max: Duration, step: u32) -> Duration {
    let factor = 2u32.saturating_pow(step.saturating_sub(1).min(31));
    initial.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let secs: Vec<u64> = (1..=6).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(p.backoff(1000), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = RetryPolicy {
            jitter: 0.5,
            ..RetryPolicy::default()
        };
        assert_eq!(p.jittered(2, 0.0), Duration::from_secs(2));
        assert_eq!(p.jittered(2, 0.5), Duration::from_millis(1500));
        assert!(p.jittered(2, 0.999_999) > Duration::from_secs(1));
        let none = RetryPolicy { jitter: 0.0, ..p };
        assert_eq!(none.jittered(3, 0.7), Duration::from_secs(4));
    }

    #[test]
    fn margin_is_a_capped_fraction() {
        let m = SafetyMargin::default();
        assert_eq!(
            m.for_span(Duration::from_secs(60)),
            Duration::from_millis(250)
        );
        assert_eq!(
            m.for_span(Duration::from_secs(1)),
            Duration::from_millis(20)
        );
        assert_eq!(
            SafetyMargin::NONE.for_span(Duration::from_secs(60)),
            Duration::ZERO
        );
    }

    #[test]
    fn polling_backs_off_to_its_cap() {
        let p = PollPolicy {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(5),
        };
        assert_eq!(
            (1..=4).map(|n| p.delay(n).as_secs()).collect::<Vec<_>>(),
            [2, 4, 5, 5]
        );
    }
}
