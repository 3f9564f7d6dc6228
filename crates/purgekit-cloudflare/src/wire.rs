//! What goes on the wire: `POST /client/v4/zones/{zone}/purge_cache` with exactly one of
//! `files`, `tags`, `hosts`, `prefixes` or `purge_everything`, as JSON.

use purgekit_core::{Error, Result, Target};

/// The token check (`GET`): the credentials check.
pub(crate) const VERIFY_PATH: &str = "/client/v4/user/tokens/verify";

/// The body field of each kind of purge: the batch scope naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `{"files":["https://…"]}`.
    Files,
    /// `{"tags":[…]}`.
    Tags,
    /// `{"hosts":[…]}`.
    Hosts,
    /// `{"prefixes":["host/path/"]}`.
    Prefixes,
    /// `{"purge_everything":true}`.
    Everything,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 5] = [
        Field::Files,
        Field::Tags,
        Field::Hosts,
        Field::Prefixes,
        Field::Everything,
    ];

    /// The body field, also the batch scope.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Files => "files",
            Field::Tags => "tags",
            Field::Hosts => "hosts",
            Field::Prefixes => "prefixes",
            Field::Everything => "purge_everything",
        }
    }

    /// The field of a batch scope.
    pub fn from_scope(scope: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == scope)
    }
}

/// Most characters in one cache tag.
pub const MAX_TAG_CHARS: usize = 1024;
/// Most path separators in one prefix.
pub const MAX_PREFIX_SLASHES: usize = 31;

/// A prefix as Cloudflare takes it: host and path, no scheme (core's `prefix:` already has no
/// query, fragment or wildcard); at most 31 `/` in the path.
pub fn prefix(target: &Target) -> Result<String> {
    let value = target.value();
    let rest = value.split_once("://").map_or(value, |(_, rest)| rest);
    if rest.contains(['?', '#', '*']) {
        return Err(Error::invalid(
            value,
            "a Cloudflare prefix has no query string, fragment or wildcard",
        ));
    }
    let slashes = rest.bytes().filter(|b| *b == b'/').count();
    if slashes > MAX_PREFIX_SLASHES {
        return Err(Error::invalid(
            value,
            format!(
                "a Cloudflare prefix has at most {MAX_PREFIX_SLASHES} path separators; this \
                 one has {slashes}"
            ),
        ));
    }
    Ok(rest.to_owned())
}

/// Checks a cache tag as Cloudflare reads tags: 1 to 1,024 characters of printable ASCII,
/// no spaces.
pub fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS {
        return Err(Error::invalid(
            format!("tag:{tag}"),
            format!("a Cloudflare cache tag is 1 to {MAX_TAG_CHARS} characters"),
        ));
    }
    if let Some(c) = tag.chars().find(|c| !matches!(c, '\x21'..='\x7e')) {
        return Err(Error::invalid(
            format!("tag:{tag}"),
            format!(
                "a Cloudflare cache tag is printable ASCII without spaces; `{}` is not",
                c.escape_default()
            ),
        ));
    }
    Ok(())
}

/// Bytes a value adds to the body: as a JSON string, and its comma.
pub fn value_bytes(value: &str) -> usize {
    3 + value.len()
        + value
            .chars()
            .map(|c| match c {
                '"' | '\\' => 1,
                c if (c as u32) < 0x20 => 5,
                _ => 0,
            })
            .sum::<usize>()
}

fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The body: `{"FIELD":["v1","v2"]}`, or `{"purge_everything":true}`.
pub fn body<'a>(field: Field, values: impl Iterator<Item = &'a str>, bytes: usize) -> Vec<u8> {
    if field == Field::Everything {
        return br#"{"purge_everything":true}"#.to_vec();
    }
    let mut out = String::with_capacity(bytes + 16);
    out.push_str("{\"");
    out.push_str(field.name());
    out.push_str("\":[");
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, v);
    }
    out.push_str("]}");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_lose_the_scheme() {
        let t = Target::prefix("https://www.example.com/foo/").unwrap();
        assert_eq!(prefix(&t).unwrap(), "www.example.com/foo/");
        let deep = format!("https://www.example.com/{}", "a/".repeat(31));
        let e = prefix(&Target::prefix(deep).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("31") && e.contains("32"), "{e}");
    }

    #[test]
    fn bodies_hold_one_field() {
        let b = body(Field::Tags, ["a", "b\"c"].into_iter(), 0);
        assert_eq!(b, br#"{"tags":["a","b\"c"]}"#);
        assert_eq!(
            body(Field::Everything, std::iter::empty(), 0),
            br#"{"purge_everything":true}"#
        );
        assert_eq!(value_bytes("b\"c"), "\"b\\\"c\",".len());
    }

    #[test]
    fn tags_are_printable_ascii() {
        assert!(check_tag("product-1").is_ok());
        assert!(
            check_tag("caf\u{e9}")
                .unwrap_err()
                .to_string()
                .contains("printable ASCII")
        );
    }
}
