//! The SmartPurge request token: HMAC-SHA256 over method, URL, query, timestamp and body.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The user name header.
pub const PRINCIPAL_HEADER: &str = "X-LLNW-Security-Principal";
/// The Unix-milliseconds timestamp header.
pub const TIMESTAMP_HEADER: &str = "X-LLNW-Security-Timestamp";
/// The token header.
pub const TOKEN_HEADER: &str = "X-LLNW-Security-Token";

/// The bytes the token is computed over: `METHOD + URL up to (not including) the first '?' +
/// the query string without '?' + timestamp (Unix ms, decimal) + body`, with no separators.
///
/// `url` is the full URL exactly as sent (`scheme://host[:non-default port]/path?query`).
///
/// ```
/// let s = purgekit_limelight::string_to_sign(
///     "GET", "https://apis.llnw.com/purge/v1/account/example/requests?limit=10&offset=0",
///     1415994226253, b"");
/// assert_eq!(s, b"GEThttps://apis.llnw.com/purge/v1/account/example/requestslimit=10&offset=01415994226253");
/// ```
pub fn string_to_sign(method: &str, url: &str, timestamp_ms: u64, body: &[u8]) -> Vec<u8> {
    parts(method, url, &timestamp_ms.to_string(), body).concat()
}

/// The pieces [`string_to_sign`] concatenates, in order: method, URL before the first `?`, the
/// query, the timestamp text, the body.
fn parts<'a>(method: &'a str, url: &'a str, timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 5] {
    let (before, query) = url.split_once('?').unwrap_or((url, ""));
    [
        method.as_bytes(),
        before.as_bytes(),
        query.as_bytes(),
        timestamp.as_bytes(),
        body,
    ]
}

/// The token: lowercase hex of HMAC-SHA256 keyed with the hex-DECODED shared key over
/// [`string_to_sign`]'s bytes.
pub fn token(key: &[u8], string_to_sign: &[u8]) -> String {
    token_over(key, &[string_to_sign])
}

/// The token of a request, the string to sign fed to the HMAC piece by piece rather than copied
/// (the body is most of it). `timestamp` is the Unix-ms decimal text sent in
/// [`TIMESTAMP_HEADER`]. Equal to `token(key, &string_to_sign(method, url, ts, body))`.
pub(crate) fn request_token(
    key: &[u8],
    method: &str,
    url: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    token_over(key, &parts(method, url, timestamp, body))
}

/// Lowercase hex of HMAC-SHA256 keyed with `key` over the concatenation of `pieces`.
fn token_over(key: &[u8], pieces: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for piece in pieces {
        mac.update(piece);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const TS: u64 = 1415994226253;

    fn key() -> Vec<u8> {
        hex::decode(KEY).unwrap()
    }

    #[test]
    fn vector_post_purge_request() {
        let body = br#"{"patterns":[{"pattern":"http://*.example.com/images/*","evict":false,"exact":false,"incqs":false}]}"#;
        let sts = string_to_sign(
            "POST",
            "https://apis.llnw.com/purge/v1/account/example/requests",
            TS,
            body,
        );
        assert_eq!(
            String::from_utf8(sts.clone()).unwrap(),
            concat!(
                "POSThttps://apis.llnw.com/purge/v1/account/example/requests1415994226253",
                r#"{"patterns":[{"pattern":"http://*.example.com/images/*","evict":false,"exact":false,"incqs":false}]}"#
            )
        );
        assert_eq!(
            token(&key(), &sts),
            "e75123b6b59fb5bea1e9923403c67eba28a1c2997862291ad1a4edb07c2a0f95"
        );
    }

    #[test]
    fn vector_get_list_with_query() {
        let sts = string_to_sign(
            "GET",
            "https://apis.llnw.com/purge/v1/account/example/requests?limit=10&offset=0",
            TS,
            b"",
        );
        assert_eq!(
            String::from_utf8(sts.clone()).unwrap(),
            "GEThttps://apis.llnw.com/purge/v1/account/example/requestslimit=10&offset=01415994226253"
        );
        assert_eq!(
            token(&key(), &sts),
            "0a8e3835a79c3a74bcb58c46dc8b9d8316a953472fcc9d551b837444daae5869"
        );
    }

    #[test]
    fn vector_get_by_id() {
        let sts = string_to_sign(
            "GET",
            "https://apis.llnw.com/purge/v1/account/example/requests/8c1a86546c3611e49c633a03000021e9",
            TS,
            b"",
        );
        assert_eq!(
            String::from_utf8(sts.clone()).unwrap(),
            "GEThttps://apis.llnw.com/purge/v1/account/example/requests/8c1a86546c3611e49c633a03000021e91415994226253"
        );
        assert_eq!(
            token(&key(), &sts),
            "1b751d42fdc0cba78edd0322ae621ebcaddc5b0b7c0892e45fbd07dd5c5e70cc"
        );
    }

    #[test]
    fn the_request_token_equals_the_token_over_the_string_to_sign() {
        let body = br#"{"patterns":[{"pattern":"http://*.example.com/images/*","evict":false,"exact":false,"incqs":false}]}"#;
        for (method, url, body) in [
            (
                "POST",
                "https://apis.llnw.com/purge/v1/account/example/requests",
                &body[..],
            ),
            (
                "GET",
                "https://apis.llnw.com/purge/v1/account/example/requests?limit=10&offset=0",
                b"",
            ),
            ("GET", "https://h.example/p?a=1?b=2", b"x"),
        ] {
            let expected = token(&key(), &string_to_sign(method, url, TS, body));
            assert_eq!(
                request_token(&key(), method, url, &TS.to_string(), body),
                expected
            );
        }
        assert_eq!(
            request_token(
                &key(),
                "POST",
                "https://apis.llnw.com/purge/v1/account/example/requests",
                "1415994226253",
                body
            ),
            "e75123b6b59fb5bea1e9923403c67eba28a1c2997862291ad1a4edb07c2a0f95"
        );
    }

    #[test]
    fn the_key_is_hex_decoded_not_used_as_text() {
        let sts = string_to_sign("GET", "https://apis.llnw.com/x", TS, b"");
        assert_ne!(token(KEY.as_bytes(), &sts), token(&key(), &sts));
    }
}
