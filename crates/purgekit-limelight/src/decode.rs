//! Decoding SmartPurge responses: purge request records, lists, translations and errors.

use purgekit_core::http::StatusCode;
use purgekit_core::{Error, HttpResponse, Result};
use serde::{Deserialize, Serialize};

/// One state transition of a purge request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// When (Unix milliseconds).
    pub ts: u64,
    /// `queued`, `in_progress`, `complete` or `stats_avail`.
    pub state: String,
}

/// Objects purged by one pattern or tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// Index in the request's `patterns` array, when the stat is a pattern's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<u32>,
    /// Index in the request's `tags` array, when the stat is a tag's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u32>,
    /// Cache objects purged.
    pub count: u64,
    /// Their total size in bytes.
    pub size: u64,
}

/// A `patterns[]` entry as the API echoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternEntry {
    /// The pattern or exact URL.
    pub pattern: String,
    /// Delete rather than invalidate.
    pub evict: bool,
    /// Literal published URL (`true`) or glob on the origin URL (`false`).
    pub exact: bool,
    /// Match the query string too.
    pub incqs: bool,
}

/// A `tags[]` entry as the API echoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagEntry {
    /// The content tag.
    pub tag: String,
    /// Delete rather than invalidate.
    pub evict: bool,
}

/// A purge request as `GET …/requests/{id}` (or a list) returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgeRecord {
    /// The 32-hex request id.
    pub id: String,
    /// State transitions, oldest first.
    #[serde(default)]
    pub states: Vec<StateChange>,
    /// Per-pattern and per-tag statistics, once available.
    #[serde(default)]
    pub stats: Vec<Stat>,
    /// Per-datacenter statistics (`?geostats` on a single request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geostats: Option<std::collections::BTreeMap<String, Vec<Stat>>>,
    /// Completion percentage while in progress (SmartPurge Plus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<f64>,
    /// The request was aborted for internal limitations.
    #[serde(default)]
    pub aborted: bool,
    /// The submitter.
    #[serde(default)]
    pub username: String,
    /// The account.
    #[serde(default)]
    pub shortname: String,
    /// Patterns and exact URLs.
    #[serde(default)]
    pub patterns: Vec<PatternEntry>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<TagEntry>,
    /// The notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Whether it was a dry run.
    #[serde(default, rename = "dry-run")]
    pub dry_run: bool,
}

impl PurgeRecord {
    /// The latest state (`queued` when none is listed).
    pub fn state(&self) -> &str {
        self.states
            .iter()
            .max_by_key(|s| (s.ts, state_rank(&s.state)))
            .map_or("queued", |s| s.state.as_str())
    }

    /// Objects purged, summed over [`PurgeRecord::stats`].
    pub fn objects_purged(&self) -> u64 {
        self.stats.iter().map(|s| s.count).sum()
    }
}

/// Orders states that share a timestamp.
fn state_rank(state: &str) -> u8 {
    match state {
        "queued" => 0,
        "in_progress" => 1,
        "complete" => 2,
        "stats_avail" => 3,
        _ => 0,
    }
}

/// The answer to `GET …/requests` (list by shortname).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgeList {
    /// The requests on this page.
    #[serde(default)]
    pub requests: Vec<PurgeRecord>,
    /// Estimated number of matching requests.
    #[serde(default)]
    pub total: u64,
    /// More than `total` match, but only `total` are available.
    #[serde(default)]
    pub more: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

