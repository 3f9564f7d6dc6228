//! The MPA (Media Portal Authentication) signature, as pure functions.
//!
//! String to sign: `Date + "\n" + RelativePath + "\n" + Content-Type + "\n" + VERB + "\n" + Content-MD5`,
//! with no trailing newline; purgekit sends no `Content-MD5` header and signs `""` for it
//! (PROVIDER-NOTES.md). The signature is the padded base64 of HMAC-SHA1 keyed with the secret's
//! raw bytes.

use std::time::SystemTime;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use purgekit_core::Secret;
use sha1::Sha1;

/// The `Date` header value and signed date for `now`: RFC 1123 / IMF-fixdate in GMT,
/// e.g. `Tue, 20 Jul 2010 08:49:37 GMT`.
pub fn mpa_date(now: SystemTime) -> String {
    httpdate::fmt_http_date(now)
}

/// The string an MPA signature covers.
///
/// `relative_path` is the request path exactly as sent, with its leading `/` and without the
/// query string; `content_md5` is the `Content-MD5` header value, `""` when the header is absent.
pub fn string_to_sign(
    date: &str,
    relative_path: &str,
    content_type: &str,
    verb: &str,
    content_md5: &str,
) -> String {
    format!("{date}\n{relative_path}\n{content_type}\n{verb}\n{content_md5}")
}

/// The MPA signature of `string_to_sign`: base64 (padded) of HMAC-SHA1 keyed with the secret.
pub fn signature(secret: &Secret, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts a key of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value: `MPA {keyId}:{signature}`.
pub fn authorization(key_id: &str, signature: &str) -> String {
    format!("MPA {key_id}:{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const DATE: &str = "Tue, 20 Jul 2010 08:49:37 GMT";
    const POST_PATH: &str = "/invalidations/v1.0/12345/BBBN56789/cdn.exampleni.com";

    fn secret() -> Secret {
        Secret::new("secret")
    }

    #[test]
    fn date_is_rfc1123_gmt() {
        // 2010-07-20T08:49:37Z
        let now = UNIX_EPOCH + Duration::from_secs(1_279_615_777);
        assert_eq!(mpa_date(now), DATE);
    }

    #[test]
    fn vector_post_without_content_md5() {
        let sts = string_to_sign(DATE, POST_PATH, "text/xml", "POST", "");
        assert_eq!(
            sts,
            "Tue, 20 Jul 2010 08:49:37 GMT\n\
             /invalidations/v1.0/12345/BBBN56789/cdn.exampleni.com\n\
             text/xml\n\
             POST\n"
        );
        assert_eq!(signature(&secret(), &sts), "BL0TrvhAYloZuvmVZdhnimDHrBA=");
    }

    #[test]
    fn vector_post_with_content_md5() {
        let sts = string_to_sign(
            DATE,
            POST_PATH,
            "text/xml",
            "POST",
            "GGomH4jhzRt0q+36GAJssA==",
        );
        assert_eq!(
            sts,
            "Tue, 20 Jul 2010 08:49:37 GMT\n\
             /invalidations/v1.0/12345/BBBN56789/cdn.exampleni.com\n\
             text/xml\n\
             POST\n\
             GGomH4jhzRt0q+36GAJssA=="
        );
        assert_eq!(signature(&secret(), &sts), "1NW8fbZ5pLqVovR0gqasyJH85tY=");
    }

    #[test]
    fn vector_get_key() {
        let sts = string_to_sign(DATE, "/key/v1.0", "text/xml", "GET", "");
        assert_eq!(
            sts,
            "Tue, 20 Jul 2010 08:49:37 GMT\n/key/v1.0\ntext/xml\nGET\n"
        );
        assert_eq!(signature(&secret(), &sts), "dLn120QNhWrVUWxCV08hJSZrVVk=");
    }

    #[test]
    fn authorization_header_form() {
        assert_eq!(authorization("12345", "abc="), "MPA 12345:abc=");
    }
}
