//! Decoding Fast Purge answers: a 201 with `purgeId` and `estimatedSeconds`, or a "problem"
//! object classified into core's error kinds.

use std::time::Duration;

use purgekit_core::http::{HeaderMap, StatusCode};
use purgekit_core::{Error, HttpResponse, Result};
use serde::{Deserialize, Serialize};

/// The body of an accepted purge (201). Extra members are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeAccepted {
    /// Repeats the HTTP status (201).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// The id of this purge (opaque, e.g. `edcp-…`).
    pub purge_id: String,
    /// Akamai's estimate of the seconds until the purge is complete everywhere.
    #[serde(default)]
    pub estimated_seconds: Option<u64>,
    /// The id to give Akamai support.
    #[serde(default)]
    pub support_id: Option<String>,
    /// Human text, e.g. `Request accepted`.
    #[serde(default)]
    pub detail: Option<String>,
}

/// An error answer ("problem" object; not RFC 7807's `type`/`status`). Every member is
/// optional here so that any JSON body decodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The id to give Akamai support.
    #[serde(default)]
    pub support_id: Option<String>,
    /// Repeats the HTTP status.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Short title, e.g. `bad URL`, `URL Rate Limit exceeded`.
    #[serde(default)]
    pub title: Option<String>,
    /// Akamai's explanation.
    #[serde(default)]
    pub detail: Option<String>,
    /// A documentation link.
    #[serde(default)]
    pub described_by: Option<String>,
    /// 429 only: the size of the bucket that refused.
    #[serde(default)]
    pub rate_limit: Option<u64>,
    /// 429 only: the tokens the request needed from it.
    #[serde(default)]
    pub rate_limit_current_request_size: Option<u64>,
    /// 429 only: the tokens it held.
    #[serde(default)]
    pub rate_limit_remaining: Option<u64>,
}

impl Problem {
    /// `title: detail (supportId …)`, from whatever members are present.
    fn describe(&self) -> String {
        let mut out = match (&self.title, &self.detail) {
            (Some(t), Some(d)) => format!("{t}: {d}"),
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (None, None) => String::new(),
        };
        if let Some(id) = &self.support_id {
            out.push_str(&format!(" (supportId {id})"));
        }
        purgekit_core::snippet(out.as_bytes())
    }
}

/// Decodes the answer to a purge: the 201 body, checked for a `purgeId`; anything else is
/// classified by [`classify`].
pub(crate) fn accepted(response: &HttpResponse) -> Result<PurgeAccepted> {
    let status = response.status();
    if status != StatusCode::CREATED {
        return Err(classify(response));
    }
    let body: PurgeAccepted = serde_json::from_slice(response.body()).map_err(|e| {
        Error::protocol(format!(
            "purge: HTTP 201 with an unreadable body ({e}): {}",
            purgekit_core::snippet(response.body())
        ))
    })?;
    if let Some(other) = body.http_status.filter(|s| *s != 201) {
        return Err(Error::protocol(format!(
            "purge: HTTP 201 whose body says httpStatus {other}"
        )));
    }
    if body.purge_id.is_empty()
        || body
            .purge_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Error::protocol(format!(
            "purge: the purgeId `{}` is not an id",
            purgekit_core::snippet(body.purge_id.as_bytes())
        )));
    }
    Ok(body)
}

/// Classifies an error answer.
///
/// | status | kind |
/// |---|---|
/// | 401 | `Auth` (signature, clock or credentials refused) |
/// | 400, 403, 413, other 4xx | `Rejected` with the status as code and Akamai's title and detail |
/// | 408 | `Transient` |
/// | 429 | `RateLimited`; the wait is `Retry-After` if sent, else computed from the `X-RateLimit-*` headers and the 429 body ([`rate_limit_wait`]) |
/// | 5xx (507 included) | `Transient` (+ `Retry-After`) |
pub(crate) fn classify(response: &HttpResponse) -> Error {
    let status = response.status();
    let problem: Problem = serde_json::from_slice(response.body()).unwrap_or_default();
    let described = problem.describe();
    let message = {
        let reason = status.canonical_reason().unwrap_or("");
        let body = if described.is_empty() {
            purgekit_core::snippet(response.body())
        } else {
            described
        };
        if body.is_empty() {
            format!("HTTP {} {reason}", status.as_u16())
        } else {
            format!("HTTP {} {reason}: {body}", status.as_u16())
        }
    };
    let retry_after = purgekit_core::response_retry_after(response.headers());
    match status.as_u16() {
        401 => Error::auth(message),
        408 => Error::Transient {
            retry_after,
            message,
        },
        429 => Error::RateLimited {
            retry_after: retry_after.or_else(|| rate_limit_wait(response.headers(), &problem)),
            message,
        },
        500..=599 => Error::Transient {
            retry_after,
            message,
        },
        400..=499 => Error::rejected(status.as_u16().to_string(), message),
        _ => Error::protocol(format!("unexpected answer: {message}")),
    }
}

