//! Responses: Cloudflare's `{success, errors[{code,message}], messages, result{id}}` envelope,
//! read even on a 200 and classified once into [`purgekit_core::Error`] kinds.

use std::time::Duration;

use purgekit_core::{Error, HttpResponse, Result, escape_controls, response_retry_after, snippet};
use serde::Deserialize;

/// Cloudflare's authentication error code (bad token, missing permission).
pub const AUTH_ERROR: i64 = 10000;
/// Cloudflare's throttling code ("Please wait and consider throttling your request speed").
pub const THROTTLED: i64 = 971;

#[derive(Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    errors: Vec<Message>,
    #[serde(default)]
    result: Option<Outcome>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Outcome {
    id: String,
}

/// What the request carried, for messages: `N files (limit M per request)`.
pub(crate) struct Sent<'a> {
    /// The field (`files`, `tags`…).
    pub field: &'a str,
    /// How many values.
    pub count: usize,
    /// The per-request limit in force (the plan's or the configured one) and its key.
    pub limit: (usize, &'static str),
}

/// `result.id` of an accepted purge, or a classified error: auth (401/403, code 10000) fatal,
/// throttling (429, code 971) retried after `retry-after`, per-request limits and other
/// refusals fatal naming what was sent and the limit, 5xx transient.
pub(crate) fn accepted(response: &HttpResponse, sent: &Sent<'_>) -> Result<String> {
    let status = response.status().as_u16();
    let envelope: Option<Envelope> = serde_json::from_slice(response.body()).ok();
    let words = |errors: &[Message]| -> String {
        let shown: Vec<String> = errors
            .iter()
            .take(5)
            .map(|e| format!("{} {}", e.code, snippet(e.message.as_bytes())))
            .collect();
        if shown.is_empty() {
            snippet(response.body())
        } else {
            escape_controls(&shown.join("; "))
        }
    };
    let codes = |c: i64| {
        envelope
            .as_ref()
            .is_some_and(|e| e.errors.iter().any(|m| m.code == c))
    };
    match envelope {
        Some(Envelope {
            success: true,
            result: Some(Outcome { id }),
            ..
        }) if status == 200 => {
            if id.is_empty() {
                return Err(Error::protocol(
                    "Cloudflare accepted the purge without an id",
                ));
            }
            Ok(escape_controls(&id))
        }
        _ if status == 401 || status == 403 || codes(AUTH_ERROR) => Err(Error::auth(format!(
            "HTTP {status} from Cloudflare: {}",
            envelope
                .as_ref()
                .map_or_else(|| snippet(response.body()), |e| words(&e.errors))
        ))),
        _ if status == 429 || codes(THROTTLED) => Err(Error::RateLimited {
            retry_after: retry_after(response),
            message: format!(
                "HTTP {status} from Cloudflare: {}",
                envelope
                    .as_ref()
                    .map_or_else(|| snippet(response.body()), |e| words(&e.errors))
            ),
        }),
        _ if (500..=599).contains(&status) => Err(Error::Transient {
            retry_after: retry_after(response),
            message: format!(
                "HTTP {status} from Cloudflare: {}",
                snippet(response.body())
            ),
        }),
        Some(e) => Err(Error::rejected(
            e.errors
                .first()
                .map_or(status.to_string(), |m| m.code.to_string()),
            format!(
                "{}; the request carried {} {} (this zone's limit: {} per request, `{}`)",
                words(&e.errors),
                sent.count,
                sent.field,
                sent.limit.0,
                sent.limit.1
            ),
        )),
        None => Err(Error::protocol(format!(
            "HTTP {status} from Cloudflare without its JSON envelope: {}",
            snippet(response.body())
        ))),
    }
}

#[derive(Deserialize)]
struct Verified {
    success: bool,
    #[serde(default)]
    errors: Vec<Message>,
    #[serde(default)]
    result: Option<TokenStatus>,
}

#[derive(Deserialize)]
struct TokenStatus {
    status: String,
}

