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

impl BucketSpec {
    /// The time it takes to refill whole, rounded up to the nanosecond (so the client never
    /// expects a token before the emulator has it).
    pub fn refill_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos((self.size / self.refill_per_second * 1e9).ceil() as u64)
    }

    /// `{ burst, refill, per }` as a provider's config table declares a bucket (core's
    /// `BucketConfig`): `burst` tokens refilled in [`BucketSpec::refill_time`].
    pub fn table(&self) -> toml::Value {
        let burst = self.size.floor() as i64;
        let mut table = toml::Table::new();
        table.insert("burst".to_owned(), toml::Value::Integer(burst));
        table.insert("refill".to_owned(), toml::Value::Integer(burst));
        table.insert("per".to_owned(), crate::duration_value(self.refill_time()));
        toml::Value::Table(table)
    }
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

/// Fixed windows of `window`, the first starting with the first request counted: more than
/// `limit` in one are refused (Fastly's hourly write limit, Cloudflare's global API limit).
#[derive(Debug)]
pub struct FixedWindow {
    /// Requests per window.
    pub limit: u32,
    /// The window.
    pub window: std::time::Duration,
    started: Option<Instant>,
    /// The wall clock when the window started (for headers in epoch seconds).
    started_wall: std::time::SystemTime,
    count: u32,
}

impl FixedWindow {
    /// `limit` requests per `window`.
    pub fn new(limit: u32, window: std::time::Duration) -> Self {
        FixedWindow {
            limit,
            window,
            started: None,
            started_wall: std::time::UNIX_EPOCH,
            count: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        match self.started {
            Some(at) if now < at + self.window => {}
            _ => {
                self.started = Some(now);
                self.started_wall = std::time::SystemTime::now();
                self.count = 0;
            }
        }
    }

    /// Whether one more request fits at `now` (nothing counted).
    pub fn allows(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.count < self.limit
    }

    /// Counts one request at `now`.
    pub fn take(&mut self, now: Instant) {
        self.roll(now);
        self.count += 1;
    }

    /// (requests left, time until the window ends, its end on the wall clock).
    pub fn state(&mut self, now: Instant) -> (u32, std::time::Duration, std::time::SystemTime) {
        self.roll(now);
        let left = self.started.map_or(self.window, |at| {
            (at + self.window).saturating_duration_since(now)
        });
        (
            self.limit.saturating_sub(self.count),
            left,
            self.started_wall + self.window,
        )
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_full_window_refuses_until_it_ends() {
        let mut w = FixedWindow::new(2, Duration::from_secs(300));
        let t0 = Instant::now();
        w.take(t0);
        w.take(t0);
        assert!(!w.allows(t0 + Duration::from_secs(299)));
        assert_eq!(
            w.state(t0 + Duration::from_secs(100)).1,
            Duration::from_secs(200)
        );
        assert!(w.allows(t0 + Duration::from_secs(300)));
        assert_eq!(w.state(t0 + Duration::from_secs(300)).0, 2);
    }
}
