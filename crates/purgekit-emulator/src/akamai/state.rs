//! The account's token buckets ([`crate::bucket`]) and the nonces seen.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

pub use crate::bucket::{Bucket, BucketSpec};

/// Nonces seen within the skew window: a reused one is a replay.
#[derive(Debug, Default)]
pub(super) struct Nonces {
    order: VecDeque<(Instant, String)>,
    seen: HashMap<String, Instant>,
}

impl Nonces {
    /// Records `nonce` at `now`; `false` if it was seen within `window`.
    pub fn fresh(&mut self, nonce: &str, now: Instant, window: Duration) -> bool {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) <= window {
                break;
            }
            let (_, old) = self.order.pop_front().expect("checked");
            self.seen.remove(&old);
        }
        if self.seen.contains_key(nonce) {
            return false;
        }
        self.seen.insert(nonce.to_owned(), now);
        self.order.push_back((now, nonce.to_owned()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_nonce_is_fresh_once_within_the_window() {
        let mut n = Nonces::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(30);
        assert!(n.fresh("a", t0, w));
        assert!(!n.fresh("a", t0 + Duration::from_secs(10), w));
        assert!(n.fresh("b", t0 + Duration::from_secs(10), w));
        assert!(n.fresh("a", t0 + Duration::from_secs(31), w));
    }
}
