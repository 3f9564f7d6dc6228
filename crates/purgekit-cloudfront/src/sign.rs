//! AWS Signature Version 4 for CloudFront (region `us-east-1`, service `cloudfront`), with the
//! signing time as an input.
//!
//! [`sign`] signs with the `aws-sigv4` crate. [`canonical_request`] and [`string_to_sign`]
//! spell out the first two stages of the same algorithm for the requests this codec builds
//! (`host;x-amz-date[;x-amz-security-token]` signed, as botocore signs these calls), so that a
//! failing vector says which stage differs, and a signature mismatch can be explained.

use std::fmt::Write as _;
use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use purgekit_core::http::{HeaderName, HeaderValue};
use purgekit_core::{Error, HttpRequest, Result, Secret};
use sha2::{Digest, Sha256};

/// The signing region of CloudFront's global endpoint.
pub const REGION: &str = "us-east-1";
/// The signing name of the service.
pub const SERVICE: &str = "cloudfront";
/// The `X-Amz-Date` header.
pub const DATE_HEADER: &str = "x-amz-date";
/// The `X-Amz-Security-Token` header, sent and signed with temporary credentials.
pub const TOKEN_HEADER: &str = "x-amz-security-token";

/// An access key pair, with a session token for temporary credentials. `Debug` shows only the
/// key id.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (not secret: it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .finish()
    }
}

/// Signs `request` at `now`: adds `X-Amz-Date`, `X-Amz-Security-Token` (temporary credentials)
/// and `Authorization`. Headers already on the request are not signed (only `host`, taken from
/// the URI, and the headers added here are), so add unsigned headers before or after alike.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use purgekit_cloudfront::{Credentials, sign};
/// let mut request = purgekit_core::http::Request::get(
///     "https://cloudfront.amazonaws.com/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation/I2J0I21PCUYOIK",
/// ).body(Vec::new()).unwrap();
/// let credentials = Credentials {
///     access_key_id: "AKIDEXAMPLE".into(),
///     secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
///     session_token: None,
/// };
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
/// sign(&mut request, &credentials, now).unwrap();
/// assert!(request.headers()["authorization"].to_str().unwrap().ends_with(
///     "Signature=908ac2783de27c3b4e116184d0065e63efc6e3e5949e94c97c744ff36ce966f1"));
/// ```
pub fn sign(request: &mut HttpRequest, credentials: &Credentials, now: SystemTime) -> Result<()> {
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        credentials.secret_access_key.expose(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        None,
        "purgekit",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(SERVICE)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| Error::protocol(format!("SigV4 parameters: {e}")))?
        .into();
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        std::iter::empty(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| Error::protocol(format!("SigV4 cannot sign {uri}: {e}")))?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| Error::protocol(format!("SigV4 signing failed: {e}")))?
        .into_parts();
    for (name, value) in instructions.headers() {
        let invalid = || Error::protocol(format!("SigV4 produced an invalid `{name}` header"));
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        request.headers_mut().insert(header, value);
    }
    Ok(())
}