/// The answer to the credentials check (`GET /user/tokens/verify`): accepted when the token is
/// `active`; a token that is not, 401/403 or code 10000 are auth errors, 5xx transient.
pub(crate) fn verified(response: &HttpResponse) -> Result<()> {
    let status = response.status().as_u16();
    let answer: Option<Verified> = serde_json::from_slice(response.body()).ok();
    let words = || match &answer {
        Some(a) if !a.errors.is_empty() => escape_controls(
            &a.errors
                .iter()
                .take(5)
                .map(|e| format!("{} {}", e.code, snippet(e.message.as_bytes())))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => snippet(response.body()),
    };
    match &answer {
        Some(Verified {
            success: true,
            result: Some(TokenStatus { status: token }),
            ..
        }) if status == 200 => {
            if token == "active" {
                Ok(())
            } else {
                Err(Error::auth(format!(
                    "the Cloudflare token is `{}`, not active",
                    snippet(token.as_bytes())
                )))
            }
        }
        _ if status == 401
            || status == 403
            || answer
                .as_ref()
                .is_some_and(|a| a.errors.iter().any(|m| m.code == AUTH_ERROR)) =>
        {
            Err(Error::auth(format!(
                "HTTP {status} from Cloudflare: {}",
                words()
            )))
        }
        _ if (500..=599).contains(&status) => Err(Error::Transient {
            retry_after: retry_after(response),
            message: format!("HTTP {status} from Cloudflare: {}", words()),
        }),
        _ => Err(Error::protocol(format!(
            "HTTP {status} from Cloudflare to the token check: {}",
            words()
        ))),
    }
}

/// `retry-after` (seconds or a date), else the non-standard `retry-after-ms` the official SDK
/// also honours.
fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response_retry_after(response.headers()).or_else(|| {
        let ms: u64 = response
            .headers()
            .get("retry-after-ms")?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(Duration::from_millis(ms))
    })
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

    const SENT: Sent<'static> = Sent {
        field: "files",
        count: 31,
        limit: (30, "max_files_per_request"),
    };

    #[test]
    fn the_token_check_accepts_an_active_token_only() {
        let read = |status: u16, body: &str| verified(&response(status, body, &[]));
        let auth = |e: Error| matches!(e, Error::Auth { .. });
        assert!(read(200, r#"{"success":true,"errors":[],"messages":[],"result":{"id":"t","status":"active"}}"#).is_ok());
        let e = read(
            200,
            r#"{"success":true,"errors":[],"result":{"id":"t","status":"disabled"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("disabled") && auth(e));
        let e = read(
            401,
            r#"{"success":false,"errors":[{"code":1000,"message":"Invalid API Token"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("Invalid API Token") && auth(e));
        let e = read(
            403,
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#,
        )
        .unwrap_err();
        assert!(auth(e));
        assert!(matches!(
            read(503, "busy").unwrap_err(),
            Error::Transient { .. }
        ));
        assert!(!auth(read(200, "<html>").unwrap_err()));
    }

    #[test]
    fn success_gives_the_result_id() {
        let ok = r#"{"success":true,"errors":[],"messages":[],"result":{"id":"023e105f4ecef8ad9ca31a8372d0c353"}}"#;
        assert_eq!(
            accepted(&response(200, ok, &[]), &SENT).unwrap(),
            "023e105f4ecef8ad9ca31a8372d0c353"
        );
        // A 200 that says it failed is not a success.
        let failed = r#"{"success":false,"errors":[{"code":1012,"message":"Request must contain one of"}],"messages":[],"result":null}"#;
        let e = accepted(&response(200, failed, &[]), &SENT).unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("1012"), "{e}");
    }

    #[test]
    fn errors_are_classified_once() {
        let auth = r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#;
        for status in [401, 403, 400] {
            let e = accepted(&response(status, auth, &[]), &SENT).unwrap_err();
            assert!(matches!(e, Error::Auth { .. }) && !e.is_retryable(), "{e}");
        }
        let throttled = r#"{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[],"result":null}"#;
        let e = accepted(&response(429, throttled, &[("retry-after", "7")]), &SENT).unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = accepted(
            &response(429, throttled, &[("retry-after-ms", "1500")]),
            &SENT,
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        let limit = r#"{"success":false,"errors":[{"code":1002,"message":"too many files"}],"messages":[],"result":null}"#;
        let e = accepted(&response(400, limit, &[]), &SENT).unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        for part in ["31 files", "30 per request", "max_files_per_request"] {
            assert!(e.to_string().contains(part), "{e}");
        }
        assert!(
            accepted(&response(502, "", &[]), &SENT)
                .unwrap_err()
                .is_retryable()
        );
        assert!(matches!(
            accepted(&response(200, "<html>", &[]), &SENT).unwrap_err(),
            Error::Protocol { .. }
        ));
    }
}
