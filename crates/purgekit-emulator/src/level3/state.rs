//! The request-rate limit: a fixed window per API key, aligned to the emulator's start.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Admits at most `limit` requests per key in each window `[start + k·window, start + (k+1)·window)`.
#[derive(Debug)]
pub(super) struct FixedWindow {
    start: Instant,
    window: Duration,
    limit: u32,
    /// Per key: the window index last seen and the requests admitted in it.
    counts: HashMap<String, (u128, u32)>,
}

impl FixedWindow {
    /// A limiter whose first window opens at `start`. A zero `window` admits everything.
    pub(super) fn new(start: Instant, window: Duration, limit: u32) -> Self {
        FixedWindow {
            start,
            window,
            limit,
            counts: HashMap::new(),
        }
    }

    /// Counts a request by `key` at `now`; `false` when the key's window is already full.
    /// Refused requests do not count.
    pub(super) fn admit(&mut self, key: &str, now: Instant) -> bool {
        if self.window.is_zero() {
            return true;
        }
        let index = now.saturating_duration_since(self.start).as_nanos() / self.window.as_nanos();
        let entry = self.counts.entry(key.to_owned()).or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        if entry.1 >= self.limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ten_per_minute_per_key_in_windows_aligned_to_start() {
        let start = Instant::now();
        let mut w = FixedWindow::new(start, Duration::from_secs(60), 10);
        tokio::time::advance(Duration::from_secs(50)).await;
        for _ in 0..10 {
            assert!(w.admit("k1", Instant::now()));
        }
        assert!(!w.admit("k1", Instant::now()));
        assert!(w.admit("k2", Instant::now()), "keys are counted apart");
        // Still the first window one tick before 60 s: denied until the next window begins.
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(!w.admit("k1", Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        for _ in 0..10 {
            assert!(w.admit("k1", Instant::now()));
        }
        assert!(!w.admit("k1", Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_window_admits_everything() {
        let mut w = FixedWindow::new(Instant::now(), Duration::ZERO, 1);
        assert!((0..100).all(|_| w.admit("k", Instant::now())));
    }
}
