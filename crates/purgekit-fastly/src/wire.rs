//! What goes on the wire: the three calls purgekit sends, their paths, headers and bodies.
//!
//! - one URL: `POST /purge/{host}{path}[?query]` (the URL without its scheme, no body);
//! - up to 256 surrogate keys: `POST /service/{id}/purge` with
//!   `{"surrogate_keys":["k1","k2"]}` (Fastly's CLI routes even one key through this call, so
//!   the key never sits in a path);
//! - everything: `POST /service/{id}/purge_all` (no body).
//!
//! Every call carries `Fastly-Key` and `Accept: application/json`; URL and key purges carry
//! `Fastly-Soft-Purge: 1` unless a hard purge (`delete`) was asked.

use purgekit_core::{Error, Result, Target};

/// The token header.
pub const KEY_HEADER: &str = "fastly-key";

/// The token's own record (`GET`): the credentials check.
pub(crate) const TOKEN_PATH: &str = "/tokens/self";
/// The soft-purge header: mark stale instead of removing.
pub const SOFT_PURGE_HEADER: &str = "fastly-soft-purge";
/// Most surrogate keys in one batch purge.
pub const MAX_KEYS_PER_REQUEST: usize = 256;
/// Most bytes in one surrogate key.
pub const MAX_KEY_BYTES: usize = 1024;

/// The batch scope of each call: one URL, a batch of keys, the whole service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST /purge/{url}`.
    Url,
    /// `POST /service/{id}/purge`.
    Keys,
    /// `POST /service/{id}/purge_all`.
    All,
}

impl Call {
    /// The batch scope naming the call. A single-URL purge's is empty: a million URLs are a
    /// million batches, and an empty scope costs no allocation in each.
    pub const fn scope(self) -> &'static str {
        match self {
            Call::Url => "",
            Call::Keys => "keys",
            Call::All => "all",
        }
    }

    /// The call of a batch scope.
    pub fn from_scope(scope: &str) -> Option<Call> {
        [Call::Url, Call::Keys, Call::All]
            .into_iter()
            .find(|c| c.scope() == scope)
    }
}

/// Whether `b` may stand in a URL path or query as sent: RFC 3986 unreserved, sub-delims,
/// `:`, `@`, `/`, `?` and `%` (the target is normalised: anything else was percent-encoded,
/// so this refuses only what no URL holds).
fn uri_byte(b: u8) -> bool {
    URI_BYTES[usize::from(b)]
}

/// [`uri_byte`] as a table: every URL purged is checked byte by byte, twice (planned, then
/// mapped again to be sent).
const URI_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=:@/?%";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// The single-URL purge's path, `/purge/{host}{path}[?query]`, for URL target `target`.
/// A URL holding a byte no request line may carry is refused, naming it.
pub fn url_path(target: &Target) -> Result<String> {
    let value = target.value();
    // A URL target is normalised: its scheme is `https` or `http`, in lower case.
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .unwrap_or_else(|| value.split_once("://").map_or(value, |(_, rest)| rest));
    if let Some(bad) = rest.bytes().find(|b| !uri_byte(*b)) {
        return Err(Error::invalid(
            value,
            format!(
                "holds `{}`, which Fastly's single-URL purge cannot carry in its path; \
                 percent-encode it",
                char::from(bad).escape_default()
            ),
        ));
    }
    let mut path = String::with_capacity(7 + rest.len());
    path.push_str("/purge/");
    path.push_str(rest);
    Ok(path)
}

/// Checks a surrogate key as Fastly reads keys: 1 to 1,024 bytes of printable ASCII
/// (`0x21`–`0x7E`), so no spaces.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(
            format!("tag:{key}"),
            format!(
                "a Fastly surrogate key is 1 to {MAX_KEY_BYTES} bytes; this one is {}",
                key.len()
            ),
        ));
    }
    if let Some(c) = key.chars().find(|c| !matches!(c, '\x21'..='\x7e')) {
        return Err(Error::invalid(
            format!("tag:{key}"),
            format!(
                "a Fastly surrogate key is printable ASCII without spaces; `{}` is not",
                c.escape_default()
            ),
        ));
    }
    Ok(())
}

/// Bytes a key adds to the batch body: the key as a JSON string and its comma.
pub fn key_bytes(key: &str) -> usize {
    json_string_len(key) + 1
}

/// The batch body's bytes without keys: `{"surrogate_keys":[]}`.
pub const KEYS_ENVELOPE_BYTES: usize = 21;

fn json_string_len(s: &str) -> usize {
    2 + s.len() + s.bytes().filter(|b| matches!(b, b'"' | b'\\')).count()
}

/// `{"surrogate_keys":["k1","k2"]}`.
pub fn keys_body<'a>(keys: impl Iterator<Item = &'a str>, bytes: usize) -> Vec<u8> {
    let mut body = String::with_capacity(bytes);
    body.push_str("{\"surrogate_keys\":[");
    for (i, key) in keys.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push('"');
        for c in key.chars() {
            if matches!(c, '"' | '\\') {
                body.push('\\');
            }
            body.push(c);
        }
        body.push('"');
    }
    body.push_str("]}");
    body.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_byte_table_is_its_definition() {
        for b in 0..=255u8 {
            let defined = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b);
            assert_eq!(uri_byte(b), defined, "byte {b}");
        }
    }

    #[test]
    fn url_paths_drop_the_scheme_and_keep_the_query() {
        let t = Target::url("https://www.example.com/css/site.css?v=2").unwrap();
        assert_eq!(
            url_path(&t).unwrap(),
            "/purge/www.example.com/css/site.css?v=2"
        );
        let t = Target::url("http://www.example.com:8080/").unwrap();
        assert_eq!(url_path(&t).unwrap(), "/purge/www.example.com:8080/");
    }

    #[test]
    fn keys_are_printable_ascii_up_to_1024_bytes() {
        assert!(check_key("product-62952").is_ok());
        assert!(check_key(&"k".repeat(1024)).is_ok());
        let e = check_key(&"k".repeat(1025)).unwrap_err().to_string();
        assert!(e.contains("1025") && e.contains("1024"), "{e}");
        assert!(check_key("caf\u{e9}").is_err());
    }

    #[test]
    fn the_body_escapes_quotes_and_counts_its_bytes() {
        let keys = ["a\"b", "c\\d", "e"];
        let bytes = KEYS_ENVELOPE_BYTES + keys.iter().map(|k| key_bytes(k)).sum::<usize>() - 1;
        let body = keys_body(keys.into_iter(), bytes);
        assert_eq!(body, br#"{"surrogate_keys":["a\"b","c\\d","e"]}"#);
        assert_eq!(body.len(), bytes);
    }
}
