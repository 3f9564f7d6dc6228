//! Responses: the three success bodies, and Fastly's two error shapes (`{"msg","detail"}` and
//! JSON:API `{"errors":[{"title","detail"}]}`) classified once into [`purgekit_core::Error`]
//! kinds. A 429 waits until `Fastly-RateLimit-Reset`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use purgekit_core::http::{HeaderMap, header};
use purgekit_core::{Error, HttpResponse, Result, escape_controls, response_retry_after, snippet};
use serde::Deserialize;

use crate::wire::Call;

/// Requests left in the current rate-limit window.
pub const REMAINING_HEADER: &str = "fastly-ratelimit-remaining";
/// When the window resets, UTC epoch seconds.
pub const RESET_HEADER: &str = "fastly-ratelimit-reset";

/// The handle of a purge-all: Fastly answers `{"status":"ok"}` with no id.
pub const PURGE_ALL_HANDLE: &str = "purge_all";

#[derive(Deserialize)]
struct Single {
    status: String,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize, Default)]
struct Legacy {
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// The purge id of an accepted call (the id of the first key for a batch, each key having
/// one), or a classified error. `keys` are the batch's keys (for a key batch) and `what` names
/// the call's targets in messages.
pub(crate) fn accepted(
    call: Call,
    response: &HttpResponse,
    keys: &[&str],
    what: &str,
) -> Result<String> {
    if response.status().as_u16() != 200 {
        return Err(classify(response, what));
    }
    let body = response.body();
    let bad = |e: String| {
        Error::protocol(format!(
            "Fastly's answer to the purge of {what} is not what it documents ({}): {}",
            escape_controls(&e),
            snippet(body)
        ))
    };
    match call {
        Call::Url | Call::All => {
            let single: Single = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
            if single.status != "ok" {
                return Err(bad(format!(
                    "status `{}`",
                    snippet(single.status.as_bytes())
                )));
            }
            match (call, single.id) {
                (Call::All, _) => Ok(PURGE_ALL_HANDLE.to_owned()),
                (_, Some(id)) if !id.is_empty() => Ok(id),
                _ => Err(bad("no purge id".to_owned())),
            }
        }
        Call::Keys => {
            let ids: BTreeMap<String, String> =
                serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
            if let Some(missing) = keys.iter().find(|k| !ids.contains_key(**k)) {
                return Err(bad(format!("no purge id for key `{missing}`")));
            }
            keys.first()
                .and_then(|k| ids.get(*k))
                .cloned()
                .ok_or_else(|| bad("no purge id".to_owned()))
        }
    }
}

/// `GET /tokens/self`'s record: the scopes (space-separated; `global` when absent) and the
/// services the token is limited to (any when empty).
#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    services: Vec<String>,
}

/// The answer to the credentials check (`GET /tokens/self`): accepted when the token holds a
/// purge scope (`global`, `purge_select` or `purge_all`) and may act on `service_id`; a token
/// without one is an auth error, as a purge with it would be.
pub(crate) fn token(response: &HttpResponse, service_id: &str) -> Result<()> {
    if response.status().as_u16() != 200 {
        return Err(classify(response, "nothing (the credentials check)"));
    }
    let token: Token = serde_json::from_slice(response.body()).map_err(|e| {
        Error::protocol(format!(
            "Fastly's answer to GET /tokens/self is not what it documents ({}): {}",
            escape_controls(&e.to_string()),
            snippet(response.body())
        ))
    })?;
    let scope = token.scope.as_deref().unwrap_or("global");
    if !scope
        .split_whitespace()
        .any(|s| matches!(s, "global" | "purge_select" | "purge_all"))
    {
        return Err(Error::auth(format!(
            "the Fastly token's scope `{}` has none of purge_select, purge_all or global",
            snippet(scope.as_bytes())
        )));
    }
    if !token.services.is_empty() && !token.services.iter().any(|s| s == service_id) {
        return Err(Error::auth(format!(
            "the Fastly token is limited to other services than `{service_id}`"
        )));
    }
    Ok(())
}

/// An error answer: 401/403 auth (never retried), 429 a rate limit until the window resets,
/// 5xx transient, the rest rejections naming the status and Fastly's words.
fn classify(response: &HttpResponse, what: &str) -> Error {
    let status = response.status();
    let parsed: Legacy = serde_json::from_slice(response.body()).unwrap_or_default();
    let words: Vec<String> = [parsed.msg, parsed.detail]
        .into_iter()
        .flatten()
        .chain(
            parsed
                .errors
                .into_iter()
                .flat_map(|e| [e.title, e.detail].into_iter().flatten()),
        )
        .filter(|w| !w.is_empty())
        .collect();
    let words = if words.is_empty() {
        snippet(response.body())
    } else {
        snippet(words.join(": ").as_bytes())
    };
    match status.as_u16() {
        401 | 403 => Error::auth(format!("HTTP {status} from Fastly: {words}")),
        429 => Error::RateLimited {
            retry_after: until_reset(response.headers())
                .or_else(|| response_retry_after(response.headers())),
            message: format!("HTTP 429 from Fastly (the hourly API limit): {words}"),
        },
        500..=599 => Error::Transient {
            retry_after: response_retry_after(response.headers()),
            message: format!("HTTP {status} from Fastly: {words}"),
        },
        code => Error::rejected(code.to_string(), format!("{words}; purging {what}")),
    }
}