/// `yyyymmddTHHMMSSZ`, the `X-Amz-Date` form of `now`.
pub fn amz_date(now: SystemTime) -> String {
    let t = purgekit_core::UtcTime::from(now);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// The canonical request of a request this codec signs, at `now`: method, path, sorted query,
/// `host` and `x-amz-date` (and `x-amz-security-token` when `session_token` is set), the signed
/// header list, and the body's SHA-256.
pub fn canonical_request(
    request: &HttpRequest,
    now: SystemTime,
    session_token: Option<&str>,
) -> String {
    let uri = request.uri();
    let host = match uri.port_u16() {
        Some(port) if !is_default_port(uri.scheme_str(), port) => {
            format!("{}:{port}", uri.host().unwrap_or_default())
        }
        _ => uri.host().unwrap_or_default().to_owned(),
    };
    let mut query: Vec<&str> = uri
        .query()
        .map(|q| q.split('&').filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    query.sort_unstable();
    let mut out = format!(
        "{}\n{}\n{}\nhost:{host}\nx-amz-date:{}\n",
        request.method(),
        uri.path(),
        query.join("&"),
        amz_date(now)
    );
    let mut signed = String::from("host;x-amz-date");
    if let Some(token) = session_token {
        let _ = writeln!(out, "x-amz-security-token:{}", token.trim());
        signed.push_str(";x-amz-security-token");
    }
    let _ = write!(
        out,
        "\n{signed}\n{}",
        hex::encode(Sha256::digest(request.body()))
    );
    out
}

/// The string to sign for `canonical_request` at `now`.
pub fn string_to_sign(canonical_request: &str, now: SystemTime) -> String {
    let date = amz_date(now);
    format!(
        "AWS4-HMAC-SHA256\n{date}\n{}/{REGION}/{SERVICE}/aws4_request\n{}",
        &date[..8],
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn is_default_port(scheme: Option<&str>, port: u16) -> bool {
    matches!((scheme, port), (Some("https"), 443) | (Some("http"), 80))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2015-08-30T12:36:00Z, the vectors' time.
    fn vector_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    const BASE: &str = "https://cloudfront.amazonaws.com/2020-05-31/distribution/EDFDVBD6EXAMPLE";
    const CREATE_BODY: &str = "<InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Paths><Quantity>2</Quantity><Items><Path>/index.html</Path><Path>/images/*</Path></Items></Paths><CallerReference>purgekit-20150830T123600Z</CallerReference></InvalidationBatch>";
    const CREDENTIAL: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/cloudfront/aws4_request, SignedHeaders=host;x-amz-date, Signature=";

    fn request(method: &str, url: &str, body: &str) -> HttpRequest {
        purgekit_core::http::Request::builder()
            .method(method)
            .uri(url)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    /// Each stage of one vector: canonical request, string to sign, Authorization.
    fn check(mut r: HttpRequest, canonical: &str, to_sign_hash: &str, signature: &str) {
        let now = vector_time();
        let creq = canonical_request(&r, now, None);
        if !canonical.is_empty() {
            assert_eq!(creq, canonical, "canonical request");
        }
        let sts = string_to_sign(&creq, now);
        assert_eq!(
            sts,
            format!(
                "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/cloudfront/aws4_request\n{to_sign_hash}"
            ),
            "string to sign"
        );
        sign(&mut r, &credentials(), now).unwrap();
        assert_eq!(r.headers()["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            r.headers()["authorization"],
            format!("{CREDENTIAL}{signature}").as_str(),
            "Authorization"
        );
    }

    #[test]
    fn vector_1_create_invalidation() {
        assert_eq!(CREATE_BODY.len(), 253);
        check(
            request("POST", &format!("{BASE}/invalidation"), CREATE_BODY),
            "POST\n/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation\n\nhost:cloudfront.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n3a79bd8af2dae3dc484400d9fda87d561eee4363dd81648a2a12076e32f3556a",
            "c6ea4d45abc593d1b52021a6d076e8448ef07e10c234400ffcba7a55bb7fa1f4",
            "7120f0bb5a8f7d7252d24e596763ba7448c5e8d5bdf9f7fe42d7ed1cd0021c8d",
        );
    }

    #[test]
    fn vector_2_get_invalidation() {
        check(
            request("GET", &format!("{BASE}/invalidation/I2J0I21PCUYOIK"), ""),
            "GET\n/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation/I2J0I21PCUYOIK\n\nhost:cloudfront.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "a4b7394f4177e2f884f4d1f46e12bd70263abccade80e44cd711a8bba6204787",
            "908ac2783de27c3b4e116184d0065e63efc6e3e5949e94c97c744ff36ce966f1",
        );
    }

    #[test]
    fn vector_3_list_invalidations_with_a_query() {
        let r = request("GET", &format!("{BASE}/invalidation?MaxItems=10"), "");
        let creq = canonical_request(&r, vector_time(), None);
        assert_eq!(creq.lines().nth(2), Some("MaxItems=10"));
        check(
            r,
            "",
            "2bd10ec356ea2df4c603f741280b265dbb7cf4b5d1e4c98e81edb9c708e098ff",
            "b9c4f26cc25a56ddd0d46dc4ac7f89e2895859fef481a1ed9a8fb3c77b8691e5",
        );
    }

    #[test]
    fn a_session_token_is_sent_and_signed() {
        let mut r = request("GET", &format!("{BASE}/invalidation/I1"), "");
        let mut c = credentials();
        c.session_token = Some("FQoGZXIvYXdzEXAMPLE".into());
        sign(&mut r, &c, vector_time()).unwrap();
        assert_eq!(r.headers()[TOKEN_HEADER], "FQoGZXIvYXdzEXAMPLE");
        let auth = r.headers()["authorization"].to_str().unwrap();
        assert!(auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"));
        assert!(!format!("{c:?}").contains("FQoG"));
    }

    #[test]
    fn amz_dates() {
        assert_eq!(amz_date(vector_time()), "20150830T123600Z");
        assert_eq!(amz_date(SystemTime::UNIX_EPOCH), "19700101T000000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 86_399);
        assert_eq!(amz_date(leap), "20000229T235959Z");
    }
}
