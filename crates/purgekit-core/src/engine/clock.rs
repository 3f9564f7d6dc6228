//! Instants from durations the engine does not control (a provider's `Retry-After`, a caller's
//! wait timeout), without overflow.

use std::time::Duration;

use tokio::time::Instant;

/// Far enough to mean "never" for a purge, small enough to add to any instant.
const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

/// `from + d`, saturating at 30 years from `from` instead of panicking on overflow.
pub(crate) fn after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d.min(FAR)).unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(after(now, Duration::MAX), now + FAR);
    }
}
