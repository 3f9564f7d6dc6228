//! Verifying `X-LLNW-Security-*`: the principal, the timestamp's age and the token, recomputed
//! over the URL the request was actually called on.

use crate::auth::{Authenticator, Principal};
use axum::http::request::Parts;
use axum::response::Response;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::ApiError;

/// Who may sign, and how old a timestamp may be.
pub(crate) struct Verifier<'a> {
    pub username: &'a str,
    /// The hex-decoded shared key.
    pub key: &'a [u8],
    pub max_age: Duration,
    /// The scheme the emulator is reached by (`http`; `https` behind a TLS proxy).
    pub scheme: &'a str,
}

/// A refusal: the status and the error body.
pub(crate) type Refusal = (StatusCode, ApiError);

impl Authenticator for super::LimelightEmulator {
    type Refusal = Refusal;

    fn verify(&self, parts: &Parts, body: &[u8]) -> Result<Principal, Refusal> {
        let c = &self.shared.config;
        let verifier = Verifier {
            username: &c.username,
            key: &self.shared.key,
            max_age: c.max_timestamp_age,
            scheme: "http",
        };
        verifier.verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
            SystemTime::now(),
        )?;
        Ok(Principal(c.username.clone()))
    }

    /// SmartPurge's error JSON (`1024 user authentication failed`, 401; 400 for a timestamp
    /// that is not a number).
    fn refuse(&self, (status, refusal): Refusal) -> Response {
        super::error(status, refusal)
    }
}

fn unauthenticated(description: impl Into<String>) -> Refusal {
    (
        StatusCode::UNAUTHORIZED,
        ApiError::new(
            1024,
            "user authentication failed",
            description,
            "user authentication",
        ),
    )
}

impl Verifier<'_> {
    /// Checks one request; `now` is the wall clock (timestamps are wall-clock milliseconds).
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), Refusal> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let principal = header("x-llnw-security-principal")
            .ok_or_else(|| unauthenticated("The X-LLNW-Security-Principal header is missing."))?;
        if principal != self.username {
            return Err(unauthenticated(format!(
                "The user {principal} could not be authenticated."
            )));
        }
        let raw_ts = header("x-llnw-security-timestamp")
            .ok_or_else(|| unauthenticated("The X-LLNW-Security-Timestamp header is missing."))?;
        let ts: u64 = raw_ts.parse().map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                ApiError::new(
                    1010,
                    "invalid timestamp",
                    format!(
                        "The X-LLNW-Security-Timestamp request header value {raw_ts} is invalid. \
                         The required type is integer."
                    ),
                    "security timestamp",
                ),
            )
        })?;
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if now_ms.abs_diff(ts) > self.max_age.as_millis() as u64 {
            return Err(unauthenticated(format!(
                "The message has expired: timestamp {ts} is more than {} s from the server's \
                 time {now_ms}.",
                self.max_age.as_secs()
            )));
        }
        let token = header("x-llnw-security-token")
            .ok_or_else(|| unauthenticated("The X-LLNW-Security-Token header is missing."))?;
        let host = header("host").ok_or_else(|| unauthenticated("No Host header."))?;
        let url = format!("{}://{host}{}", self.scheme, uri.path());
        let data = [
            method.as_str().as_bytes(),
            url.as_bytes(),
            uri.query().unwrap_or("").as_bytes(),
            ts.to_string().as_bytes(),
            body,
        ]
        .concat();
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key).expect("HMAC takes any key length");
        mac.update(&data);
        let valid = hex::decode(token).is_ok_and(|t| mac.verify_slice(&t).is_ok());
        if !valid {
            return Err((
                StatusCode::UNAUTHORIZED,
                ApiError::new(
                    1026,
                    "invalid token",
                    "The value in the X-LLNW-Security-Token request header is invalid.",
                    "security token",
                ),
            ));
        }
        Ok(())
    }
}

/// The token a client would send, for the emulator's own tests and examples.
pub fn sign(key: &[u8], method: &str, url: &str, timestamp_ms: u64, body: &[u8]) -> String {
    let (before, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(method.as_bytes());
    mac.update(before.as_bytes());
    mac.update(query.as_bytes());
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_vectors_verify() {
        let key = hex::decode("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
            .unwrap();
        let ts = 1_415_994_226_253;
        let body = br#"{"patterns":[{"pattern":"http://*.example.com/images/*","evict":false,"exact":false,"incqs":false}]}"#;
        let base = "https://apis.llnw.com/purge/v1/account/example/requests";
        assert_eq!(
            sign(&key, "POST", base, ts, body),
            "e75123b6b59fb5bea1e9923403c67eba28a1c2997862291ad1a4edb07c2a0f95"
        );
        assert_eq!(
            sign(&key, "GET", &format!("{base}?limit=10&offset=0"), ts, b""),
            "0a8e3835a79c3a74bcb58c46dc8b9d8316a953472fcc9d551b837444daae5869"
        );
        let verifier = Verifier {
            username: "exampleuser",
            key: &key,
            max_age: Duration::from_secs(300),
            scheme: "https",
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", "apis.llnw.com".parse().unwrap());
        headers.insert("x-llnw-security-principal", "exampleuser".parse().unwrap());
        headers.insert("x-llnw-security-timestamp", ts.to_string().parse().unwrap());
        headers.insert(
            "x-llnw-security-token",
            "1b751d42fdc0cba78edd0322ae621ebcaddc5b0b7c0892e45fbd07dd5c5e70cc"
                .parse()
                .unwrap(),
        );
        let uri: Uri = "/purge/v1/account/example/requests/8c1a86546c3611e49c633a03000021e9"
            .parse()
            .unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ts + 299_000);
        assert!(
            verifier
                .verify(&Method::GET, &uri, &headers, b"", at)
                .is_ok()
        );
        let late = SystemTime::UNIX_EPOCH + Duration::from_millis(ts + 301_000);
        let (status, e) = verifier
            .verify(&Method::GET, &uri, &headers, b"", late)
            .unwrap_err();
        assert_eq!((status, e.code), (StatusCode::UNAUTHORIZED, 1024));
        let (_, e) = verifier
            .verify(&Method::POST, &uri, &headers, b"", at)
            .unwrap_err();
        assert_eq!(e.code, 1026, "the method is signed");
        headers.insert("host", "apis.llnw.com:8443".parse().unwrap());
        let (_, e) = verifier
            .verify(&Method::GET, &uri, &headers, b"", at)
            .unwrap_err();
        assert_eq!(e.code, 1026, "the URL called on is signed");
    }
}
