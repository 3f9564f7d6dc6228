//! What the emulator records (purges, refusals) and its hourly write window.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// One accepted purge, one entry per URL, key or purge-all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// The purge id answered (`108-…`; empty for purge-all, which has none).
    pub id: String,
    /// `url`, `key` or `all`.
    pub call: &'static str,
    /// The URL as sent (`host/path?query`), the key, or the service id.
    pub value: String,
    /// Whether `Fastly-Soft-Purge` was sent (never for purge-all, which cannot be soft).
    pub soft: bool,
    /// `Fastly-Purge-Environment` (`staging`), if sent.
    pub environment: Option<String>,
}

/// Fixed windows of `window` (the first starts with the first write): more than `limit`
/// writes in one are refused.
#[derive(Debug)]
pub(super) struct Writes {
    pub limit: u32,
    pub window: Duration,
    started: Option<Instant>,
    /// The wall clock when the window started, for `Fastly-RateLimit-Reset`.
    started_wall: SystemTime,
    count: u32,
}

impl Writes {
    pub fn new(limit: u32, window: Duration) -> Self {
        Writes {
            limit,
            window,
            started: None,
            started_wall: UNIX_EPOCH,
            count: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        match self.started {
            Some(at) if now < at + self.window => {}
            _ => {
                self.started = Some(now);
                self.started_wall = SystemTime::now();
                self.count = 0;
            }
        }
    }

    /// Counts one write at `now`; `false` (nothing counted) when the window is full.
    pub fn admit(&mut self, now: Instant) -> bool {
        self.roll(now);
        if self.count >= self.limit {
            return false;
        }
        self.count += 1;
        true
    }

    /// `(remaining, reset)`: writes left in the window, and its end in epoch seconds
    /// (rounded up).
    pub fn state(&mut self, now: Instant) -> (u32, u64) {
        self.roll(now);
        let end = self.started_wall + self.window;
        let since = end.duration_since(UNIX_EPOCH).unwrap_or_default();
        let reset = since.as_secs() + u64::from(since.subsec_nanos() > 0);
        (self.limit.saturating_sub(self.count), reset)
    }
}

/// Everything it records.
#[derive(Debug)]
pub(super) struct Ledger {
    pub purges: Vec<Purge>,
    pub writes: Writes,
    /// Requests refused with 429.
    pub rejections: usize,
    next_id: u64,
}

impl Ledger {
    pub fn new(writes: Writes) -> Self {
        Ledger {
            purges: Vec::new(),
            writes,
            rejections: 0,
            next_id: 0,
        }
    }

    /// A purge id shaped like Fastly's: `108-{epoch seconds}-{counter}`.
    pub fn id(&mut self) -> String {
        self.next_id += 1;
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        format!("108-{epoch}-{}", self.next_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_window_refuses_until_it_ends() {
        let mut w = Writes::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(w.admit(t0) && w.admit(t0));
        assert!(!w.admit(t0 + Duration::from_secs(59)));
        assert_eq!(w.state(t0).0, 0);
        assert!(w.admit(t0 + Duration::from_secs(60)));
        assert_eq!(w.state(t0 + Duration::from_secs(60)).0, 1);
    }
}
