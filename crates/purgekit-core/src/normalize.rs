//! The one rule by which URL and pattern targets are written before any provider sees them, so
//! that deduplication, mapping and every provider agree on what one URL is:
//!
//! * the scheme and host are lower-cased, and a Unicode host is written in IDNA punycode
//!   (`Bücher.example` → `xn--bcher-kva.example`; a label holding `*` must be ASCII);
//! * in the path and query, every percent-encoding is written with upper-case hex
//!   (`%c3%a9` → `%C3%A9`) and every non-ASCII character is percent-encoded as UTF-8
//!   (`é` → `%C3%A9`); nothing is ever decoded, so `%2F` stays `%2F` and `/` stays `/`;
//! * user information (`user:password@`) is refused, never echoed: credentials in a purge
//!   target are never wanted.
//!
//! Both forms name the same resource (RFC 3986 §6.2.2.1, RFC 3987 §3.1); the report shows the
//! normalised one.

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// Refuses a URL (or pattern) whose authority carries user information, showing it with the
/// user information replaced by `…` so a password never reaches an error message.
pub(crate) fn refuse_credentials(text: &str) -> Result<()> {
    let Some((start, end)) = authority(text) else {
        return Ok(());
    };
    let Some(at) = text[start..end].rfind('@') else {
        return Ok(());
    };
    let shown: String = format!("{}…{}", &text[..start], &text[start + at..])
        .chars()
        .take(200)
        .collect();
    Err(Error::invalid(
        shown,
        "a target URL must not carry credentials (`user:password@`); purge the URL without them",
    ))
}

/// The byte range of the authority: after the scheme's `:` and any slashes, up to the first
/// `/`, `\`, `?` or `#` (URL parsers read `\` as `/` in http URLs).
fn authority(text: &str) -> Option<(usize, usize)> {
    let colon = text.find(':')?;
    let start = colon
        + 1
        + text[colon + 1..]
            .bytes()
            .take_while(|b| matches!(b, b'/' | b'\\'))
            .count();
    let end = text[start..]
        .find(['/', '\\', '?', '#'])
        .map_or(text.len(), |i| start + i);
    Some((start, end))
}

/// `text` (an http(s) URL or pattern already checked, without user information) under the rule
/// above; `None` when it already follows it (the common case: nothing is allocated).
pub(crate) fn normalize(text: &str) -> Result<Option<String>> {
    let Some((start, end)) = authority(text) else {
        return Ok(None);
    };
    let scheme = &text[..start];
    let authority = &text[start..end];
    let rest = &text[end..];
    let (host, port) = split_port(authority);
    let scheme_ok = !scheme.bytes().any(|b| b.is_ascii_uppercase());
    let host_ok = host.is_ascii() && !host.bytes().any(|b| b.is_ascii_uppercase());
    let rest_ok = rest.is_ascii() && !has_lower_hex_escape(rest);
    if scheme_ok && host_ok && rest_ok {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&scheme.to_ascii_lowercase());
    out.push_str(&ascii_host(host, text)?);
    out.push_str(port);
    percent_normalize_into(&mut out, rest);
    Ok(Some(out))
}

/// The host and the `:port` after it (empty when none); a bracketed IPv6 host is kept whole.
fn split_port(authority: &str) -> (&str, &str) {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        match authority.rfind(':') {
            Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => i,
            _ => authority.len(),
        }
    };
    authority.split_at(host_end)
}

/// The host lower-cased, Unicode labels in punycode. Labels holding `*` (patterns) must be
/// ASCII: a wildcard cannot be converted.
fn ascii_host(host: &str, whole: &str) -> Result<String> {
    if host.is_ascii() {
        return Ok(host.to_ascii_lowercase());
    }
    let mut out = String::with_capacity(host.len() + 8);
    for (i, label) in host.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if label.is_ascii() {
            out.push_str(&label.to_ascii_lowercase());
        } else if label.contains('*') {
            return Err(Error::invalid(
                whole,
                "a host label with `*` must be ASCII (write its other labels in punycode)",
            ));
        } else {
            let ascii = idna::domain_to_ascii(label).map_err(|_| {
                Error::invalid(
                    whole,
                    format!("the host label `{label}` is not a valid IDNA name"),
                )
            })?;
            out.push_str(&ascii);
        }
    }
    Ok(out)
}

fn has_lower_hex_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && bytes.get(i + 1..i + 3).is_some_and(|h| {
                h.iter().all(u8::is_ascii_hexdigit) && h.iter().any(u8::is_ascii_lowercase)
            })
    })
}

/// Appends `text` with escapes upper-cased and non-ASCII bytes percent-encoded.
fn percent_normalize_into(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            out.push('%');
            out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
            out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
            i += 3;
        } else if b.is_ascii() {
            out.push(char::from(b));
            i += 1;
        } else {
            let _ = write!(out, "%{b:02X}");
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> String {
        normalize(text).unwrap().unwrap_or_else(|| text.to_owned())
    }

    #[test]
    fn one_spelling_per_url() {
        let want = "https://xn--bcher-kva.example/%C3%A9/a%2Fb?q=%7E&r=%C3%A9";
        for given in [
            "HTTPS://Bücher.Example/é/a%2Fb?q=%7e&r=é",
            "https://xn--bcher-kva.example/%c3%a9/a%2fb?q=%7E&r=%c3%A9",
            want,
        ] {
            assert_eq!(norm(given), want, "{given}");
        }
        assert_eq!(
            normalize(want).unwrap(),
            None,
            "already normal: no allocation"
        );
        // Nothing is decoded, ports and IPv6 hosts are kept, a stray `%` stays.
        assert_eq!(
            norm("http://A.example:8080/%41%zz%"),
            "http://a.example:8080/%41%zz%"
        );
        assert_eq!(norm("http://[::1]:80/É"), "http://[::1]:80/%C3%89");
        assert_eq!(
            norm("https://*.Bücher.example/*"),
            "https://*.xn--bcher-kva.example/*"
        );
        assert!(normalize("https://*ü.example/").is_err());
    }

    #[test]
    fn credentials_are_refused_without_echoing_them() {
        for given in [
            "https://user:hunter2@a.example/x",
            "https://hunter2@a.example/x",
            "https:user:hunter2@a.example/x",
            "https://u:hunter2@*.example.com/*",
            "https://u:hunter2@a.example\\x",
            "https://u:hunter2@b@a.example/x",
        ] {
            let e = refuse_credentials(given).unwrap_err();
            let shown = e.to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("credentials"), "{shown}");
        }
        assert!(refuse_credentials("https://a.example/x@y?z=@").is_ok());
    }
}
