//! Credentials: `Authorization: Bearer {token}` (an API token), or the legacy
//! `X-Auth-Email` + `X-Auth-Key` (a global API key), when configured.

use axum::http::HeaderMap;

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
