//! `Retry-After`, shared by every provider's decoder.

use std::time::{Duration, SystemTime};

/// Reads a `Retry-After` header: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, taken relative to `now`; a past date is zero).
/// `None` when the header is absent or unreadable.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use purgekit_core::{http::HeaderMap, parse_retry_after};
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", "3".parse().unwrap());
/// assert_eq!(parse_retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(3)));
/// ```
pub fn parse_retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    read(headers, || Some(now))
}

/// The wait a response's `Retry-After` asks for, for providers' decoders, which have no clock:
/// delta-seconds as they are, an HTTP-date measured from the response's own `Date` header (the
/// server's clock, so the client's clock skew does not matter). `None` when absent, unreadable,
/// or a date without a `Date` header to measure it from.
///
/// ```
/// use std::time::Duration;
/// use purgekit_core::{http::HeaderMap, response_retry_after};
/// let mut headers = HeaderMap::new();
/// headers.insert("date", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
/// headers.insert("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT".parse().unwrap());
/// assert_eq!(response_retry_after(&headers), Some(Duration::from_secs(30)));
/// ```
pub fn response_retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    read(headers, || {
        let date = headers.get(http::header::DATE)?.to_str().ok()?;
        httpdate::parse_http_date(date.trim()).ok()
    })
}

/// `Retry-After` as delta-seconds, or as an HTTP-date measured from `now()` (asked only then).
fn read(headers: &http::HeaderMap, now: impl FnOnce() -> Option<SystemTime>) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now()?).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, value.parse().unwrap());
        h
    }

    #[test]
    fn seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(&headers(" 0 "), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(&headers("Wed, 21 Oct 2015 07:27:00 GMT"), now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn absent_or_unreadable_is_none() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(parse_retry_after(&http::HeaderMap::new(), now), None);
        assert_eq!(parse_retry_after(&headers("soon"), now), None);
        assert_eq!(parse_retry_after(&headers("-5"), now), None);
        assert_eq!(parse_retry_after(&headers("1.5"), now), None);
    }

    #[test]
    fn a_response_date_is_measured_from_the_servers_clock() {
        let mut h = headers("Wed, 21 Oct 2015 07:28:30 GMT");
        assert_eq!(
            response_retry_after(&h),
            None,
            "no Date header to measure from"
        );
        h.insert(
            http::header::DATE,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(response_retry_after(&h), Some(Duration::from_secs(30)));
        assert_eq!(
            response_retry_after(&headers("120")),
            Some(Duration::from_secs(120))
        );
        assert_eq!(response_retry_after(&headers("soon")), None);
    }
}
