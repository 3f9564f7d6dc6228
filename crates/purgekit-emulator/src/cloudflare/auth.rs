//! Credentials: `Authorization: Bearer {token}` (an API token), or the legacy
//! `X-Auth-Email` + `X-Auth-Key` (a global API key), when configured.

use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;

use crate::auth::{Authenticator, Principal};

/// Why a request is refused: (HTTP status, Cloudflare error code, message).
pub(super) type Refusal = (u16, i64, String);

/// Compares without stopping at the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get(name).map(|v| v.as_bytes())
}

/// Checks the request's credentials against `token` and the optional legacy `(email, key)`.
/// Every refusal is code 10000 `Authentication error`; nothing sent is echoed.
pub(super) fn check(
    headers: &HeaderMap,
    token: &str,
    legacy: Option<(&str, &str)>,
) -> Result<(), Refusal> {
    if let Some(value) = header(headers, "authorization") {
        let ok = value
            .strip_prefix(b"Bearer ")
            .is_some_and(|given| same(given, token.as_bytes()));
        return if ok {
            Ok(())
        } else {
            Err((403, 10000, "Authentication error".into()))
        };
    }
    if let (Some(email), Some(key)) = (
        header(headers, "x-auth-email"),
        header(headers, "x-auth-key"),
    ) {
        return match legacy {
            Some((e, k)) if same(email, e.as_bytes()) && same(key, k.as_bytes()) => Ok(()),
            _ => Err((403, 10000, "Authentication error".into())),
        };
    }
    Err((401, 10000, "Authentication error".into()))
}

/// Cloudflare's refusal: the error envelope (code 10000) with the `Ratelimit` headers every
/// answer carries.
impl Authenticator for super::CloudflareEmulator {
    type Refusal = Refusal;

    fn verify(&self, parts: &Parts, _body: &[u8]) -> Result<Principal, Refusal> {
        let c = self.config();
        let legacy = c.legacy_key.as_ref().map(|(e, k)| (e.as_str(), k.as_str()));
        check(&parts.headers, &c.api_token, legacy)?;
        let who = match parts.headers.get("x-auth-email") {
            Some(email) if !parts.headers.contains_key("authorization") => {
                String::from_utf8_lossy(email.as_bytes()).into_owned()
            }
            _ => "api-token".to_owned(),
        };
        Ok(Principal(who))
    }

    fn refuse(&self, refusal: Refusal) -> Response {
        super::refuse(&mut self.ledger(), refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens_and_legacy_keys() {
        assert!(check(&headers(&[("authorization", "Bearer t")]), "t", None).is_ok());
        assert_eq!(
            check(&headers(&[("authorization", "Bearer x")]), "t", None)
                .unwrap_err()
                .1,
            10000
        );
        assert_eq!(
            check(&headers(&[("authorization", "t")]), "t", None)
                .unwrap_err()
                .0,
            403
        );
        assert_eq!(check(&HeaderMap::new(), "t", None).unwrap_err().0, 401);
        let legacy = headers(&[("x-auth-email", "a@example.com"), ("x-auth-key", "k")]);
        assert!(check(&legacy, "t", Some(("a@example.com", "k"))).is_ok());
        assert!(check(&legacy, "t", None).is_err());
    }
}
