//! What the emulator records, its token buckets ([`crate::bucket`]) and the global API window.

use std::time::Duration;

use tokio::time::Instant;

use crate::bucket::Bucket;

/// One accepted value of a purge (a URL, tag, host, prefix, or everything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// The body field: `files`, `tags`, `hosts`, `prefixes` or `purge_everything`.
    pub field: &'static str,
    /// The value as sent (a file's `url` for the object form; the zone id for everything).
    pub value: String,
    /// The request headers given with a file in the object form (`CF-Device-Type`…).
    pub headers: Vec<(String, String)>,
    /// Sent to `invalidate_cache` (mark stale) rather than `purge_cache` (remove).
    pub invalidate: bool,
    /// The environment of an `/environments/{id}/purge_cache` call.
    pub environment: Option<String>,
}

/// Fixed windows of `window` (the first starts with the first request); more than `limit`
/// requests in one are refused.
#[derive(Debug)]
pub(super) struct Window {
    pub limit: u32,
    pub window: Duration,
    started: Option<Instant>,
    count: u32,
}

impl Window {
    pub fn new(limit: u32, window: Duration) -> Self {
        Window {
            limit,
            window,
            started: None,
            count: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        match self.started {
            Some(at) if now < at + self.window => {}
            _ => {
                self.started = Some(now);
                self.count = 0;
            }
        }
    }

    /// Whether one more request fits at `now` (nothing counted).
    pub fn allows(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.count < self.limit
    }

    /// Counts one request.
    pub fn take(&mut self, now: Instant) {
        self.roll(now);
        self.count += 1;
    }

    /// (remaining, time until the window ends).
    pub fn state(&mut self, now: Instant) -> (u32, Duration) {
        self.roll(now);
        let end = self.started.map_or(now, |at| at + self.window);
        (
            self.limit.saturating_sub(self.count),
            end.saturating_duration_since(now),
        )
    }
}

/// Everything it records.
pub(super) struct Ledger {
    pub purges: Vec<Purge>,
    /// Tag, host, prefix and everything purges: one token a request.
    pub purge_bucket: Bucket,
    /// Single-file purges: one token a URL.
    pub files_bucket: Bucket,
    pub global: Window,
    /// Requests refused with 429.
    pub rejections: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_global_window_is_fixed() {
        let mut w = Window::new(2, Duration::from_secs(300));
        let t0 = Instant::now();
        w.take(t0);
        w.take(t0);
        assert!(!w.allows(t0 + Duration::from_secs(299)));
        assert_eq!(
            w.state(t0 + Duration::from_secs(100)),
            (0, Duration::from_secs(200))
        );
        assert!(w.allows(t0 + Duration::from_secs(300)));
    }
}
