//! Token buckets as the emulators keep them: token counts refilled continuously (a different
//! formulation from the client's, on purpose). Akamai's and Cloudflare's limits.

use tokio::time::Instant;

/// One bucket's documented figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    /// Most tokens held.
    pub size: f64,
    /// Tokens regained per second.
    pub refill_per_second: f64,
}

/// A bucket's level at a point in time.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub spec: BucketSpec,
    tokens: f64,
    at: Option<Instant>,
}

/// Tolerance for float refill: a client that waited exactly for a token is not refused for
/// a rounding error.
const EPSILON: f64 = 1e-6;

impl Bucket {
    pub fn new(spec: BucketSpec) -> Self {
        Bucket {
            spec,
            tokens: spec.size,
            at: None,
        }
    }

    /// Tokens held at `now`.
    pub fn level(&mut self, now: Instant) -> f64 {
        if let Some(at) = self.at {
            let gained =
                now.saturating_duration_since(at).as_secs_f64() * self.spec.refill_per_second;
            self.tokens = (self.tokens + gained).min(self.spec.size);
        }
        self.at = Some(now);
        self.tokens
    }

    /// Whether `cost` tokens are there at `now`.
    pub fn allows(&mut self, cost: f64, now: Instant) -> bool {
        self.level(now) + EPSILON >= cost
    }

    /// Takes `cost` tokens (after [`Bucket::allows`]).
    pub fn take(&mut self, cost: f64, now: Instant) {
        self.tokens = (self.level(now) - cost).max(0.0);
    }

    /// Seconds until `cost` tokens are there (0 when they are).
    pub fn seconds_to(&mut self, cost: f64, now: Instant) -> f64 {
        let missing = cost - self.level(now);
        if missing <= 0.0 || self.spec.refill_per_second <= 0.0 {
            0.0
        } else {
            missing / self.spec.refill_per_second
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_refills_continuously_up_to_its_size() {
        let mut b = Bucket::new(BucketSpec {
            size: 100.0,
            refill_per_second: 50.0,
        });
        let t0 = Instant::now();
        assert!(b.allows(100.0, t0));
        b.take(100.0, t0);
        assert!(!b.allows(1.0, t0));
        assert!((b.seconds_to(1.0, t0) - 0.02).abs() < 1e-9);
        let t1 = t0 + Duration::from_millis(20);
        assert!(b.allows(1.0, t1));
        let t2 = t0 + Duration::from_secs(100);
        assert!((b.level(t2) - 100.0).abs() < 1e-9);
    }
}