/// The wait a 429 implies when it carries no `Retry-After`: until the request bucket holds one
/// token (`(1 − X-RateLimit-Remaining) / X-RateLimit-Limit-Per-Second`) and the object bucket
/// holds what the request needs (`(rateLimitCurrentRequestSize − rateLimitRemaining) /
/// X-RateLimit-Limit-Per-Second-Objects`, for a URL, TAG or CPCODE 429), whichever is longer.
/// `None` when the headers do not tell.
pub fn rate_limit_wait(headers: &HeaderMap, problem: &Problem) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let mut wait: Option<f64> = None;
    if let (Some(remaining), Some(rate)) = (
        number("x-ratelimit-remaining"),
        number("x-ratelimit-limit-per-second").filter(|r| *r > 0.0),
    ) && remaining < 1.0
    {
        wait = Some((1.0 - remaining) / rate);
    }
    let object_bucket = problem
        .title
        .as_deref()
        .is_some_and(|t| t != "Rate Limit exceeded");
    if object_bucket
        && let (Some(needed), Some(left), Some(rate)) = (
            problem.rate_limit_current_request_size,
            problem.rate_limit_remaining,
            number("x-ratelimit-limit-per-second-objects").filter(|r| *r > 0.0),
        )
        && needed > left
    {
        let objects = (needed - left) as f64 / rate;
        wait = Some(wait.map_or(objects, |w| w.max(objects)));
    }
    // Rounded up to the millisecond, so the tokens are there when we come back.
    wait.and_then(|w| Duration::try_from_secs_f64((w * 1000.0).ceil() / 1000.0).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut b = purgekit_core::http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn the_documented_201_decodes() {
        let r = response(
            201,
            &[("Content-Type", "application/json")],
            r#"{"httpStatus":201,"estimatedSeconds":5,"purgeId":"edcp-NZbXzFpHBjcJeryhw6PVgG",
               "supportId":"edcp-NZbXzFpHBjcJeryhw6PVgG","detail":"Request accepted","title":"x"}"#,
        );
        let a = accepted(&r).unwrap();
        assert_eq!(a.purge_id, "edcp-NZbXzFpHBjcJeryhw6PVgG");
        assert_eq!(a.estimated_seconds, Some(5));
        let wrong = response(201, &[], r#"{"httpStatus":400,"purgeId":"edcp-x"}"#);
        assert_eq!(accepted(&wrong).unwrap_err().kind(), "protocol");
        let garbage = response(201, &[], "<html>");
        assert_eq!(accepted(&garbage).unwrap_err().kind(), "protocol");
        let blank = response(201, &[], r#"{"purgeId":" "}"#);
        assert_eq!(accepted(&blank).unwrap_err().kind(), "protocol");
    }

    #[test]
    fn problems_are_fatal_with_akamais_detail() {
        let body = r#"{"supportId":"edup-CUxs8ZxCNNJ6GRdCq5iHXG","httpStatus":400,"title":"bad URL",
            "detail":"Invalid or malformed URL 'https://é': contains non-ASCII character","describedBy":"https://developer.akamai.com/x"}"#;
        for status in [400, 403, 413] {
            let e = classify(&response(
                status,
                &[("Content-Type", "application/api-problem+json")],
                body,
            ));
            assert_eq!(e.kind(), "rejected", "{status}");
            assert!(!e.is_retryable());
            let text = e.to_string();
            assert!(text.contains(&format!("code {status}")), "{text}");
            assert!(text.contains("bad URL: Invalid or malformed URL"), "{text}");
            assert!(
                text.contains("supportId edup-CUxs8ZxCNNJ6GRdCq5iHXG"),
                "{text}"
            );
        }
        let e = classify(&response(
            401,
            &[],
            r#"{"title":"The signature does not match","httpStatus":401}"#,
        ));
        assert_eq!(e.kind(), "auth");
        assert!(e.to_string().contains("signature does not match"), "{e}");
        let e = classify(&response(415, &[], ""));
        assert_eq!(e, Error::rejected("415", "HTTP 415 Unsupported Media Type"));
    }

    #[test]
    fn server_errors_and_507_are_transient() {
        for status in [500, 503, 504, 507, 408] {
            let e = classify(&response(
                status,
                &[("Retry-After", "3")],
                r#"{"title":"internal error"}"#,
            ));
            assert_eq!(e.kind(), "transient", "{status}");
            assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        }
    }

    #[test]
    fn a_request_bucket_429_waits_for_one_request_token() {
        let e = classify(&response(
            429,
            &[
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Limit", "100"),
                ("X-RateLimit-Limit-Per-Second", "50.00"),
                ("X-RateLimit-Remaining-Objects", "9904"),
                ("X-RateLimit-Limit-Per-Second-Objects", "200.00"),
            ],
            r#"{"title":"Rate Limit exceeded","httpStatus":429,"rateLimit":100,"rateLimitCurrentRequestSize":1,"rateLimitRemaining":0,"supportId":"s"}"#,
        ));
        assert_eq!(e.kind(), "rate_limited");
        assert_eq!(e.retry_after(), Some(Duration::from_millis(20)));
    }

    #[test]
    fn an_object_bucket_429_waits_for_the_missing_objects() {
        let e = classify(&response(
            429,
            &[
                ("X-Ratelimit-Remaining", "99"),
                ("X-Ratelimit-Limit-Per-Second", "50.00"),
                ("X-Ratelimit-Remaining-Objects", "94"),
                ("X-Ratelimit-Limit-Per-Second-Objects", "200.00"),
            ],
            r#"{"title":"URL Rate Limit exceeded","httpStatus":429,"rateLimit":10000,"rateLimitCurrentRequestSize":110,"rateLimitRemaining":94}"#,
        ));
        // 16 URLs missing at 200 a second.
        assert_eq!(e.retry_after(), Some(Duration::from_millis(80)));
        assert!(e.to_string().contains("URL Rate Limit exceeded"), "{e}");
    }

    #[test]
    fn retry_after_wins_and_silence_leaves_the_engine_to_choose() {
        let e = classify(&response(
            429,
            &[
                ("Retry-After", "2"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Limit-Per-Second", "50"),
            ],
            "",
        ));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        let e = classify(&response(429, &[], "slow down"));
        assert_eq!((e.kind(), e.retry_after()), ("rate_limited", None));
    }
}
