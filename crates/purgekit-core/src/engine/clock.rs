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

/// A wait for people: `27 h 46 m`, `1157 d 9 h`, `2 m 5 s`, `4.2 s`, `250 ms` (two units at
/// most).
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match secs {
        0 => format!("{} ms", d.as_millis()),
        1..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => format!("{minutes} m {seconds} s"),
        3600..86_400 => format!("{} h {minutes} m", secs / 3600),
        _ => format!("{days} d {hours} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_well() {
        let h = |s: u64| human(Duration::from_secs(s));
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
        assert_eq!(human(Duration::from_millis(4200)), "4.2 s");
        assert_eq!(h(125), "2 m 5 s");
        assert_eq!(h(9960), "2 h 46 m");
        assert_eq!(h(100_000), "1 d 3 h");
        assert_eq!(h(99_999_999), "1157 d 9 h");
        assert_eq!(human(Duration::MAX).split(' ').count(), 4);
    }

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
