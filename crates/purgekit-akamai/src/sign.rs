//! EdgeGrid `EG1-HMAC-SHA256` request signing, as pure functions: every stage (timestamp,
//! auth prefix, signing key, content hash, canonical headers, data to sign, signature, header)
//! is its own function, so each is pinned by Akamai's published test vectors on its own.
//!
//! Timestamp and nonce are inputs: nothing here reads a clock or draws a random number.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The scheme name that opens the `Authorization` header.
pub const MONIKER: &str = "EG1-HMAC-SHA256";

/// Bytes of a POST body hashed when no `max_body` is configured (Akamai's libraries' default).
pub const DEFAULT_MAX_BODY: usize = 131_072;

/// The EdgeGrid timestamp of `at`: UTC, `yyyyMMddTHH:mm:ss+0000`, always the literal `+0000`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let at = UNIX_EPOCH + Duration::from_secs(1_395_430_461);
/// assert_eq!(purgekit_akamai::sign::timestamp(at), "20140321T19:34:21+0000");
/// ```
pub fn timestamp(at: SystemTime) -> String {
    let t = purgekit_core::UtcTime::from(at);
    format!(
        "{:04}{:02}{:02}T{:02}:{:02}:{:02}+0000",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `EG1-HMAC-SHA256 client_token=…;access_token=…;timestamp=…;nonce=…;`: one space after the
/// moniker, this field order, and a trailing semicolon. It is signed, then the header is this
/// text followed by `signature=…`.
pub fn auth_prefix(client_token: &str, access_token: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "{MONIKER} client_token={client_token};access_token={access_token};timestamp={timestamp};nonce={nonce};"
    )
}

/// The signing key: Base64 of HMAC-SHA256 keyed with the client secret's UTF-8 bytes as written
/// (not Base64-decoded) over the timestamp. Used as Base64 **text** by [`signature`].
pub fn signing_key(client_secret: &str, timestamp: &str) -> String {
    base64_hmac(client_secret.as_bytes(), timestamp.as_bytes())
}

/// The content hash: for `POST` only, Base64 of SHA-256 over the body truncated to `max_body`
/// bytes; empty for an empty body and for every other method (PUT and PATCH are not hashed).
pub fn content_hash(method: &str, body: &[u8], max_body: usize) -> String {
    if !method.eq_ignore_ascii_case("POST") || body.is_empty() {
        return String::new();
    }
    let signed = &body[..body.len().min(max_body)];
    STANDARD.encode(Sha256::digest(signed))
}

/// The canonical headers: for each name of `headers_to_sign`, in that order, that `headers`
/// carries (names compared case-insensitively; the first value counts), `lowercase(name):value`
/// with the value trimmed and every run of white space collapsed to one space; joined with TAB.
/// Headers not listed are ignored.
pub fn canonical_headers(headers_to_sign: &[&str], headers: &[(&str, &str)]) -> String {
    let mut out = Vec::new();
    for name in headers_to_sign {
        if let Some((_, value)) = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            out.push(format!("{}:{value}", name.to_ascii_lowercase()));
        }
    }
    out.join("\t")
}

/// What is signed: the TAB-join of `METHOD` (upper-cased), scheme, host, path with `?query`
/// when there is one (raw, as sent), canonical headers, content hash and the auth prefix.
/// Empty fields still produce their TAB.
pub fn data_to_sign(
    method: &str,
    scheme: &str,
    host: &str,
    path_and_query: &str,
    canonical_headers: &str,
    content_hash: &str,
    auth_prefix: &str,
) -> String {
    [
        &method.to_ascii_uppercase(),
        scheme,
        host,
        path_and_query,
        canonical_headers,
        content_hash,
        auth_prefix,
    ]
    .join("\t")
}

/// The signature: Base64 of HMAC-SHA256 keyed with the signing key's Base64 **text** over the
/// data to sign.
pub fn signature(signing_key: &str, data_to_sign: &str) -> String {
    base64_hmac(signing_key.as_bytes(), data_to_sign.as_bytes())
}

/// The `Authorization` header value: the auth prefix followed by `signature=…`.
pub fn authorization(auth_prefix: &str, signature: &str) -> String {
    format!("{auth_prefix}signature={signature}")
}

/// The credentials of one EdgeGrid API client.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// `client_token`.
    pub client_token: &'a str,
    /// `client_secret`, as written in `.edgerc` (never decoded).
    pub client_secret: &'a str,
    /// `access_token`.
    pub access_token: &'a str,
    /// Most body bytes hashed (`max_body`, [`DEFAULT_MAX_BODY`] by default).
    pub max_body: usize,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_token", &self.client_token)
            .field("client_secret", &purgekit_core::REDACTED)
            .field("access_token", &self.access_token)
            .field("max_body", &self.max_body)
            .finish()
    }
}

/// The request parts EdgeGrid signs.
#[derive(Debug, Clone, Copy)]
pub struct Signable<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// `https` (or `http` against a local emulator).
    pub scheme: &'a str,
    /// The `Host` header value.
    pub host: &'a str,
    /// The path with `?query` when there is one, exactly as sent.
    pub path_and_query: &'a str,
    /// The request's headers (only those in `headers_to_sign` are signed).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

/// The full `Authorization` header for `request`, signed with `credentials` at `timestamp`
/// with `nonce`: every stage above, in order.
///
/// ```
/// use purgekit_akamai::sign::{Credentials, Signable, authorization_for};
/// let credentials = Credentials {
///     client_token: "akab-client-token-xxx-xxxxxxxxxxxxxxxx",
///     client_secret: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=",
///     access_token: "akab-access-token-xxx-xxxxxxxxxxxxxxxx",
///     max_body: 2048,
/// };
/// let request = Signable {
///     method: "GET",
///     scheme: "https",
///     host: "akaa-baseurl-xxxxxxxxxxx-xxxxxxxxxxxxx.luna.akamaiapis.net",
///     path_and_query: "/",
///     headers: &[],
///     body: b"",
/// };
/// let header = authorization_for(&credentials, &request, &[], "20140321T19:34:21+0000",
///     "nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
/// assert!(header.ends_with("signature=tL+y4hxyHxgWVD30X3pWnGKHcPzmrIF+LThiAOhMxYU="));
/// ```
pub fn authorization_for(
    credentials: &Credentials<'_>,
    request: &Signable<'_>,
    headers_to_sign: &[&str],
    timestamp: &str,
    nonce: &str,
) -> String {
    let prefix = auth_prefix(
        credentials.client_token,
        credentials.access_token,
        timestamp,
        nonce,
    );
    let data = data_to_sign(
        request.method,
        request.scheme,
        request.host,
        request.path_and_query,
        &canonical_headers(headers_to_sign, request.headers),
        &content_hash(request.method, request.body, credentials.max_body),
        &prefix,
    );
    let key = signing_key(credentials.client_secret, timestamp);
    authorization(&prefix, &signature(&key, &data))
}

/// A fresh nonce in the UUID v4 text form Akamai's libraries send. Random (not
/// cryptographically: a nonce must be unique, not secret); the signing functions take it as an
/// input.
pub fn nonce() -> String {
    let (a, b) = (fastrand::u64(..), fastrand::u64(..));
    let a = (a & !0xf000) | 0x4000; // version 4
    let b = (b & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

fn base64_hmac(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests;
