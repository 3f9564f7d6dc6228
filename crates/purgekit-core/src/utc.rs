//! Calendar fields of an instant in UTC, for the date stamps signing schemes put in their
//! headers (EdgeGrid's `20140321T19:34:21+0000`, SigV4's `20150830T123600Z`). Written here once,
//! by hand, because `httpdate` formats only the RFC 7231 form and exposes no fields; a date crate
//! for two format strings would be a heavy dependency for every codec.

use std::time::{SystemTime, UNIX_EPOCH};

/// An instant in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// The year (proleptic Gregorian).
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u64,
    /// 0 to 59.
    pub minute: u64,
    /// 0 to 59.
    pub second: u64,
}

impl From<SystemTime> for UtcTime {
    /// An instant before 1970 reads as the epoch: a signature cannot be made for it anyway.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use purgekit_core::UtcTime;
    /// let t = UtcTime::from(UNIX_EPOCH + Duration::from_secs(1_395_430_461));
    /// assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (2014, 3, 21, 19, 34, 21));
    /// ```
    fn from(at: SystemTime) -> Self {
        let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days as i64);
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }
}

/// (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
