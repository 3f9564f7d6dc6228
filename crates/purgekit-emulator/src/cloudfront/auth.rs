//! SigV4 verification, written from the algorithm (not the codec's code, not `aws-sigv4`):
//! canonical request from the headers the client says it signed, string to sign, HMAC chain.

use crate::auth::{Authenticator, Principal};
use axum::http::request::Parts;
use axum::response::Response;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, Uri};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Why a request is refused: (HTTP status, AWS error code, message).
pub(crate) type Refusal = (u16, &'static str, String);

impl Authenticator for super::CloudFrontEmulator {
    type Refusal = Refusal;

    fn verify(&self, parts: &Parts, body: &[u8]) -> Result<Principal, Refusal> {
        let c = self.config();
        let keys = Keys {
            access_key_id: &c.access_key_id,
            secret: &c.secret_access_key,
            session_token: c.session_token.as_deref(),
            max_skew: c.max_skew,
        };
        verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
            &keys,
            SystemTime::now(),
        )?;
        Ok(Principal(c.access_key_id.clone()))
    }

    /// AWS's `ErrorResponse` XML with the code and its status.
    fn refuse(&self, refusal: Refusal) -> Response {
        super::refuse(refusal)
    }
}

/// What the verifier checks against.
pub(super) struct Keys<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub session_token: Option<&'a str>,
    pub max_skew: Duration,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Parses `yyyymmddTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(9..11)?, n(11..13)?, n(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (H. Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Verifies the request's SigV4 signature for service `cloudfront` in `us-east-1`.
pub(super) fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    keys: &Keys<'_>,
    now: SystemTime,
) -> Result<(), Refusal> {
    let missing = || {
        (
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token".to_owned(),
        )
    };
    let incomplete = |what: &str| (403, "IncompleteSignature", format!("Authorization {what}"));
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| incomplete("must use AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(incomplete("has an unknown part")),
        }
    }
    let (credential, signed, signature) = match (credential, signed, signature) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => return Err(incomplete("lacks Credential, SignedHeaders or Signature")),
    };
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(incomplete("has a malformed Credential"));
    }
    if scope[0] != keys.access_key_id {
        return Err((
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.".into(),
        ));
    }
    if scope[2] != "us-east-1" || scope[3] != "cloudfront" {
        return Err((
            403,
            "SignatureDoesNotMatch",
            format!(
                "Credential should be scoped to us-east-1/cloudfront, not {}/{}",
                scope[2], scope[3]
            ),
        ));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| incomplete("requires an X-Amz-Date header"))?;
    let at = parse_amz_date(amz_date).ok_or_else(|| incomplete("has a malformed X-Amz-Date"))?;
    let skew = now.duration_since(at).unwrap_or_else(|e| e.duration());
    if skew > keys.max_skew {
        return Err((
            400,
            "RequestExpired",
            format!("Request has expired (signed at {amz_date})"),
        ));
    }
    if &amz_date[..8] != scope[1] {
        return Err((
            403,
            "SignatureDoesNotMatch",
            "Date in Credential scope does not match YYYYMMDD from X-Amz-Date".into(),
        ));
    }
    let names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(incomplete("must sign host and x-amz-date"));
    }
    if let Some(token) = keys.session_token {
        let sent = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        if sent != Some(token) || !names.contains(&"x-amz-security-token") {
            return Err((
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.".into(),
            ));
        }
    }
    let mut canonical = format!("{method}\n{}\n", uri.path());
    let mut query: Vec<&str> = uri
        .query()
        .map(|q| q.split('&').filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    query.sort_unstable();
    canonical.push_str(&query.join("&"));
    canonical.push('\n');
    for name in &names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(incomplete("signs a header that was not sent"));
        }
        canonical.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    canonical.push_str(&format!(
        "\n{signed}\n{}",
        hex::encode(Sha256::digest(body))
    ));
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}/us-east-1/cloudfront/aws4_request\n{}",
        scope[1],
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", keys.secret).as_bytes(),
        scope[1].as_bytes(),
    );
    for part in ["us-east-1", "cloudfront", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if expected != signature {
        return Err((
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's vector 2, verified by this implementation.
    #[test]
    fn accepts_the_spec_vector_and_refuses_a_changed_byte() {
        let uri: Uri = "/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation/I2J0I21PCUYOIK"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", "cloudfront.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/cloudfront/aws4_request, SignedHeaders=host;x-amz-date, Signature=908ac2783de27c3b4e116184d0065e63efc6e3e5949e94c97c744ff36ce966f1".parse().unwrap());
        let keys = Keys {
            access_key_id: "AKIDEXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
            max_skew: Duration::from_secs(900),
        };
        let at = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
        );
        verify(&Method::GET, &uri, &headers, b"", &keys, at).unwrap();
        let err = verify(&Method::GET, &uri, &headers, b"x", &keys, at).unwrap_err();
        assert_eq!(err.1, "SignatureDoesNotMatch");
        let late = at + Duration::from_secs(901);
        assert_eq!(
            verify(&Method::GET, &uri, &headers, b"", &keys, late)
                .unwrap_err()
                .1,
            "RequestExpired"
        );
    }
}
