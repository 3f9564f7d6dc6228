//! Verifying an MPA-signed request, as the guide's "Sign Your API Requests" describes.
//!
//! Written apart from the client's signer on purpose: the emulator checks the client, it does not
//! share its code.

use crate::auth::{Authenticator, Principal};
use std::time::{Duration, SystemTime};

use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No `Authorization: MPA id:signature` header (21726).
    HeaderNotRecognized,
    /// Unknown key or wrong signature: 403 with no body.
    Refused,
    /// No `Date`, or one that cannot be read (21724).
    BadDate,
    /// The `Date` is more than the allowed age away from now (21719).
    TooOld,
}

/// Checks the `Authorization` header of `parts` against `(key_id, secret)` and the `Date`
/// against `now` and `max_age`. Returns the key id on success.
pub(super) fn verify(
    parts: &Parts,
    key_id: &str,
    secret: &str,
    now: SystemTime,
    max_age: Duration,
) -> Result<String, AuthFailure> {
    let headers = &parts.headers;
    let authorization = header(headers, "authorization").ok_or(AuthFailure::HeaderNotRecognized)?;
    let (id, signature) = authorization
        .strip_prefix("MPA ")
        .and_then(|rest| rest.split_once(':'))
        .ok_or(AuthFailure::HeaderNotRecognized)?;
    let date = header(headers, "date").ok_or(AuthFailure::BadDate)?;
    let when = parse_date(date).ok_or(AuthFailure::BadDate)?;
    if id != key_id {
        return Err(AuthFailure::Refused);
    }
    let to_sign = format!(
        "{date}\n{}\n{}\n{}\n{}",
        parts.uri.path(),
        header(headers, "content-type").unwrap_or(""),
        parts.method.as_str(),
        header(headers, "content-md5").unwrap_or(""),
    );
    let tag = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| AuthFailure::Refused)?;
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(to_sign.as_bytes());
    mac.verify_slice(&tag).map_err(|_| AuthFailure::Refused)?;
    let skew = now.duration_since(when).unwrap_or_else(|e| e.duration());
    if skew > max_age {
        return Err(AuthFailure::TooOld);
    }
    Ok(id.to_owned())
}

impl Authenticator for super::Level3Emulator {
    type Refusal = AuthFailure;
    const MAX_BODY: usize = super::MAX_BODY;

    fn verify(&self, parts: &Parts, _body: &[u8]) -> Result<Principal, AuthFailure> {
        let config = self.config();
        let key = verify(
            parts,
            &config.key_id,
            &config.secret,
            SystemTime::now(),
            config.max_request_age,
        )?;
        Ok(Principal(key))
    }

    /// The guide's answers: 403 with no body for a wrong key or signature, else its error XML.
    fn refuse(&self, failure: AuthFailure) -> Response {
        super::respond(match failure {
            AuthFailure::Refused => (StatusCode::FORBIDDEN, None),
            AuthFailure::HeaderNotRecognized => {
                super::error(403, 21726, "Authorization header not recognized.")
            }
            AuthFailure::BadDate => {
                super::error(500, 21724, "Could not parse the request header date.")
            }
            AuthFailure::TooOld => {
                super::error(403, 21719, "mpeRequestTooOld: Request timestamp too old.")
            }
        })
    }

    fn too_large(&self) -> Response {
        super::respond(super::invalid_body())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// `Tue, 20 Jul 2010 08:49:37 GMT` (RFC 1123) or the guide's `Tue, 20 Jul 2010 08:49:37 +0000`.
pub(super) fn parse_date(date: &str) -> Option<SystemTime> {
    let date = date.trim();
    match date.strip_suffix(" +0000") {
        Some(head) => httpdate::parse_http_date(&format!("{head} GMT")).ok(),
        None => httpdate::parse_http_date(date).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_date_spellings() {
        let gmt = parse_date("Tue, 20 Jul 2010 08:49:37 GMT").unwrap();
        assert_eq!(parse_date("Tue, 20 Jul 2010 08:49:37 +0000"), Some(gmt));
        assert_eq!(parse_date("20 Jul 2010"), None);
    }

    fn parts(date: &str, authorization: &str) -> Parts {
        axum::http::Request::builder()
            .method("POST")
            .uri("https://ws.lumen.com/invalidations/v1.0/12345/BBBN56789/cdn.exampleni.com?force=true")
            .header("date", date)
            .header("content-type", "text/xml")
            .header("authorization", authorization)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn accepts_the_published_vector_and_refuses_changes() {
        let date = "Tue, 20 Jul 2010 08:49:37 GMT";
        let now = parse_date(date).unwrap() + Duration::from_secs(60);
        let max = Duration::from_secs(900);
        let good = parts(date, "MPA 10042:BL0TrvhAYloZuvmVZdhnimDHrBA=");
        assert_eq!(
            verify(&good, "10042", "secret", now, max),
            Ok("10042".into())
        );
        assert_eq!(
            verify(&good, "10042", "other", now, max),
            Err(AuthFailure::Refused)
        );
        assert_eq!(
            verify(&good, "99999", "secret", now, max),
            Err(AuthFailure::Refused)
        );
        let late = now + Duration::from_secs(900);
        assert_eq!(
            verify(&good, "10042", "secret", late, max),
            Err(AuthFailure::TooOld)
        );
        let bare = parts(date, "BL0TrvhAYloZuvmVZdhnimDHrBA=");
        assert_eq!(
            verify(&bare, "10042", "secret", now, max),
            Err(AuthFailure::HeaderNotRecognized)
        );
        let undated = parts("yesterday", "MPA 10042:BL0TrvhAYloZuvmVZdhnimDHrBA=");
        assert_eq!(
            verify(&undated, "10042", "secret", now, max),
            Err(AuthFailure::BadDate)
        );
    }
}
