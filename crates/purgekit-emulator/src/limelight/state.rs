//! Time in the emulator, as pure functions of `tokio::time::Instant`s: the per-item rate debt
//! and each purge request's walk through its states.

use std::time::Duration;

use tokio::time::Instant;

/// "One item per second": accepting `n` items puts the account `n × interval` in debt, and no
/// request is accepted while in debt. A 100-item request at 1 s per item means the next one
/// waits 100 s.
#[derive(Debug, Default)]
pub(crate) struct Debt {
    until: Option<Instant>,
}

impl Debt {
    /// Accepts `items` at `now`, or says how long until the debt is paid.
    pub fn admit(
        &mut self,
        items: usize,
        interval: Duration,
        now: Instant,
    ) -> Result<(), Duration> {
        if let Some(until) = self.until
            && now < until
        {
            return Err(until - now);
        }
        let cost = interval.saturating_mul(u32::try_from(items).unwrap_or(u32::MAX));
        self.until = Some(now + cost);
        Ok(())
    }
}

/// The documented states, in order.
pub(crate) const STATES: [&str; 4] = ["queued", "in_progress", "complete", "stats_avail"];

/// How long a request spends in each state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifecycle {
    pub queued_for: Duration,
    pub in_progress_for: Duration,
    pub stats_after: Duration,
}

impl Lifecycle {
    /// When each state is entered, for a request accepted at `at`.
    fn entered(&self, at: Instant) -> [Instant; 4] {
        let in_progress = at + self.queued_for;
        let complete = in_progress + self.in_progress_for;
        [at, in_progress, complete, complete + self.stats_after]
    }

    /// The states reached by `now`, with when each was entered.
    pub fn states(&self, at: Instant, now: Instant) -> Vec<(&'static str, Instant)> {
        STATES
            .into_iter()
            .zip(self.entered(at))
            .filter(|(_, t)| *t <= now)
            .collect()
    }

    /// The latest state reached by `now`.
    pub fn state(&self, at: Instant, now: Instant) -> &'static str {
        self.states(at, now).last().map_or("queued", |s| s.0)
    }

    /// Completion percentage while in progress.
    pub fn completion(&self, at: Instant, now: Instant) -> Option<f64> {
        let [_, start, end, _] = self.entered(at);
        if now < start || now >= end {
            return None;
        }
        let done = (now - start).as_secs_f64() / (end - start).as_secs_f64();
        Some((done * 1000.0).round() / 10.0)
    }

    /// Whether the request still counts against the queued limit (not yet complete).
    pub fn is_queued(&self, at: Instant, now: Instant) -> bool {
        now < self.entered(at)[2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_100_item_request_makes_the_next_wait_100_seconds() {
        let t0 = Instant::now();
        let mut debt = Debt::default();
        let second = Duration::from_secs(1);
        assert!(debt.admit(100, second, t0).is_ok());
        assert_eq!(
            debt.admit(1, second, t0 + Duration::from_secs(40)),
            Err(Duration::from_secs(60))
        );
        assert_eq!(
            debt.admit(1, second, t0 + Duration::from_millis(99_999)),
            Err(Duration::from_millis(1))
        );
        assert!(debt.admit(1, second, t0 + Duration::from_secs(100)).is_ok());
        assert!(
            debt.admit(1, second, t0 + Duration::from_secs(100))
                .is_err()
        );
        let mut free = Debt::default();
        assert!(
            free.admit(100, Duration::ZERO, t0).is_ok()
                && free.admit(100, Duration::ZERO, t0).is_ok()
        );
    }

    #[test]
    fn states_follow_the_configured_times() {
        let s = Duration::from_secs;
        let life = Lifecycle {
            queued_for: s(1),
            in_progress_for: s(4),
            stats_after: s(10),
        };
        let t0 = Instant::now();
        assert_eq!(life.state(t0, t0), "queued");
        assert_eq!(life.state(t0, t0 + s(1)), "in_progress");
        assert_eq!(life.completion(t0, t0 + s(2)), Some(25.0));
        assert!(life.is_queued(t0, t0 + s(4)));
        assert_eq!(life.state(t0, t0 + s(5)), "complete");
        assert!(!life.is_queued(t0, t0 + s(5)));
        assert_eq!(life.completion(t0, t0 + s(5)), None);
        let all = life.states(t0, t0 + s(15));
        assert_eq!(all.iter().map(|s| s.0).collect::<Vec<_>>(), STATES);
        assert_eq!(all[3].1, t0 + s(15));
    }
}