/// The time from the answer's `Date` to `Fastly-RateLimit-Reset` (epoch seconds), when both
/// are there: the decoder is pure, so the server's clock stands in for ours.
pub fn until_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset: u64 = headers
        .get(RESET_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let date = httpdate::parse_http_date(headers.get(header::DATE)?.to_str().ok()?.trim()).ok()?;
    let reset = UNIX_EPOCH + Duration::from_secs(reset);
    Some(
        reset
            .duration_since(date)
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1)),
    )
}

/// `Fastly-RateLimit-Remaining` and the reset time, when Fastly sent them.
pub fn rate_limit_state(headers: &HeaderMap) -> Option<(u64, SystemTime)> {
    let remaining = headers
        .get(REMAINING_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let reset: u64 = headers
        .get(RESET_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((remaining, UNIX_EPOCH + Duration::from_secs(reset)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let mut b = purgekit_core::http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn the_token_record_needs_a_purge_scope_and_the_service() {
        let read = |status: u16, body: &str| token(&response(status, body, &[]), "SVC");
        assert!(read(200, r#"{"scope":"global","services":[]}"#).is_ok());
        assert!(read(200, r#"{"scope":"global:read purge_select"}"#).is_ok());
        assert!(
            read(200, r#"{"id":"t"}"#).is_ok(),
            "no scope is Fastly's default, global"
        );
        assert!(read(200, r#"{"scope":"purge_all","services":["SVC"]}"#).is_ok());
        let auth = |e: Error| matches!(e, Error::Auth { .. });
        let e = read(200, r#"{"scope":"global:read"}"#).unwrap_err();
        assert!(e.to_string().contains("global:read") && auth(e));
        let e = read(200, r#"{"scope":"global","services":["OTHER"]}"#).unwrap_err();
        assert!(e.to_string().contains("SVC") && auth(e));
        let e = read(
            401,
            r#"{"msg":"Provided credentials are missing or invalid"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing or invalid") && auth(e));
        assert!(!auth(read(200, "<html>").unwrap_err()));
    }

    #[test]
    fn success_bodies_give_the_purge_id() {
        let ok = r#"{"status":"ok","id":"108-1391560174-974124"}"#;
        assert_eq!(
            accepted(Call::Url, &response(200, ok, &[]), &[], "u").unwrap(),
            "108-1391560174-974124"
        );
        let batch = r#"{"k1":"108-1-1","k2":"108-1-2"}"#;
        assert_eq!(
            accepted(Call::Keys, &response(200, batch, &[]), &["k1", "k2"], "k").unwrap(),
            "108-1-1"
        );
        let e = accepted(Call::Keys, &response(200, batch, &[]), &["k1", "k3"], "k").unwrap_err();
        assert!(e.to_string().contains("k3"), "{e}");
        assert_eq!(
            accepted(
                Call::All,
                &response(200, r#"{"status":"ok"}"#, &[]),
                &[],
                "all"
            )
            .unwrap(),
            PURGE_ALL_HANDLE
        );
        assert!(accepted(Call::Url, &response(200, "<html>", &[]), &[], "u").is_err());
    }

    #[test]
    fn errors_are_classified_once() {
        for status in [401, 403] {
            let e = accepted(
                Call::Url,
                &response(
                    status,
                    r#"{"msg":"Provided credentials are missing or invalid"}"#,
                    &[],
                ),
                &[],
                "u",
            )
            .unwrap_err();
            assert!(matches!(e, Error::Auth { .. }) && !e.is_retryable(), "{e}");
            assert!(e.to_string().contains("credentials"), "{e}");
        }
        let limited = response(
            429,
            r#"{"errors":[{"title":"Too many requests","detail":"Rate limit exceeded"}]}"#,
            &[
                ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("fastly-ratelimit-reset", "784111837"),
                ("fastly-ratelimit-remaining", "0"),
            ],
        );
        let e = accepted(Call::All, &limited, &[], "everything").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        assert!(e.to_string().contains("Rate limit exceeded"), "{e}");
        assert_eq!(rate_limit_state(limited.headers()).unwrap().0, 0);
        assert!(
            accepted(Call::Url, &response(503, "", &[]), &[], "u")
                .unwrap_err()
                .is_retryable()
        );
        let e = accepted(
            Call::Keys,
            &response(
                404,
                r#"{"msg":"Record not found","detail":"Cannot find service"}"#,
                &[],
            ),
            &[],
            "tag:a",
        )
        .unwrap_err();
        assert!(
            !e.is_retryable() && e.to_string().contains("Cannot find service"),
            "{e}"
        );
    }
}