impl ApiError {
    fn code(&self) -> Option<String> {
        match &self.code {
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let mut out = self.message.clone();
        if let Some(d) = self.description.as_deref().filter(|d| !d.is_empty()) {
            out.push_str(&format!(" ({d})"));
        }
        if let Some(s) = self.source.as_deref().filter(|s| !s.is_empty()) {
            out.push_str(&format!(" at {s}"));
        }
        out
    }
}

/// Parses a success body as `T`, or classifies the error response.
pub(crate) fn success<T: serde::de::DeserializeOwned>(
    response: &HttpResponse,
    expected: &[StatusCode],
    what: &str,
) -> Result<T> {
    let status = response.status();
    if !expected.contains(&status) {
        return Err(classify(response));
    }
    purgekit_core::check_json_depth(response.body())?;
    serde_json::from_slice(response.body()).map_err(|e| {
        Error::protocol(format!(
            "{what}: HTTP {status} with an unreadable body ({e}): {}",
            purgekit_core::snippet(response.body())
        ))
    })
}

/// Classifies an error response into the core kinds: codes first, then the HTTP status.
///
/// | codes / status | kind |
/// |---|---|
/// | 1024, 1026, HTTP 401 | `Auth` |
/// | 1025, HTTP 403 (user not authorized for the shortname) | `Auth` |
/// | 1021, 1022, HTTP 429 | `RateLimited` (+ `Retry-After` when sent) |
/// | 1032, 1033, 1036 ("temporarily unavailable"), HTTP 5xx | `Transient` (+ `Retry-After`) |
/// | any other code, other 4xx | `Rejected` with the code (or HTTP status) and message |
pub(crate) fn classify(response: &HttpResponse) -> Error {
    let status = response.status();
    if let Err(too_deep) = purgekit_core::check_json_depth(response.body()) {
        return too_deep;
    }
    let retry_after = purgekit_core::response_retry_after(response.headers());
    let errors = serde_json::from_slice::<ErrorBody>(response.body())
        .map(|b| b.errors)
        .unwrap_or_default();
    let code = errors.iter().find_map(ApiError::code);
    let message = if errors.is_empty() {
        let body = purgekit_core::snippet(response.body());
        let reason = status.canonical_reason().unwrap_or("");
        if body.is_empty() {
            format!("HTTP {} {reason}", status.as_u16())
        } else {
            format!("HTTP {} {reason}: {body}", status.as_u16())
        }
    } else {
        errors
            .iter()
            .map(|e| match e.code() {
                Some(c) => format!("{c} {}", e.describe()),
                None => e.describe(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let has = |codes: &[&str]| {
        errors
            .iter()
            .filter_map(ApiError::code)
            .any(|c| codes.contains(&c.as_str()))
    };
    if has(&["1024", "1026"]) || status == StatusCode::UNAUTHORIZED {
        Error::auth(message)
    } else if has(&["1025"]) || status == StatusCode::FORBIDDEN {
        Error::auth(format!(
            "forbidden: the user is not authorized for this shortname: {message}"
        ))
    } else if has(&["1021", "1022"]) || status == StatusCode::TOO_MANY_REQUESTS {
        Error::RateLimited {
            retry_after,
            message,
        }
    } else if has(&["1032", "1033", "1036"]) || status.is_server_error() {
        Error::Transient {
            retry_after,
            message,
        }
    } else if status.is_client_error() {
        Error::rejected(code.unwrap_or_else(|| status.as_u16().to_string()), message)
    } else {
        Error::protocol(format!("unexpected answer: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut b = purgekit_core::http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    fn errors(code: u32, message: &str) -> String {
        format!(
            r#"{{"errors":[{{"message":"{message}","code":{code},"description":"d","source":"s"}}]}}"#
        )
    }

    #[test]
    fn auth_codes_and_statuses() {
        for (status, code) in [(401, 1024), (401, 1026), (400, 1026), (403, 1025)] {
            let e = classify(&response(status, &[], &errors(code, "nope")));
            assert_eq!(e.kind(), "auth", "{status} {code}: {e}");
            assert!(e.to_string().contains(&code.to_string()), "{e}");
        }
        let e = classify(&response(403, &[], ""));
        assert!(
            matches!(e, Error::Auth { .. }) && e.to_string().contains("forbidden"),
            "{e}"
        );
        assert_eq!(classify(&response(401, &[], "")).kind(), "auth");
    }

    #[test]
    fn rate_limits_carry_retry_after_when_sent() {
        let e = classify(&response(
            429,
            &[("Retry-After", "17")],
            &errors(1022, "per minute"),
        ));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
        assert_eq!(e.kind(), "rate_limited");
        let e = classify(&response(
            429,
            &[],
            &errors(1021, "queued patterns limit is reached"),
        ));
        assert_eq!((e.kind(), e.retry_after()), ("rate_limited", None));
        let e = classify(&response(429, &[], "<html>slow down</html>"));
        assert_eq!(e.kind(), "rate_limited");
    }

    #[test]
    fn bad_requests_are_rejected_with_code_and_message() {
        let e = classify(&response(400, &[], &errors(1041, "request is too big")));
        assert_eq!(
            e,
            Error::rejected("1041", "1041 request is too big (d) at s")
        );
        let e = classify(&response(413, &[], ""));
        assert_eq!(e, Error::rejected("413", "HTTP 413 Payload Too Large"));
    }

    #[test]
    fn server_errors_are_transient() {
        // An HTTP-date is measured from the server's own `Date`, not this machine's clock.
        let e = classify(&response(
            503,
            &[
                ("Date", "Sun, 06 Nov 1994 08:49:07 GMT"),
                ("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ],
            "",
        ));
        assert_eq!(e.kind(), "transient");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
        let e = classify(&response(
            503,
            &[
                ("Date", "Sun, 06 Nov 1994 08:50:00 GMT"),
                ("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ],
            "",
        ));
        assert_eq!(
            e.retry_after(),
            Some(Duration::ZERO),
            "a past date means now"
        );
        assert_eq!(
            classify(&response(400, &[], &errors(1036, "try later"))).kind(),
            "transient"
        );
    }

    #[test]
    fn deep_nesting_is_a_protocol_error_naming_the_limit() {
        let deep = format!(r#"{{"errors":[{{"code":{}}}]}}"#, "[".repeat(100_000));
        for status in [400, 429, 503] {
            let e = classify(&response(status, &[], &deep));
            assert_eq!(e.kind(), "protocol", "{status}: {e}");
            assert!(e.to_string().contains("64 levels"), "{e}");
        }
        let deep = format!(r#"{{"id":"x","stats":{}}}"#, "[".repeat(100));
        let e = success::<PurgeRecord>(&response(200, &[], &deep), &[StatusCode::OK], "status")
            .unwrap_err();
        assert!(e.to_string().contains("64 levels"), "{e}");
    }

    #[test]
    fn latest_state_wins() {
        let r: PurgeRecord = serde_json::from_str(
            r#"{"id":"8c1a86546c3611e49c633a03000021e9","states":[
            {"ts":1,"state":"queued"},{"ts":1,"state":"in_progress"},{"ts":5,"state":"complete"}]}"#,
        )
        .unwrap();
        assert_eq!(r.state(), "complete");
    }
}
