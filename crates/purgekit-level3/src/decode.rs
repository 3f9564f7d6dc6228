//! Classifying Level 3 error answers into core error kinds (Appendix: Error Responses, and the
//! "API Request Acceptance" table's bare `mpe…` bodies).

use purgekit_core::{Error, HttpResponse, http};

use crate::wire::parse_error;

/// The bare bodies of the "API Request Acceptance" table, and the appendix code each stands for.
const MPE_TOKENS: [(&str, &str); 4] = [
    ("mpeRequestTooOld", "21719"),
    ("mpeAPIKeyDisabled", "21721"),
    ("mpeAPIPrivilegesSuspended", "21722"),
    ("mpeRequestRateTooHigh", "21723"),
];

/// Codes meaning the credentials were refused.
const AUTH_CODES: [&str; 4] = ["21721", "21722", "21725", "21726"];
/// 5xx codes that no retry can fix.
const PERMANENT_SERVER_CODES: [&str; 2] = ["21724", "21745"];

/// Classifies any answer that is not a success.
pub fn classify(response: &HttpResponse) -> Error {
    let status = response.status();
    let text = String::from_utf8_lossy(response.body());
    let text = text.trim();
    let retry_after = purgekit_core::response_retry_after(response.headers());
    if let Err(too_deep) = crate::wire::check_depth(text) {
        return too_deep;
    }

    let (code, message) = match parse_error(text) {
        Some(e) => {
            let mut message = e.message;
            if !e.correlation_id.is_empty() {
                message.push_str(&format!(" (apiCorrelationId {})", e.correlation_id));
            }
            (Some(e.code), message)
        }
        None => match MPE_TOKENS.iter().find(|(token, _)| *token == text) {
            Some((token, code)) => (Some((*code).to_owned()), (*token).to_owned()),
            None => (None, String::new()),
        },
    };

    match code.as_deref() {
        Some("21719") => {
            return Error::auth(format!(
                "Level 3 says the request is too old (code 21719: {message}): the Date we sign is \
                 more than 15 minutes away from its clock, so check this machine's clock"
            ));
        }
        Some(c) if AUTH_CODES.contains(&c) => {
            return Error::auth(format!("{message} (code {c}, HTTP {})", status.as_u16()));
        }
        Some("21723") => {
            return Error::RateLimited {
                retry_after,
                message: format!("{message} (code 21723: more than the key's requests per minute)"),
            };
        }
        Some(c) if PERMANENT_SERVER_CODES.contains(&c) => return Error::rejected(c, message),
        _ => {}
    }

    if status == http::StatusCode::FORBIDDEN && text.is_empty() {
        return Error::auth(
            "HTTP 403 with no body: Level 3 refused the signature (check key_id and secret)",
        );
    }
    if status.is_server_error() {
        let what = match &code {
            Some(c) => format!("HTTP {}: {message} (code {c})", status.as_u16()),
            None => format!("HTTP {}{}", status.as_u16(), snippet(text)),
        };
        return Error::Transient {
            retry_after,
            message: what,
        };
    }
    if status == http::StatusCode::TOO_MANY_REQUESTS {
        return Error::RateLimited {
            retry_after,
            message: format!("HTTP 429{}", snippet(text)),
        };
    }
    if status.is_client_error() {
        if let Some(c) = code {
            return Error::rejected(c, message);
        }
        if text.is_empty() {
            let reason = status.canonical_reason().unwrap_or("client error");
            return Error::rejected(status.as_u16().to_string(), reason);
        }
    }
    Error::protocol(format!(
        "HTTP {} with a body that is not a Level 3 answer{}",
        status.as_u16(),
        snippet(text)
    ))
}

/// `: <the start of the body>` for error messages ([`purgekit_core::snippet`]), or nothing.
pub fn snippet(text: &str) -> String {
    let head = purgekit_core::snippet(text.as_bytes());
    if head.is_empty() {
        head
    } else {
        format!(": {head}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    fn error_body(code: &str, message: &str, status: u16) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><error><errorCode>{code}</errorCode>\
             <message>{message}</message><httpStatus>{status}</httpStatus>\
             <apiCorrelationId>CDNPortal-1-2</apiCorrelationId></error>"
        )
    }

    #[test]
    fn bad_credentials_are_auth() {
        for code in ["21725", "21726"] {
            let e = classify(&response(403, &[], &error_body(code, "Unauthorized.", 403)));
            assert_eq!(e.kind(), "auth", "{e}");
            assert!(e.to_string().contains(code), "{e}");
        }
        let e = classify(&response(403, &[], ""));
        assert_eq!(e.kind(), "auth");
        assert!(e.to_string().contains("signature"), "{e}");
    }

    #[test]
    fn clock_skew_is_said_plainly() {
        for body in [
            error_body("21719", "Request timestamp too old", 403),
            "mpeRequestTooOld".to_owned(),
        ] {
            let e = classify(&response(403, &[], &body));
            assert_eq!(e.kind(), "auth");
            assert!(e.to_string().contains("check this machine's clock"), "{e}");
        }
    }

    #[test]
    fn rate_limit_uses_retry_after_when_given() {
        let body = error_body("21723", "API Key request rate too high", 503);
        let e = classify(&response(503, &[("retry-after", "17")], &body));
        assert_eq!(
            e,
            Error::RateLimited {
                retry_after: Some(Duration::from_secs(17)),
                message:
                    "API Key request rate too high (apiCorrelationId CDNPortal-1-2) (code 21723: \
                      more than the key's requests per minute)"
                        .into(),
            }
        );
        let e = classify(&response(503, &[], "mpeRequestRateTooHigh"));
        assert_eq!(e.kind(), "rate_limited");
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn path_errors_are_rejected_with_their_code() {
        for (code, status) in [
            ("21731", 403),
            ("21732", 403),
            ("21735", 400),
            ("21703", 404),
        ] {
            let e = classify(&response(status, &[], &error_body(code, "x", status)));
            match e {
                Error::Rejected { code: got, .. } => assert_eq!(got, code),
                other => panic!("{code}: {other:?}"),
            }
        }
        let e = classify(&response(406, &[], ""));
        assert_eq!(e, Error::rejected("406", "Not Acceptable"));
    }

    #[test]
    fn server_errors_are_transient_unless_permanent() {
        let e = classify(&response(
            502,
            &[("retry-after", "3")],
            "<html>bad gateway</html>",
        ));
        assert_eq!(e.kind(), "transient");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = classify(&response(500, &[], &error_body("21718", "Internal", 500)));
        assert_eq!(e.kind(), "transient");
        let e = classify(&response(500, &[], &error_body("21745", "Not set up", 500)));
        assert_eq!(e.kind(), "rejected");
    }

    #[test]
    fn deep_nesting_is_a_protocol_error_whatever_the_status() {
        let body = "<error>".repeat(100_000);
        for status in [400, 429, 503] {
            let e = classify(&response(status, &[], &body));
            assert_eq!(e.kind(), "protocol", "{status}: {e}");
            assert!(e.to_string().contains("64 levels"), "{e}");
        }
    }

    #[test]
    fn anything_else_is_a_protocol_error() {
        let e = classify(&response(400, &[], "<<garbage"));
        assert_eq!(e.kind(), "protocol");
        assert!(e.to_string().contains("<<garbage"), "{e}");
        let e = classify(&response(302, &[], ""));
        assert_eq!(e.kind(), "protocol");
    }
}
